"""Reading documents as articles, without a model: the fixtures scored, formats,
HTML limits, and properties of every offset."""

from __future__ import annotations

import json
import re
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import DATA, FIXTURES
from tests.scoring import Fixture, ReadSection, norm, parts_text, score
from topicstance import language
from topicstance.documents import (
    Boilerplate,
    Document,
    DocumentError,
    HtmlLimits,
    Language,
    LimitError,
    Reader,
    detect_format,
    read_document,
    rules,
)
from topicstance.documents.html import check_html
from training.dataset import load_taxonomy

LIMITS = HtmlLimits()
PARAGRAPH = "Russian drones struck the power grid near Odesa overnight, officials said."


@cache
def reader() -> Reader:
    """The reader the default model serves with: every taxonomy language's patterns."""
    taxonomy = load_taxonomy(DATA / "taxonomy.toml")
    languages = [
        Language.from_payload({"code": code, **taxonomy.language_data[code]})
        for code in taxonomy.languages
    ]
    return Reader(Boilerplate(languages))


def read(fixture: Fixture) -> tuple[str, list[ReadSection]]:
    document = read_document(fixture.text, "", reader(), LIMITS)
    assert document.format == fixture.expected["format"], fixture.name
    return document.title, [
        ReadSection(norm(s.heading), parts_text(document.text, list(s.parts)))
        for s in document.sections
    ]


def test_the_fixtures_are_read_as_their_expected_files_say() -> None:
    result = score(read)
    assert result.documents == 45
    print(result.summary())
    assert result.f1 >= 0.95, result.problems
    assert result.leak_rate <= 0.01, result.problems
    assert result.titles == result.documents, result.problems


def check_offsets(document: Document) -> None:
    """Every offset indexes `text`; parts are ordered, inside the section, and
    overlap no skipped span."""
    text = document.text
    skipped = sorted((s.start, s.end) for s in document.skipped)
    for start, end in skipped:
        assert 0 <= start < end <= len(text)
    previous = 0
    for section in document.sections:
        assert previous <= section.start < section.end <= len(text)
        parts = list(section.parts)
        assert parts == sorted(parts)
        for (start, end), following in zip(parts, [*parts[1:], None], strict=True):
            assert section.start <= start < end <= section.end
            assert following is None or end <= following[0]
            assert all(end <= a or b <= start for a, b in skipped)
        previous = section.end
        for offset in range(len(section.model_text) + 1):
            assert 0 <= section.source_offset(offset) <= len(text)


