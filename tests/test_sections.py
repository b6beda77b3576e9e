"""The splitter: headings as in real articles, and offsets that always point back."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import DATA, FIXTURES
from topicstance.sections import heading_title, single_section, split_sections
from training.dataset import Section, load_corpus

PARAGRAPH = "Officials said the talks would resume next week, after a pause of two months."


def test_article_splits_at_plain_headings() -> None:
    text = (FIXTURES / "article.txt").read_text(encoding="utf-8")
    sections = split_sections(text)
    assert [s.heading for s in sections] == [
        "",
        "Drones Hit the Power Grid in Odesa",
        "Washington Weighs New Aid",
        "A Deal Over Lithium and Titanium",
    ]
    for section in sections:
        assert text[section.body_start : section.end] == section.body
        assert text[section.heading_start :].startswith(section.heading)
    assert text[sections[1].start :].startswith("Drones Hit")
    assert sections[0].start == 0 and sections[-1].end == len(text.rstrip())


def test_markdown_headings_and_blank_lines() -> None:
    text = f"# Title\n\n{PARAGRAPH}\n\n## Second part ##\n\n{PARAGRAPH}\n"
    sections = split_sections(text)
    assert [s.heading for s in sections] == ["Title", "Second part"]
    assert sections[1].body == PARAGRAPH
    assert text[sections[1].heading_start : sections[1].heading_start + 11] == "Second part"


def test_text_before_first_heading_has_empty_heading() -> None:
    sections = split_sections(f"{PARAGRAPH}\nA Short Heading\n{PARAGRAPH}")
    assert [s.heading for s in sections] == ["", "A Short Heading"]


def test_lines_that_are_not_headings() -> None:
    assert heading_title("This line ends with a full stop.") is None
    assert heading_title("- a bullet point without punctuation") is None
    assert (
        heading_title("one two three four five six seven eight nine ten eleven twelve thirteen")
        is None
    )
    assert heading_title("“A quoted line that ends in a question?”") is None
    assert (
        heading_title("12:40 — Air raid alert over the capital")
        == "12:40 — Air raid alert over the capital"
    )


def test_short_line_at_the_end_is_a_paragraph() -> None:
    sections = split_sections(f"{PARAGRAPH}\nNo paragraph follows this line")
    assert len(sections) == 1 and sections[0].body.endswith("follows this line")


def test_windows_line_breaks_keep_offsets() -> None:
    text = f"{PARAGRAPH}\r\nA Heading Here\r\n{PARAGRAPH}\r\n"
    sections = split_sections(text)
    assert [s.heading for s in sections] == ["", "A Heading Here"]
    assert all(text[s.body_start : s.end] == s.body for s in sections)


def test_model_text_offsets_map_back() -> None:
    text = f"{PARAGRAPH}\n\nKyiv and Moscow Trade Blame\n\n{PARAGRAPH}"
    section = split_sections(text)[1]
    model = section.model_text
    heading_at = model.index("Moscow")
    assert text[section.source_offset(heading_at) :].startswith("Moscow")
    body_at = model.index("talks")
    assert text[section.source_offset(body_at) :].startswith("talks")


def test_single_section_keeps_separate_heading() -> None:
    section = single_section("Body text here.", "  Heading ")
    assert section.model_text == "Heading\nBody text here."
    assert section.in_heading(0) and not section.in_heading(len("Heading") + 1)
    assert section.source_offset(0) == 2


LINES = st.lists(
    st.one_of(
        st.text(min_size=0, max_size=80),
        st.sampled_from(
            ["# Heading", "Short Heading Line", "", "   ", "A sentence.", "\r", "- item"]
        ),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(LINES, st.sampled_from(["\n", "\r\n", "\n\n", "\r"]))
def test_offsets_always_point_back_into_the_text(lines: list[str], newline: str) -> None:
    text = newline.join(lines)
    sections = split_sections(text)
    previous_end = 0
    for section in sections:
        assert previous_end <= section.start <= section.body_start <= section.end <= len(text)
        assert text[section.body_start : section.end] == section.body
        if section.heading:
            start = section.heading_start
            assert text[start : start + len(section.heading)] == section.heading
            assert section.start <= start < section.body_start or section.body == ""
        for offset in range(len(section.model_text) + 1):
            assert 0 <= section.source_offset(offset) <= len(text)
        previous_end = section.end
    covered = "".join(text[s.start : s.end] for s in sections)
    assert "".join(text.split()) == "".join(covered.split())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_unicode_never_breaks_the_splitter(text: str) -> None:
    for section in split_sections(text):
        assert text[section.body_start : section.end] == section.body
        assert section.model_text.endswith(section.body)


def corpus_documents() -> dict[str, list[Section]]:
    documents: dict[str, list[Section]] = {}
    for section in load_corpus(DATA).sections:
        if section.doc:
            documents.setdefault(section.doc, []).append(section)
    return documents


def test_every_corpus_document_splits_back_into_its_sections() -> None:
    """The corpus's multi-section articles, in plain and in Markdown form."""
    documents = corpus_documents()
    assert len(documents) >= 60
    for doc, sections in documents.items():
        plain = "\n".join((f"{s.heading}\n" if s.heading else "") + s.text for s in sections)
        markdown = "\n\n".join(
            (f"## {s.heading}\n\n" if s.heading else "") + s.text.replace("\n", "\n\n")
            for s in sections
        )
        for text in (plain, markdown):
            split = split_sections(text)
            assert [s.heading for s in split] == [s.heading for s in sections], doc
            assert [" ".join(s.body.split()) for s in split] == [
                " ".join(s.text.split()) for s in sections
            ], doc
