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
from sklearn.naive_bayes import ComplementNB

from topicstance import inference
from topicstance.actors import Mention
from topicstance.decisions import (
    SentenceEvidence,
    allowed_topics,
    calibrate,
    choose_primaries,
    combine_stances,
    own_quote_wins,
    primary_inputs,
    primary_scores,
    stack_inputs,
    stacked_probs,
)
from topicstance.features import StanceInput, stance_inputs
from topicstance.quotes import QuoteAttributor, own_quotes
from topicstance.sentences import sentence_spans

SENTENCE_MIN_WORDS = 4


@dataclass
class TopicScores:
    """Everything the topic decision needs, and the features (for evidence).

    `primary` holds the primary head's probabilities, or with a primary stacker, the
    stacker's inputs."""

    features: Any
    section: np.ndarray
    evidence: SentenceEvidence
    probs: np.ndarray
    primary: np.ndarray
    allowed: np.ndarray


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
    primary_stacker: dict[str, Any] | None = None
    requires: dict[str, list[str]] = field(default_factory=dict)

    @property
    def primary_labels(self) -> list[str]:
        return [str(c) for c in self.primary_classifier.classes_]

    def scores(self, texts: Sequence[str], actors: Sequence[set[str]] | None = None) -> TopicScores:
        """Probabilities and the primary's inputs; given the actors found per text, a
        topic that requires an actor absent from the text gets probability 0."""
        allowed = (
            np.ones((len(texts), len(self.topics)), dtype=bool)
            if actors is None
            else allowed_topics(self.topics, self.requires, actors)
        )
        features, evidence = self.features_and_evidence(texts)
        section = inference.predict_proba(self.classifier, features)
        stacked = section
        if self.stacker is not None:
            stacked = stacked_probs(stack_inputs(section, evidence), self.stacker)
        probs = calibrate(stacked, self.calibrator) * allowed
        primary = inference.predict_proba(self.primary_classifier, features)
        if self.primary_stacker is not None:
            primary = primary_inputs(primary, evidence, stacked)
        return TopicScores(features, section, evidence, probs, primary, allowed)

    def features_and_evidence(self, texts: Sequence[str]) -> tuple[Any, SentenceEvidence]:
        """The texts' features, and every sentence of four words or more scored by the
        section classifier; with sentence-bounded features, both from one pass."""
        if _sentence_bounded(self.features):
            features, sentences, owners = inference.sections_and_sentences(
                self.features, texts, SENTENCE_MIN_WORDS
            )
            probs = (
                inference.predict_proba(self.classifier, sentences)
                if owners
                else np.zeros((0, len(self.topics)))
            )
            evidence = SentenceEvidence.from_sentences(probs, owners, len(texts), len(self.topics))
            return features, evidence
        return inference.transform(self.features, list(texts)), self.sentence_evidence(texts)

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
        if self.primary_stacker is None:
            labels, ranked = self.primary_labels, scores.primary
        else:
            labels = self.primary_stacker["labels"]
            ranked = primary_scores(scores.primary, self.primary_stacker)
        allowed = np.column_stack(
            [
                scores.allowed[:, self.topics.index(label)]
                if label in self.topics
                else np.ones(len(ranked), dtype=bool)
                for label in labels
            ]
        )
        primaries = choose_primaries(ranked, labels, allowed)
        answers: list[tuple[str, list[str]]] = []
        for row, primary in enumerate(primaries):
            if primary == self.none_topic:
                answers.append((primary, []))
                continue
            others = sorted(np.flatnonzero(listed[row]), key=lambda i: -scores.probs[row, i])
            rest = [self.topics[i] for i in others if self.topics[i] != primary]
            answers.append((primary, [primary, *rest]))
        return answers


def _sentence_bounded(features: Any) -> bool:
    blocks: list[tuple[str, Any]] = getattr(features, "transformer_list", None) or []
    return bool(blocks) and all(getattr(block, "sentences", False) for _, block in blocks)


@dataclass
class StanceScores:
    """One row per actor found, in text order, with what produced it."""

    inputs: list[list[StanceInput]]
    probs: np.ndarray
    section: np.ndarray
    features: Any
    # The naive Bayes view of the same features (None without one).
    bayes: np.ndarray | None = None


