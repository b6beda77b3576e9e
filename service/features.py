"""Custom scikit-learn transformers and the inputs of the stance head.

They live in service/ because the server unpickles what training saved.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from service.actors import Mention, group_by_actor

ACTOR_TOKEN = "xactorx"
OTHER_TOKEN = "xotherx"
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’»)]*\s+|\n+")

Span = tuple[int, int]


@dataclass(frozen=True)
class StanceInput:
    """One actor in one section: the section text and where the actors are."""

    text: str
    actor: str
    own: tuple[Span, ...]
    others: tuple[Span, ...]


def stance_inputs(text: str, mentions: Sequence[Mention]) -> list[StanceInput]:
    """One input per actor found, in order of first mention."""
    inputs = []
    for actor, own in group_by_actor(mentions).items():
        others = tuple((m.start, m.end) for m in mentions if m.actor != actor)
        inputs.append(StanceInput(text, actor, tuple((m.start, m.end) for m in own), others))
    return inputs


def sentence_spans(text: str) -> list[Span]:
    """Sentence boundaries: after final punctuation and at line breaks."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.start() > start:
            spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


class MaskedContext(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """The sentences around an actor's mentions, as text with the actors masked.

    The actor's own mentions become ACTOR_TOKEN and other actors' OTHER_TOKEN, so
    one stance model serves every actor and learns what the actor does, not who
    it is. `window` adds that many sentences on each side of a mention.
    """

    def __init__(self, window: int = 0) -> None:
        self.window = window

    def fit(self, inputs: Sequence[StanceInput], y: Any = None) -> MaskedContext:
        return self

    def transform(self, inputs: Sequence[StanceInput]) -> list[str]:
        return [self._context(item) for item in inputs]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(["masked_context"], dtype=object)

    def _context(self, item: StanceInput) -> str:
        masked, spans = _mask(item)
        sentences = sentence_spans(masked)
        hits = {
            index
            for index, (start, end) in enumerate(sentences)
            for span_start, _ in spans
            if start <= span_start < end
        }
        keep = sorted(
            {
                neighbour
                for index in hits
                for neighbour in range(index - self.window, index + self.window + 1)
                if 0 <= neighbour < len(sentences)
            }
        )
        return " ".join(masked[sentences[i][0] : sentences[i][1]] for i in keep)


def _mask(item: StanceInput) -> tuple[str, list[Span]]:
    """The text with mentions replaced by tokens, and where the own tokens now are."""
    marks = sorted(
        [(start, end, ACTOR_TOKEN) for start, end in item.own]
        + [(start, end, OTHER_TOKEN) for start, end in item.others]
    )
    pieces, own_spans, cursor, shift = [], [], 0, 0
    for start, end, token in marks:
        pieces.append(item.text[cursor:start])
        new_start = start + shift
        if token == ACTOR_TOKEN:
            own_spans.append((new_start, new_start + len(token)))
        pieces.append(token)
        shift += len(token) - (end - start)
        cursor = end
    pieces.append(item.text[cursor:])
    return "".join(pieces), own_spans
