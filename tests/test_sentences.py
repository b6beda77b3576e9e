"""Sentence boundaries: wire copy's dotted abbreviations and lower-case continuations
stay inside one sentence; real ends still end one."""

from __future__ import annotations

import pytest

from topicstance.sentences import sentence_spans


def _sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Kyiv offered the U.S. first access to its titanium. The envoy agreed.",
            ["Kyiv offered the U.S. first access to its titanium.", "The envoy agreed."],
        ),
        (
            "She met J. D. Vance in Warsaw. Talks went on.",
            ["She met J. D. Vance in Warsaw.", "Talks went on."],
        ),
        ("Евакуювали 3 тис. осіб. Обстріл тривав.", ["Евакуювали 3 тис. осіб.", "Обстріл тривав."]),
        (
            "Sirens sounded at 4 a.m. local time. Nobody was hurt.",
            ["Sirens sounded at 4 a.m. local time.", "Nobody was hurt."],
        ),
        ("“We are ready.” The minister left.", ["“We are ready.", "The minister left."]),
        (
            "Why now? Because. Enough!\nA new line",
            ["Why now?", "Because.", "Enough!", "A new line"],
        ),
    ],
)
def test_sentences_end_at_final_punctuation_but_not_inside_abbreviations(
    text: str, expected: list[str]
) -> None:
    assert _sentences(text) == expected


def test_lower_case_after_a_full_stop_continues_the_sentence() -> None:
    assert _sentences("The plant lost 2 thou. tonnes a day. Repairs began.") == [
        "The plant lost 2 thou. tonnes a day.",
        "Repairs began.",
    ]