def in_stance_order(classifier: Any, features: Any, stances: Sequence[str]) -> np.ndarray:
    """A classifier's probabilities in taxonomy order: each fitted head keeps its own."""
    classes = list(classifier.classes_)
    order = [classes.index(stance) for stance in stances]
    return inference.predict_proba(classifier, features)[:, order]


@dataclass
class QuoteHead:
    """Reads an actor's own quoted words and tells the speaker's posture: trained on
    labeled quotes, so "sign the truce and the restrictions are the first thing we look
    at" reads as an offer, though no word of it is friendly."""

    pipeline: Any
    stances: tuple[str, ...]

    def probs(self, quotes: Sequence[str]) -> np.ndarray:
        features = inference.transform(self.pipeline[:-1], list(quotes))
        return in_stance_order(self.pipeline[-1], features, self.stances)


@dataclass
class StanceModel:
    """One stance classifier over masked contexts, serving every actor, and a naive Bayes
    view of the same features. Where an actor is quoted, the quote head reads its own
    words; a combiner fitted on out-of-fold scores weighs the views, and a confident own
    quote with a clear posture wins (the rules)."""

    pipeline: Any
    stances: tuple[str, ...]
    quotes: QuoteAttributor | None = None
    quote_head: QuoteHead | None = None
    # A second, differently biased learner on the same features: its errors differ
    # from the logistic head's, so the combiner gains from both.
    bayes: ComplementNB | None = None
    combiner: dict[str, np.ndarray] | None = None
    quote_wins_at: float | None = None
    neutral: str | None = None
    calibrator: dict[str, Any] | None = None

    def scores(self, texts: Sequence[str], mentions: Sequence[Sequence[Mention]]) -> StanceScores:
        inputs = [
            stance_inputs(text, list(found), self.quoted(text, found))
            for text, found in zip(texts, mentions, strict=True)
        ]
        flat = [item for per_text in inputs for item in per_text]
        if not flat:
            empty = np.empty((0, len(self.stances)))
            return StanceScores(inputs, empty, empty, None, None if self.bayes is None else empty)
        features = inference.transform(self.pipeline[:-1], flat)
        section = in_stance_order(self.pipeline[-1], features, self.stances)
        bayes = None if self.bayes is None else in_stance_order(self.bayes, features, self.stances)
        probs = section
        if self.combiner is not None:
            quote, has_quote = self.quote_view(flat)
            probs = combine_stances(section, quote, has_quote, self.combiner, bayes)
            if self.quote_wins_at is not None:
                probs = own_quote_wins(probs, quote, has_quote, self.quote_wins_at, self.polar)
        return StanceScores(inputs, calibrate(probs, self.calibrator), section, features, bayes)

    @property
    def polar(self) -> np.ndarray:
        """Which stances take a side (all but the neutral one)."""
        return np.asarray([s != self.neutral for s in self.stances])

    def quoted(self, text: str, mentions: Sequence[Mention]) -> dict[str, list[tuple[int, int]]]:
        """The spans each actor is quoted saying (none without a quote attributor)."""
        if self.quotes is None or not mentions:
            return {}
        found = self.quotes.quotes(text, mentions)
        return {actor: own_quotes(found, actor) for actor in {m.actor for m in mentions}}

    def quote_view(self, inputs: Sequence[StanceInput]) -> tuple[np.ndarray, np.ndarray]:
        """Per actor row: the quote head's probabilities for its own words, and whether it
        has any (rows without a quote get a flat distribution). Each quote is read on its
        own; the one that takes a side most clearly speaks for the actor."""
        quote = np.full((len(inputs), len(self.stances)), 1.0 / len(self.stances))
        has_quote = np.zeros(len(inputs), dtype=bool)
        owners = [row for row, item in enumerate(inputs) for _ in item.quoted]
        if not owners or self.quote_head is None:
            return quote, has_quote
        texts = [item.text[a:b] for item in inputs for a, b in item.quoted]
        probs = self.quote_head.probs(texts)
        strength = np.where(self.polar, probs, 0.0).max(axis=1)
        best: dict[int, int] = {}
        for index, row in enumerate(owners):
            if row not in best or strength[index] > strength[best[row]]:
                best[row] = index
        rows = list(best)
        quote[rows] = probs[[best[row] for row in rows]]
        has_quote[rows] = True
        return quote, has_quote
