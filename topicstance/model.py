"""The two heads as fitted, picklable objects: what training builds and serving runs.

`TopicModel` turns section texts into topic probabilities, listed topics and a primary
topic; `StanceModel` turns each actor found in a section into stance probabilities. Both
hold scikit-learn objects plus the parameters fitted on out-of-fold scores (stacker,
calibrators, thresholds, the primary rule's weight, the own-quote combiner), and both go
through `topicstance.inference` (the fast path over the same fitted objects) and
`topicstance.decisions` (the rules), so training scores exactly what serving answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from topicstance import inference
from topicstance.actors import Mention
from topicstance.decisions import (
    SentenceEvidence,
    calibrate,
    choose_primaries,
    combine_stances,
    stack_inputs,
    stacked_probs,
)
from topicstance.features import StanceInput, sentence_spans, stance_inputs
from topicstance.quotes import QuoteAttributor, own_quotes

SENTENCE_MIN_WORDS = 4


@dataclass
class TopicScores:
    """Everything the topic decision needs, and the features (for evidence)."""

    features: Any
    section: np.ndarray
    evidence: SentenceEvidence
    probs: np.ndarray
    primary: np.ndarray


@dataclass
class TopicModel:
    """Multi-label topics (with a sentence stacker and calibration) and the primary."""

    features: Any
    classifier: Any
    primary_classifier: Any
    topics: tuple[str, ...]
    none_topic: str
    thresholds: np.ndarray
    stacker: dict[str, np.ndarray] | None = None
    calibrator: dict[str, Any] | None = None
    primary_weight: float = 0.0

    @property
    def primary_labels(self) -> list[str]:
        return [str(c) for c in self.primary_classifier.classes_]

    def scores(self, texts: Sequence[str]) -> TopicScores:
        features = inference.transform(self.features, list(texts))
        section = inference.predict_proba(self.classifier, features)
        evidence = self.sentence_evidence(texts)
        probs = section
        if self.stacker is not None:
            probs = stacked_probs(stack_inputs(section, evidence), self.stacker)
        probs = calibrate(probs, self.calibrator)
        primary = inference.predict_proba(self.primary_classifier, features)
        return TopicScores(features, section, evidence, probs, primary)

    def sentence_evidence(self, texts: Sequence[str]) -> SentenceEvidence:
        """Score every sentence of four words or more with the section classifier."""
        sentences, owners = [], []
        for index, text in enumerate(texts):
            for start, end in sentence_spans(text):
                if len(text[start:end].split()) >= SENTENCE_MIN_WORDS:
                    sentences.append(text[start:end])
                    owners.append(index)
        probs = (
            inference.predict_proba(self.classifier, inference.transform(self.features, sentences))
            if sentences
            else np.zeros((0, len(self.topics)))
        )
        return SentenceEvidence.from_sentences(probs, owners, len(texts), len(self.topics))

    def listed(self, probs: np.ndarray) -> np.ndarray:
        return np.asarray(probs >= self.thresholds, dtype=int)

    def decide(self, scores: TopicScores) -> list[tuple[str, list[str]]]:
        """(primary, topics listed primary first) per text, as served."""
        listed = self.listed(scores.probs)
        primaries = choose_primaries(
            scores.primary,
            listed,
            scores.evidence.vote_share(),
            weight=self.primary_weight,
            labels=self.primary_labels,
            none=self.none_topic,
        )
        answers: list[tuple[str, list[str]]] = []
        for row, primary in enumerate(primaries):
            if primary == self.none_topic:
                answers.append((primary, []))
                continue
            others = sorted(np.flatnonzero(listed[row]), key=lambda i: -scores.probs[row, i])
            rest = [self.topics[i] for i in others if self.topics[i] != primary]
            answers.append((primary, [primary, *rest]))
        return answers


@dataclass
class StanceScores:
    """One row per actor found, in text order, with what produced it."""

    inputs: list[list[StanceInput]]
    probs: np.ndarray
    section: np.ndarray
    features: Any


@dataclass
class StanceModel:
    """One stance classifier over masked contexts, serving every actor; where an actor
    is quoted, its own words are scored too and a combiner weighs the two views."""

    pipeline: Any
    stances: tuple[str, ...]
    quotes: QuoteAttributor | None = None
    combiner: dict[str, np.ndarray] | None = None
    calibrator: dict[str, Any] | None = None
    _order: list[int] = field(default_factory=list, repr=False)

    def scores(self, texts: Sequence[str], mentions: Sequence[Sequence[Mention]]) -> StanceScores:
        inputs = [
            stance_inputs(text, list(found), self.quoted(text, found))
            for text, found in zip(texts, mentions, strict=True)
        ]
        flat = [item for per_text in inputs for item in per_text]
        if not flat:
            empty = np.empty((0, len(self.stances)))
            return StanceScores(inputs, empty, empty, None)
        features = inference.transform(self.pipeline[:-1], flat)
        section = self._probs(features)
        probs = section
        if self.combiner is not None and self.quotes is not None:
            quote, has_quote = self.quote_view(texts, mentions, inputs)
            probs = combine_stances(section, quote, has_quote, self.combiner)
        return StanceScores(inputs, calibrate(probs, self.calibrator), section, features)

    def quoted(self, text: str, mentions: Sequence[Mention]) -> dict[str, list[tuple[int, int]]]:
        """The spans each actor is quoted saying (none without a quote attributor)."""
        if self.quotes is None or not mentions:
            return {}
        found = self.quotes.quotes(text, mentions)
        return {actor: own_quotes(found, actor) for actor in {m.actor for m in mentions}}

    def quote_view(
        self,
        texts: Sequence[str],
        mentions: Sequence[Sequence[Mention]],
        inputs: Sequence[Sequence[StanceInput]],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per actor row: stance probabilities of its own quoted words, and whether any."""
        assert self.quotes is not None
        views: list[StanceInput] = []
        rows: list[int] = []
        row = 0
        for text, found, per_text in zip(texts, mentions, inputs, strict=True):
            quotes = self.quotes.quotes(text, found) if per_text else []
            for item in per_text:
                spans = own_quotes(quotes, item.actor)
                if spans:
                    views.append(quote_input(text, item, spans, found, self.quotes))
                    rows.append(row)
                row += 1
        quote = np.full((row, len(self.stances)), 1.0 / len(self.stances))
        has_quote = np.zeros(row, dtype=bool)
        if views:
            quote[rows] = self._probs(inference.transform(self.pipeline[:-1], views))
            has_quote[rows] = True
        return quote, has_quote

    def _probs(self, features: Any) -> np.ndarray:
        if not self._order:
            classes = list(self.pipeline[-1].classes_)
            self._order = [classes.index(s) for s in self.stances]
        return inference.predict_proba(self.pipeline[-1], features)[:, self._order]


def quote_input(
    text: str,
    item: StanceInput,
    spans: Sequence[tuple[int, int]],
    mentions: Sequence[Mention],
    attributor: QuoteAttributor,
) -> StanceInput:
    """The actor's own quoted words as a text of their own, the actor as the speaker:
    `<its name> said: <quote> <quote>`. Inside the quotes the speaker's first person
    ("we will exchange...") is the actor; other actors stay masked as others."""
    name = text[item.own[0][0] : item.own[0][1]]
    prefix = f"{name} said: "
    pieces, cursor = [prefix], len(prefix)
    own: list[tuple[int, int]] = [(0, len(name))]
    others: list[tuple[int, int]] = []
    for start, end in spans:
        for mention in mentions:
            if start <= mention.start and mention.end <= end:
                offset = cursor + mention.start - start
                span = (offset, offset + mention.end - mention.start)
                (own if mention.actor == item.actor else others).append(span)
        own += [(cursor + a, cursor + b) for a, b in attributor.speaker_words(text[start:end])]
        pieces.append(text[start:end] + " ")
        cursor += end - start + 1
    return StanceInput("".join(pieces), item.actor, tuple(sorted(own)), tuple(others))
