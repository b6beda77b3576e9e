"""Scores of the two heads, as plain dictionaries ready for JSON and reports."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from topicstance.features import StanceInput

THRESHOLD_GRID = np.round(np.arange(0.10, 0.91, 0.02), 2)


def tune_thresholds(
    targets: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    primaries: Sequence[str] | None = None,
    none: str | None = None,
) -> dict[str, float]:
    """Per label, the threshold with the best F1 on out-of-fold scores (ties: nearest 0.5).

    With `primaries`, F1 is that of the served rule: the primary is always listed,
    and a none primary lists nothing, so a threshold only decides the rest.
    """
    thresholds = {}
    for column, label in enumerate(labels):
        forced = np.zeros(len(targets), dtype=bool)
        allowed = np.ones(len(targets), dtype=bool)
        if primaries is not None:
            forced = np.asarray([p == label for p in primaries])
            allowed = np.asarray([p != none for p in primaries])
        scores = [
            (
                f1_score(
                    targets[:, column],
                    forced | (allowed & (probs[:, column] >= t)),
                    zero_division=0,
                ),
                -abs(t - 0.5),
                t,
            )
            for t in THRESHOLD_GRID
        ]
        thresholds[label] = float(max(scores)[2])
    return thresholds


def primary_topics(
    probs: np.ndarray, thresholds: np.ndarray, labels: Sequence[str], none: str
) -> list[str]:
    """The highest-scoring topic above its threshold, or the none label."""
    primaries = []
    for row in probs:
        passed = row >= thresholds
        primaries.append(
            labels[int(np.argmax(np.where(passed, row, -1.0)))] if passed.any() else none
        )
    return primaries


def per_label(y_true: Any, y_pred: Any, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true,
        y_pred,
        labels=None if isinstance(y_true, np.ndarray) else list(labels),
        zero_division=0,
    )
    return {
        label: {
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": int(s),
        }
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }


def topic_scores(
    targets: np.ndarray,
    predicted: np.ndarray,
    gold_primary: Sequence[str],
    predicted_primary: Sequence[str],
    labels: Sequence[str],
) -> dict[str, Any]:
    """Multi-label F1 per topic and overall, and primary-topic accuracy."""
    return {
        "macro_f1": float(f1_score(targets, predicted, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(targets, predicted, average="micro", zero_division=0)),
        "primary_accuracy": float(accuracy_score(gold_primary, predicted_primary)),
        "per_label": per_label(targets, predicted, labels),
        "sections": len(gold_primary),
    }


def stance_scores(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str], neutral: str | None
) -> dict[str, Any]:
    """Macro-F1, accuracy, and F_avg: the mean F1 of the non-neutral stances (SemEval)."""
    report = per_label(list(gold), list(predicted), labels)
    polar = [label for label in labels if label != neutral]
    return {
        "macro_f1": float(
            f1_score(gold, predicted, labels=list(labels), average="macro", zero_division=0)
        ),
        "f_avg": float(np.mean([report[label]["f1"] for label in polar])) if polar else 0.0,
        "accuracy": float(accuracy_score(gold, predicted)) if gold else 0.0,
        "per_label": report,
        "pairs": len(gold),
    }


def format_report(title: str, scores: dict[str, Any], headline: Sequence[str]) -> str:
    """A short per-label table for the terminal."""
    lines = [f"{title}: " + ", ".join(f"{key} {scores[key]:.3f}" for key in headline)]
    lines.append(f"  {'label':<18}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}")
    for label, row in scores["per_label"].items():
        numbers = f"{row['precision']:>10.3f}{row['recall']:>8.3f}{row['f1']:>8.3f}"
        lines.append(f"  {label:<18}{numbers}{row['support']:>9}")
    return "\n".join(lines)


def keyword_topics(
    texts: Sequence[str], keywords: Mapping[str, Sequence[str]], labels: Sequence[str], none: str
) -> tuple[np.ndarray, list[str]]:
    """The keyword-rule baseline: a topic is listed when one of its keywords occurs;
    the primary is the topic with the most hits."""
    patterns = {
        label: re.compile(
            r"(?<!\w)(?:" + "|".join(re.escape(k) for k in keywords.get(label, [])) + r")(?!\w)",
            re.IGNORECASE,
        )
        if keywords.get(label)
        else None
        for label in labels
    }
    predicted = np.zeros((len(texts), len(labels)), dtype=int)
    primaries = []
    for row, text in enumerate(texts):
        hits = [len(p.findall(text)) if p else 0 for p in patterns.values()]
        predicted[row] = [int(h > 0) for h in hits]
        primaries.append(labels[int(np.argmax(hits))] if max(hits) > 0 else none)
    return predicted, primaries


def keyword_stances(
    inputs: Sequence[StanceInput],
    cues: Mapping[str, Sequence[str]],
    labels: Sequence[str],
    neutral: str | None,
) -> list[str]:
    """The keyword-rule baseline: the stance whose cue words occur most often in the
    sentences that mention the actor; no cue or a tie gives the neutral stance."""
    fallback = neutral or labels[-1]
    words = {label: {w.lower() for w in cues.get(label, [])} for label in labels}
    predicted = []
    for item in inputs:
        tokens = item.tokens.context(0)
        counts = {label: sum(t in words[label] for t in tokens) for label in labels}
        best = max(counts.values())
        winners = [label for label, count in counts.items() if count == best]
        predicted.append(winners[0] if best > 0 and len(winners) == 1 else fallback)
    return predicted


def majority(labels: Sequence[str]) -> str:
    """The most frequent label (ties: the first seen)."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return max(counts, key=lambda label: counts[label])
