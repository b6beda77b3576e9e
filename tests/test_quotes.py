"""Quote attribution: who said what, in English, Ukrainian and Russian."""

from __future__ import annotations

import pytest

from tests.conftest import DATA
from topicstance.actors import ActorMatcher
from topicstance.quotes import QuoteAttributor, own_quotes, quoted_spans
from training.dataset import load_taxonomy
from training.heads import quote_attributor


@pytest.fixture(scope="module")
def tools() -> tuple[ActorMatcher, QuoteAttributor]:
    taxonomy = load_taxonomy(DATA / "taxonomy.toml")
    attributor = quote_attributor(taxonomy)
    assert attributor is not None
    return taxonomy.matcher(), attributor


def speakers(
    tools: tuple[ActorMatcher, QuoteAttributor], text: str
) -> list[tuple[str, str | None]]:
    matcher, attributor = tools
    return [(text[q.start : q.end], q.actor) for q in attributor.quotes(text, matcher.find(text))]


def test_quoted_spans_pair_their_marks_on_one_line() -> None:
    text = 'He said “a «b» c” and "d" then «e»; “broken\nline” ok'
    assert [text[a:b] for a, b in quoted_spans(text)] == ["a «b» c", "d", "e"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"We are ready," Zelensky said.', [("We are ready,", "ukraine")]),
        ('"No deal," said a Kremlin spokesman.', [("No deal,", "russia")]),
        ('Peskov told reporters: "Talks are possible."', [("Talks are possible.", "russia")]),
        (
            'Rubio spoke first. "We will help," he said.',
            [("We will help,", "united_states")],
        ),
        ('"This is theft," a senior official said.', [("This is theft,", None)]),
        ("«Ми готові до переговорів», — заявив Сибіга.", [("Ми готові до переговорів", "ukraine")]),
        ("Лавров заявил: «Уступок не будет».", [("Уступок не будет", "russia")]),
    ],
)
def test_a_quote_goes_to_the_actor_named_beside_it(
    tools: tuple[ActorMatcher, QuoteAttributor], text: str, expected: list[tuple[str, str | None]]
) -> None:
    assert speakers(tools, text) == expected


def test_a_quote_that_follows_carries_the_same_speaker(
    tools: tuple[ActorMatcher, QuoteAttributor],
) -> None:
    text = '"We will not retreat," Zelensky said. "Not one metre."'
    matcher, attributor = tools
    quotes = attributor.quotes(text, matcher.find(text))
    assert [text[a:b] for a, b in own_quotes(quotes, "ukraine")] == [
        "We will not retreat,",
        "Not one metre.",
    ]


def test_the_speaker_names_itself_in_the_first_person(
    tools: tuple[ActorMatcher, QuoteAttributor],
) -> None:
    _, attributor = tools
    quote = "We will exchange what we hold; our people come first. US aid matters."
    words = [quote[a:b] for a, b in attributor.speaker_words(quote)]
    assert words == ["We", "we", "our"]
