"""Custom scikit-learn transformers and the inputs of the stance head.

They live in service/ because the server unpickles what training saved. The
stance transformers read a `StanceInput`: one actor in one section, with the
actor's own mentions masked as ACTOR_TOKEN and other actors' as OTHER_TOKEN, so
one model serves every actor and learns what an actor does, not who it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

from service.actors import Mention, group_by_actor

ACTOR_TOKEN = "xactorx"
OTHER_TOKEN = "xotherx"
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’»)]*\s+|\n+")
_WORD = re.compile(r"(?u)\b\w\w+\b")
_WINDOW_CHARS = 160

Span = tuple[int, int]


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


@dataclass(frozen=True)
class Masked:
    """A section with the actors masked: the text, the own tokens, the sentences."""

    text: str
    own: tuple[Span, ...]
    sentences: tuple[Span, ...]

    def sentence_indexes(self) -> list[int]:
        """The sentences that hold one of the actor's own mentions."""
        return sorted(
            {
                index
                for index, (start, end) in enumerate(self.sentences)
                for own_start, _ in self.own
                if start <= own_start < end
            }
        )


@dataclass(frozen=True)
class StanceInput:
    """One actor in one section: the section text and where the actors are."""

    text: str
    actor: str
    own: tuple[Span, ...]
    others: tuple[Span, ...]

    @cached_property
    def masked(self) -> Masked:
        """Masked once per input, shared by every stance transformer."""
        marks = sorted(
            [(start, end, ACTOR_TOKEN) for start, end in self.own]
            + [(start, end, OTHER_TOKEN) for start, end in self.others]
        )
        pieces, own_spans, cursor, length = [], [], 0, 0
        for start, end, token in marks:
            pieces.append(self.text[cursor:start])
            length += start - cursor
            if token == ACTOR_TOKEN:
                own_spans.append((length, length + len(token)))
            pieces.append(token)
            length += len(token)
            cursor = end
        pieces.append(self.text[cursor:])
        text = "".join(pieces)
        return Masked(text, tuple(own_spans), tuple(sentence_spans(text)))

    def surfaces(self) -> list[str]:
        return [self.text[start:end] for start, end in self.own]


def stance_inputs(text: str, mentions: Sequence[Mention]) -> list[StanceInput]:
    """One input per actor found, in order of first mention."""
    inputs = []
    for actor, own in group_by_actor(mentions).items():
        others = tuple((m.start, m.end) for m in mentions if m.actor != actor)
        inputs.append(StanceInput(text, actor, tuple((m.start, m.end) for m in own), others))
    return inputs


class _TextTransformer(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A stateless step that turns stance inputs into text for a vectorizer."""

    def fit(self, inputs: Sequence[StanceInput], y: Any = None) -> _TextTransformer:
        return self

    def transform(self, inputs: Sequence[StanceInput]) -> list[str]:
        return [self._text(item) for item in inputs]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([type(self).__name__.lower()], dtype=object)

    def _text(self, item: StanceInput) -> str:
        raise NotImplementedError


class MaskedContext(_TextTransformer):
    """The sentences holding the actor's mentions, plus `window` on each side."""

    def __init__(self, window: int = 0) -> None:
        self.window = window

    def _text(self, item: StanceInput) -> str:
        masked = item.masked
        last = len(masked.sentences) - 1
        keep = sorted(
            {
                neighbour
                for index in masked.sentence_indexes()
                for neighbour in range(
                    max(0, index - self.window), min(last, index + self.window) + 1
                )
            }
        )
        return " ".join(masked.text[slice(*masked.sentences[i])] for i in keep)


class MaskedSection(_TextTransformer):
    """The whole section, masked: what the section as a whole is doing."""

    def _text(self, item: StanceInput) -> str:
        return item.masked.text


class MentionWindow(_TextTransformer):
    """Words just before (L_) and after (R_) each own mention, and the next two (R2_).

    Position matters for stance: "xactorx launched" makes the actor the attacker,
    "launched at xactorx" makes it the target.
    """

    def __init__(self, width: int = 4) -> None:
        self.width = width

    def _text(self, item: StanceInput) -> str:
        masked, tokens = item.masked, []
        lower = masked.text.lower()
        for start, end in masked.own:
            left = _WORD.findall(lower[max(0, start - _WINDOW_CHARS) : start])[-self.width :]
            right = _WORD.findall(lower[end : end + _WINDOW_CHARS])[: self.width]
            tokens += [f"L_{w}" for w in left] + [f"R_{w}" for w in right]
            tokens.append("R2_" + "_".join(right[:2]))
        return " ".join(tokens)


class ActorContext(_TextTransformer):
    """The context's words tagged with the actor ("russia|launched"): what a word
    means for one actor's stance can differ from what it means for another's."""

    def __init__(self, window: int = 0) -> None:
        self.window = window

    def _text(self, item: StanceInput) -> str:
        context = MaskedContext(window=self.window)._text(item).lower()
        return " ".join(f"{item.actor}|{word}" for word in _WORD.findall(context))


class MentionFacts(_TextTransformer):
    """Which actor, how it is named, and how often: priors the masked text hides."""

    def _text(self, item: StanceInput) -> str:
        surfaces = {"surface_" + "_".join(s.lower().split()) for s in item.surfaces()}
        count = min(len(item.own), 4)
        return " ".join([f"actor_{item.actor}", f"mentions_{count}", *sorted(surfaces)])


class CueCounts(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Counts of each stance's cue words right after the mentions and in their sentences.

    `cues` maps a stance label to its cue words; it comes from the taxonomy, so
    this class knows no label. Counts are log-scaled.
    """

    def __init__(self, cues: Mapping[str, Sequence[str]] | None = None, width: int = 6) -> None:
        self.cues = cues
        self.width = width

    def fit(self, inputs: Sequence[StanceInput], y: Any = None) -> CueCounts:
        self.labels_ = sorted(self.cues or {})
        self.words_ = [
            frozenset(w.lower() for w in (self.cues or {})[label]) for label in self.labels_
        ]
        return self

    def transform(self, inputs: Sequence[StanceInput]) -> sp.csr_matrix:
        rows = [self._counts(item) for item in inputs]
        return sp.csr_matrix(np.log1p(np.asarray(rows, dtype=float).reshape(len(rows), -1)))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = [f"{where}_{label}" for label in self.labels_ for where in ("after", "sentence")]
        return np.asarray(names, dtype=object)

    def _counts(self, item: StanceInput) -> list[int]:
        masked = item.masked
        lower = masked.text.lower()
        after = [
            _WORD.findall(lower[end : end + _WINDOW_CHARS])[: self.width] for _, end in masked.own
        ]
        sentences = [
            _WORD.findall(lower[slice(*masked.sentences[i])]) for i in masked.sentence_indexes()
        ]
        counts = []
        for words in self.words_:
            counts.append(sum(w in words for window in after for w in window))
            counts.append(sum(w in words for sentence in sentences for w in sentence))
        return counts