LINES = st.lists(
    st.one_of(
        st.sampled_from(
            [
                PARAGRAPH,
                "Advertisement",
                "Share",
                "Read more: Kyiv and Washington sign a deal",
                "Related content",
                "The Fight for the Islands",
                "## A Markdown heading",
                "# A title",
                "14:05",
                "Photo: Oleh Marchenko/Meridian",
                "By Daryna Holub",
                "- a list item",
                "---",
                "",
            ]
        ),
        st.text(max_size=60),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(LINES, st.sampled_from(["\n", "\n\n", "\r\n"]), st.sampled_from(["plain_text", "markdown"]))
def test_offsets_hold_for_any_text(lines: list[str], newline: str, format: str) -> None:
    check_offsets(reader().read(newline.join(lines), format))


BLOCKS = st.lists(
    st.sampled_from(
        [
            f"<p>{PARAGRAPH}</p>",
            "<h2>Grain &amp; power</h2>",
            "<div class='ad'>Advertisement</div>",
            "<figure><img src='x.jpg'><figcaption>A caption. Photo: A/B</figcaption></figure>",
            "<p>Read more: Kharkiv schools move underground</p>",
            "<p><time>14:05</time></p>",
            "<ul><li>One item of a list</li><li>Another</li></ul>",
            "<p>Line one<br>line two of a paragraph.</p>",
        ]
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(BLOCKS)
def test_offsets_hold_for_any_html_page(blocks: list[str]) -> None:
    body = "".join(blocks)
    html = f"<!doctype html><html><body><article><h1>Title</h1>{body}</article></body></html>"
    try:
        document = read_document(html, "html", reader(), LIMITS)
    except DocumentError as error:
        assert "no article body" in str(error)
        return
    check_offsets(document)
    assert document.title == "Title"


def test_a_pasted_article_loses_its_furniture_and_keeps_its_dateline() -> None:
    text = "\n".join(
        [
            "Russian drones hit Odesa port overnight",
            "By Daryna Holub",
            "Updated 3 hours ago",
            "Share",
            "ODESA, Ukraine (Meridian Wire) — Russian drones hit two grain terminals.",
            "Advertisement",
            "Firefighters worked through the night to put out the blaze.",
            "Read more: Zelensky says Ukraine will not give up Donbas",
            "Talks in Geneva",
            "Delegations met in Geneva on Tuesday for a second round of talks.",
            "Reporting by Daryna Holub in Odesa; Editing by Fiona Grange",
        ]
    )
    document = reader().read(text, "plain_text")
    assert document.title == "Russian drones hit Odesa port overnight"
    assert [s.heading for s in document.sections] == ["", "Talks in Geneva"]
    lede = document.sections[0]
    assert text[lede.start :].startswith("ODESA, Ukraine (Meridian Wire) —")
    assert len(lede.parts) == 2  # the advertisement between its paragraphs is skipped
    kinds = {text[s.start : s.end]: s.kind for s in document.skipped}
    assert kinds["Advertisement"] == "advertisement"
    assert kinds["Share"] == "share"
    assert kinds["Updated 3 hours ago"] == "timestamp"
    assert kinds["Read more: Zelensky says Ukraine will not give up Donbas"] == "teaser"
    assert kinds["Reporting by Daryna Holub in Odesa; Editing by Fiona Grange"] == "trailer"
    assert "Advertisement" not in lede.model_text


def test_live_blog_entries_start_sections_at_their_time_stamps() -> None:
    text = "\n".join(
        [
            "Live: the war on Thursday",
            PARAGRAPH,
            "14:05",
            "Air-raid alert lifted in Kyiv",
            "The alert lasted three hours, and debris fell in two districts of the city.",
            "13:20 GMT",
            "The White House said new sanctions on Russian oil buyers were being drafted.",
        ]
    )
    document = reader().read(text, "plain_text")
    assert [s.heading for s in document.sections] == [
        "",
        "14:05 Air-raid alert lifted in Kyiv",
        "13:20 GMT",
    ]
    entry = document.sections[1]
    at = entry.model_text.index("Kyiv")
    assert text[entry.source_offset(at) :].startswith("Kyiv")
    assert entry.in_heading(at)


def test_wrapped_lines_are_one_paragraph() -> None:
    text = (
        "Drones Hit the Grid\nRussian drones struck a substation near Odesa before dawn,\n"
        "killing three people and leaving forty thousand homes without power.\n"
    )
    document = reader().read(text, "plain_text")
    (section,) = document.sections
    assert len(section.parts) == 1 and document.title == "Drones Hit the Grid"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!doctype html><html><body><p>Hi</p></body></html>", "html"),
        ("  <div class='x'><p>Kyiv said so.</p></div>", "html"),
        ("# Title\n\nSome text.", "markdown"),
        ("Text with a [link](https://example.org).", "markdown"),
        ("Plain text <b> that mentions a tag.", "plain_text"),
        ("Kyiv said so.", "plain_text"),
    ],
)
def test_format_detection(text: str, expected: str) -> None:
    assert detect_format(text) == expected


def test_html_limits_and_junk() -> None:
    small = HtmlLimits(max_chars=1000, max_depth=50)
    with pytest.raises(LimitError, match=r"the limit is 1000 \(max_html_chars\)"):
        check_html("<p>x</p>" * 200, small)
    with pytest.raises(LimitError, match=r"nests HTML elements 60 deep; the limit is 50"):
        check_html("<div>" * 60 + "text" + "</div>" * 60, small)
    with pytest.raises(DocumentError, match="is not HTML"):
        check_html("<p>" + "\x00\x01\x02\x7f" * 20 + "</p>", small)
    check_html("<div><p>Fine<br/>text</p><img src=x></div>", small)
    for page in ("<html><head><script>var a = 1;</script></head><body></body></html>", "<p></p>"):
        with pytest.raises(DocumentError, match="no article body"):
            read_document(page, "html", reader(), LIMITS)


def test_html_renders_headings_paragraphs_and_entities() -> None:
    page = (
        "<html><head><title>Grain deal | The Site</title></head><body><nav><a>Home</a></nav>"
        f"<article><p>{PARAGRAPH} Prices rose &amp; fell&nbsp;again.</p>"
        "<h3>Ports &mdash; and power</h3><p>The port reopened on Friday, the authority said.</p>"
        "</article><footer>© 2025 The Site</footer></body></html>"
    )
    document = read_document(page, "", reader(), LIMITS)
    assert document.title == "Grain deal"
    assert document.text.startswith("# Grain deal\n\n")
    assert "## Ports — and power" in document.text and "&amp;" not in document.text
    assert [s.heading for s in document.sections] == ["", "Ports — and power"]
    assert "Home" not in document.text and "©" not in document.text


def test_short_english_is_never_marked_as_another_language() -> None:
    for text in (
        "Kyiv said so.",
        "Drones Hit the Power Grid in Odesa",
        "Washington Weighs New Aid",
    ):
        assert language.detect(text) == ""
    assert language.detect(PARAGRAPH) == "en"
    assert language.detect("Уночі Росія атакувала Україну ударними дронами та ракетами.") == "uk"


def test_other_languages_are_told_apart() -> None:
    """Short texts in French, German, Polish, Belarusian and Bulgarian (ours)."""
    path = FIXTURES / "languages" / "other.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    long_enough = [r for r in records if sum(c.isalpha() for c in r["text"]) >= 30]
    assert len(long_enough) >= 20
    assert [language.detect(r["text"]) for r in long_enough] == [r["lang"] for r in long_enough]
    short = [r for r in records if r not in long_enough]
    assert all(language.detect(r["text"]) == "" for r in short)


def test_every_language_file_names_its_live_blog_time_stamp() -> None:
    """A top-level key written after a table would belong to that table: check it is not."""
    taxonomy = load_taxonomy(DATA / "taxonomy.toml")
    for code in taxonomy.languages:
        data = taxonomy.language_data[code]
        assert data["live_blog_timestamp"], code
        assert data["boilerplate"], code


def test_the_language_is_read_from_the_opening_of_a_long_section() -> None:
    """Only the sample is read: a section that opens in English for longer than the
    sample and then turns French is English; cut shorter, the French part decides."""
    english = PARAGRAPH
    while len(english) < language.SAMPLE_CHARS:
        english += " " + PARAGRAPH
    french = " ".join(
        ["Des drones russes ont frappé le port d'Odessa cette nuit, selon les autorités."] * 20
    )
    assert language.sample(english + " " + french).startswith(english[:100])
    assert len(language.sample(english + " " + french)) <= language.SAMPLE_CHARS
    assert language.detect(english + " " + french) == "en"
    assert language.detect(PARAGRAPH[:200] + " " + french) == "fr"


def test_shared_word_boundaries_match_as_the_patterns_do() -> None:
    patterns = [
        r"(?i)\b(?:we use cookies)\b",
        r"(?i)\bapp store\b",
        r"\bRead more\b",
        r"(?i)©\s?\d{4}",
    ]
    shared = re.compile(rules._shared_boundaries(patterns))
    lines = [
        "We use cookies.", "The app store", "appstore", "Read more", "read more", "© 2026",
        "xapp store", "Support: READ MORE here", "no furniture at all",
    ]  # fmt: skip
    for line in lines:
        expected = any(re.search(pattern, line) for pattern in patterns)
        assert bool(shared.search(line)) == expected, line
