"""How scores become answers: the topic stacker, calibration, the primary-topic rule and
the own-quote rule for stances.

Plain NumPy over the heads' probabilities, shared by serving (the bundle) and training
(which fits the parameters on out-of-fold scores), so both compute the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_EPSILON = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, _EPSILON, 1 - _EPSILON)
    return np.asarray(np.log(clipped / (1 - clipped)))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def softmax(z: np.ndarray) -> np.ndarray:
    shifted = np.exp(z - z.max(axis=-1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True))


def class_scores(inputs: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """A fitted logistic model's scores, one column per class, so that their softmax is
    its `predict_proba`: with two classes scikit-learn keeps one row of weights (for the
    second class), and the first class's score is 0."""
    scores = np.asarray(inputs @ np.asarray(coef).T + intercept)
    if scores.shape[1] == 1:
        return np.hstack([np.zeros_like(scores), scores])
    return scores


@dataclass(frozen=True)
class SentenceEvidence:
    """Per text and topic, what its sentences say.

    `highest`: the best single sentence's probability (a topic is listed when one full
    sentence is about it); `passing`: how many sentences pass 0.5; `votes`: how many
    sentences have the topic as their most likely one (the primary is the topic most
    sentences are about); `sentences`: how many sentences were scored.
    """

    highest: np.ndarray
    passing: np.ndarray
    votes: np.ndarray
    sentences: np.ndarray

    @classmethod
    def from_sentences(
        cls, probs: np.ndarray, owners: Sequence[int], texts: int, topics: int
    ) -> SentenceEvidence:
        highest, passing = np.zeros((texts, topics)), np.zeros((texts, topics))
        votes, counts = np.zeros((texts, topics)), np.zeros(texts)
        if len(owners):
            rows = np.asarray(owners)
            np.maximum.at(highest, rows, probs)
            np.add.at(passing, rows, probs >= 0.5)
            winner = probs.argmax(axis=1)
            confident = probs[np.arange(len(rows)), winner] >= 0.5
            np.add.at(votes, (rows[confident], winner[confident]), 1.0)
            np.add.at(counts, rows, 1.0)
        return cls(highest, passing, votes, counts)

    def vote_share(self) -> np.ndarray:
        """Each topic's share of the sentences that voted."""
        total = self.votes.sum(axis=1, keepdims=True)
        return np.asarray(
            np.divide(self.votes, total, out=np.zeros_like(self.votes), where=total > 0)
        )


def stack_inputs(section: np.ndarray, evidence: SentenceEvidence) -> np.ndarray:
    """The stacker's inputs per topic: section and best-sentence log-odds, and the
    number of sentences that pass."""
    return np.stack([logit(section), logit(evidence.highest), evidence.passing], axis=-1)


def stacked_probs(inputs: np.ndarray, stacker: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per topic, a logistic combination of section and sentence evidence."""
    scores = np.einsum("ntk,tk->nt", inputs, stacker["coef"]) + stacker["intercept"]
    return sigmoid(scores)


def calibrate(probs: np.ndarray, calibrator: Mapping[str, Any] | None) -> np.ndarray:
    """Probabilities through a fitted calibrator: per-column temperature on the
    log-odds (`binary_temperature`), temperature on multiclass log-probabilities
    (`temperature`), isotonic steps per column (`isotonic`), or unchanged."""
    if not calibrator or calibrator["kind"] == "none":
        return probs
    kind = calibrator["kind"]
    if kind == "binary_temperature":
        return sigmoid(logit(probs) / np.asarray(calibrator["temperature"]))
    if kind == "temperature":
        return softmax(np.log(np.clip(probs, _EPSILON, 1.0)) / float(calibrator["temperature"]))
    if kind == "isotonic":
        columns = [
            np.interp(probs[:, i], np.asarray(x), np.asarray(y))
            for i, (x, y) in enumerate(zip(calibrator["x"], calibrator["y"], strict=True))
        ]
        return np.column_stack(columns) if columns else probs
    raise ValueError(f"unknown calibrator {kind!r}")


def primary_inputs(
    primary_probs: np.ndarray, evidence: SentenceEvidence, stacked: np.ndarray
) -> np.ndarray:
    """What the primary stacker reads per section: the primary head's log-probabilities
    (every label, the none topic included), and per topic its share of the sentences'
    votes, its listing log-odds, its best sentence's log-odds and how many sentences
    pass. The rule is "the primary is the topic most sentences are about"; the head
    alone follows the loudest cues."""
    return np.hstack(
        [
            np.log(np.clip(primary_probs, _EPSILON, 1.0)),
            evidence.vote_share(),
            logit(stacked),
            logit(evidence.highest),
            evidence.passing,
        ]
    )


def choose_primaries(scores: np.ndarray, labels: Sequence[str], allowed: np.ndarray) -> list[str]:
    """The best-scoring label per row among those `allowed` (the none topic always is)."""
    return [labels[i] for i in np.where(allowed, scores, -np.inf).argmax(axis=1)]


def primary_scores(inputs: np.ndarray, stacker: Mapping[str, Any]) -> np.ndarray:
    """The primary stacker's scores: a multinomial logistic model fitted on out-of-fold
    scores, one column per label of `stacker["labels"]`."""
    return class_scores(inputs, stacker["coef"], stacker["intercept"])


def allowed_topics(
    topics: Sequence[str], requires: Mapping[str, Sequence[str]], actors: Sequence[set[str]]
) -> np.ndarray:
    """Per text and topic, whether the topic may be listed: a topic that requires actors
    (`us_policy` needs a US actor, by the rules) only where one of them is mentioned."""
    return np.asarray(
        [
            [not requires.get(topic) or bool(found & set(requires[topic])) for topic in topics]
            for found in actors
        ],
        dtype=bool,
    ).reshape(len(actors), len(topics))


def combine_stances(
    section: np.ndarray,
    quote: np.ndarray,
    has_quote: np.ndarray,
    combiner: Mapping[str, Any],
    bayes: np.ndarray | None = None,
) -> np.ndarray:
    """Stance probabilities from the section view (and the naive Bayes view of the same
    features, if fitted) and, where the actor is quoted, the view of its own quoted
    words: a multinomial logistic model fitted on out-of-fold probabilities, so each
    view weighs what the labels say it should."""
    inputs = stance_inputs(section, quote, has_quote, bayes)
    return softmax(class_scores(inputs, combiner["coef"], combiner["intercept"]))


def stance_inputs(
    section: np.ndarray, quote: np.ndarray, has_quote: np.ndarray, bayes: np.ndarray | None = None
) -> np.ndarray:
    """The combiner's inputs: section log-probabilities, naive Bayes log-probabilities
    (if given), quote log-probabilities (zero without a quote), and whether there is one."""
    flag = has_quote.astype(float)[:, None]
    views = [section] if bayes is None else [section, bayes]
    return np.hstack(
        [
            *(np.log(np.clip(view, _EPSILON, 1.0)) for view in views),
            flag * np.log(np.clip(quote, _EPSILON, 1.0)),
            flag,
        ]
    )


def own_quote_wins(
    probs: np.ndarray, quote: np.ndarray, has_quote: np.ndarray, at: float, polar: np.ndarray
) -> np.ndarray:
    """The rule "the actor's own direct quote wins": where the quote head is at least
    `at` sure of a posture that takes a side, that posture becomes the answer; the
    quote head's probabilities replace the others for that actor."""
    wins = has_quote & (quote.max(axis=1) >= at) & polar[quote.argmax(axis=1)]
    return np.where(wins[:, None], quote, probs)
