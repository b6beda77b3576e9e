"""The corpus validator and the held-out split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA, copy_taxonomy
from training.dataset import (
    DataError,
    Section,
    held_out_groups,
    load_corpus,
    load_taxonomy,
    split,
)

GOOD: dict[str, Any] = {
    "id": "t-1",
    "basis": "invented",
    "text": "Russian forces pushed toward the river crossing as Kyiv moved reserves east.",
    "topics": ["territory"],
    "stances": {"russia": "confrontational", "ukraine": "neutral"},
}

OTHER_TEXT = "Kyiv sent fresh brigades toward the southern bridgehead while Russian units dug in."


def write_corpus(directory: Path, records: list[Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    copy_taxonomy(directory)
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    (directory / "part.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def problems_of(tmp_path: Path, records: list[Any]) -> list[str]:
    with pytest.raises(DataError) as caught:
        load_corpus(write_corpus(tmp_path / "corpus", records))
    return caught.value.problems


def test_the_committed_corpus_is_valid() -> None:
    corpus = load_corpus(DATA)
    assert len(corpus.sections) >= 200


def test_good_record_loads(tmp_path: Path) -> None:
    corpus = load_corpus(write_corpus(tmp_path, [GOOD]))
    (section,) = corpus.sections
    assert section.primary_topic("other") == "territory"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"topics": ["weather"]}, "topics: unknown label 'weather'"),
        (
            {"stances": {"russia": "angry", "ukraine": "neutral"}},
            "stances.russia: unknown stance 'angry'",
        ),
        (
            {"stances": {"russia": "confrontational"}},
            "'ukraine' is mentioned (Kyiv) but has no stance",
        ),
        (
            {"stances": {"russia": "neutral", "ukraine": "neutral", "united_states": "neutral"}},
            "'united_states' has a stance but no alias of it occurs",
        ),
        ({"text": ""}, "text: expected a non-empty string"),
        ({"id": "has space"}, "id: expected 1-64 characters"),
        ({"colour": "red"}, "colour: unknown field"),
        ({"heading": "two\nlines"}, "heading: expected a one-line string"),
        ({"basis": None}, "basis: expected one of ['invented', 'real_event'], got None"),
        ({"basis": "rumour"}, "basis: expected one of ['invented', 'real_event'], got 'rumour'"),
        ({"lang": "fr"}, "lang: expected one of the taxonomy's languages ['en', 'uk', 'ru']"),
    ],
)
def test_bad_records_name_file_line_and_field(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    problems = problems_of(tmp_path, [GOOD, {**GOOD, "id": "t-2", "text": OTHER_TEXT, **change}])
    assert len(problems) == 1
    assert "part.jsonl:2: " in problems[0] and expected in problems[0]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    records = ["{not json", {**GOOD, "topics": ["x"]}, GOOD, {**GOOD, "text": OTHER_TEXT}]
    problems = problems_of(tmp_path, records)
    assert any("part.jsonl:1: not valid JSON" in p for p in problems)
    assert any("part.jsonl:2: topics: unknown label 'x'" in p for p in problems)
    assert any("part.jsonl:4: id: 't-1' also at" in p for p in problems)


def test_exact_and_near_duplicates_are_errors(tmp_path: Path) -> None:
    near = {**GOOD, "id": "t-2", "text": GOOD["text"].replace("river", "river's")}
    exact = {**GOOD, "id": "t-3", "text": GOOD["text"].upper()}
    problems = problems_of(tmp_path, [GOOD, near, exact])
    assert any("near duplicate of t-1" in p and "cosine" in p for p in problems)
    assert any("exact duplicate of t-1" in p for p in problems)


def test_documents_must_be_consecutive(tmp_path: Path) -> None:
    records = [
        {**GOOD, "id": "a", "doc": "d1"},
        {
            "id": "b",
            "basis": "invented",
            "text": "The central bank held its rates again on Thursday.",
            "topics": [],
            "stances": {},
        },
        {**GOOD, "id": "c", "doc": "d1", "text": "Moscow claimed two more villages in the east."},
    ]
    records[2]["stances"] = {"russia": "confrontational"}
    problems = problems_of(tmp_path, records)
    assert problems == [
        f"{tmp_path / 'corpus' / 'part.jsonl'}:3: doc: sections of 'd1' must be consecutive"
    ]


def test_taxonomy_errors_are_named(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.toml"
    path.write_text('topics = []\nstances = ["a"]\nnone_topic = "other"\n')
    with pytest.raises(DataError, match="topics: expected a non-empty list"):
        load_taxonomy(path)


def test_split_is_stable_stratified_and_keeps_documents_whole() -> None:
    corpus = load_corpus(DATA)
    train, test = split(corpus)
    assert {s.group for s in train}.isdisjoint({s.group for s in test})
    assert split(corpus) == (train, test)
    share = len(test) / len(corpus.sections)
    assert 0.15 <= share <= 0.25
    none = corpus.taxonomy.none_topic
    for label in (*corpus.taxonomy.topics, none):
        total = [s for s in corpus.sections if s.primary_topic(none) == label and not s.doc]
        held = [s for s in total if s in test]
        assert abs(len(held) - 0.2 * len(total)) <= 1.5


def test_adding_a_section_moves_at_most_one_group() -> None:
    corpus = load_corpus(DATA)
    before = held_out_groups(corpus.sections, corpus.taxonomy)
    extra = Section(id="zz-new", text="New text.", heading="", topics=("strikes",), stances={})
    after = held_out_groups([*corpus.sections, extra], corpus.taxonomy)
    assert len(before ^ after) <= 2


def test_the_name_guard_is_checked(tmp_path: Path) -> None:
    copy_taxonomy(tmp_path)
    ru = tmp_path / "languages" / "ru.toml"
    text = ru.read_text(encoding="utf-8").replace('names = [\n  "Путин*"', 'names = [\n  "Путен*"')
    ru.write_text(text.replace('quotes = ["«»"', 'quotes = ["«»»"'), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_taxonomy(tmp_path / "taxonomy.toml")
    assert "actors.russia.names: 'Путен*' is not one of its aliases" in str(caught.value)
    assert "name_guard.quotes: '«»»'" in str(caught.value)
