"""Calibration: make scores mean what they say, chosen and fitted on out-of-fold scores.

A caller thresholds on our probabilities, so a 0.8 must be right about 80 % of the time.
Candidates (none, temperature, isotonic) are compared by cross-validation on the
out-of-fold probabilities; the one with the lowest expected calibration error wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import KFold

from topicstance.decisions import calibrate, logit, softmax

ECE_BINS = 15
CALIBRATION_FOLDS = 5
_EPSILON = 1e-6


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: the bin-weighted gap between confidence and accuracy,
    over equal-width bins of confidence."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if not len(confidence):
        return 0.0
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(total)


def topic_ece(probs: np.ndarray, targets: np.ndarray) -> list[float]:
    """Per topic, the ECE of its probability as a yes/no forecast."""
    return [ece(probs[:, i], targets[:, i]) for i in range(targets.shape[1])]


def stance_ece(probs: np.ndarray, gold: np.ndarray) -> float:
    """The ECE of the predicted stance's probability (top-label calibration)."""
    if not len(probs):
        return 0.0
    return ece(probs.max(axis=1), probs.argmax(axis=1) == gold)


def _binary_temperature(probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    temperatures = []
    for column in range(targets.shape[1]):
        z, y = logit(probs[:, column]), targets[:, column]

        def loss(log_t: float, z: np.ndarray = z, y: np.ndarray = y) -> float:
            p = np.clip(1.0 / (1.0 + np.exp(-z / np.exp(log_t))), _EPSILON, 1 - _EPSILON)
            return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

        temperatures.append(float(np.exp(minimize_scalar(loss, bounds=(-3, 3)).x)))
    return {"kind": "binary_temperature", "temperature": temperatures}


def _isotonic(probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    xs, ys = [], []
    for column in range(targets.shape[1]):
        model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        model.fit(probs[:, column], targets[:, column])
        xs.append(model.X_thresholds_.tolist())
        ys.append(model.y_thresholds_.tolist())
    return {"kind": "isotonic", "x": xs, "y": ys}


def _temperature(probs: np.ndarray, gold: np.ndarray) -> dict[str, Any]:
    log_probs = np.log(np.clip(probs, _EPSILON, 1.0))

    def loss(log_t: float) -> float:
        scaled = softmax(log_probs / np.exp(log_t))
        return float(-np.mean(np.log(np.clip(scaled[np.arange(len(gold)), gold], _EPSILON, 1))))

    return {
        "kind": "temperature",
        "temperature": float(np.exp(minimize_scalar(loss, bounds=(-3, 3)).x)),
    }


def _none(probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    return {"kind": "none"}


Fitter = Callable[[np.ndarray, np.ndarray], dict[str, Any]]
TOPIC_CALIBRATORS: dict[str, Fitter] = {
    "none": _none,
    "temperature": _binary_temperature,
    "isotonic": _isotonic,
}
STANCE_CALIBRATORS: dict[str, Fitter] = {"none": _none, "temperature": _temperature}


def choose(
    probs: np.ndarray,
    targets: np.ndarray,
    candidates: dict[str, Fitter],
    error: Callable[[np.ndarray, np.ndarray], float],
    seed: int,
) -> tuple[dict[str, Any], dict[str, float]]:
    """The candidate with the lowest cross-validated error, refitted on every row, and
    each candidate's cross-validated error."""
    splitter = KFold(n_splits=CALIBRATION_FOLDS, shuffle=True, random_state=seed)
    errors = {}
    for name, fit in candidates.items():
        outcome = np.zeros_like(probs)
        for train, test in splitter.split(probs):
            outcome[test] = calibrate(probs[test], fit(probs[train], targets[train]))
        errors[name] = error(outcome, targets)
    best = min(errors, key=lambda name: errors[name])
    return candidates[best](probs, targets), errors


def choose_topic_calibrator(
    probs: np.ndarray, targets: np.ndarray, seed: int
) -> tuple[dict[str, Any], dict[str, float]]:
    """For the topic probabilities: by the mean of the per-topic ECEs."""
    return choose(
        probs,
        targets,
        TOPIC_CALIBRATORS,
        lambda p, t: float(np.mean(topic_ece(p, t))),
        seed,
    )


def choose_stance_calibrator(
    probs: np.ndarray, gold: np.ndarray, seed: int
) -> tuple[dict[str, Any], dict[str, float]]:
    """For the stance probabilities: by the ECE of the predicted stance."""
    return choose(probs, gold, STANCE_CALIBRATORS, stance_ece, seed)


def reliability(
    probs: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per non-empty bin, for the plots."""
    which = np.minimum((np.asarray(probs) * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            rows.append((float(probs[mask].mean()), float(correct[mask].mean()), int(mask.sum())))
    return rows


def describe(calibrator: dict[str, Any], errors: dict[str, float]) -> dict[str, Any]:
    """What the report says about a choice: the winner and every candidate's error."""
    return {"chosen": calibrator["kind"], "cv_ece": {k: round(v, 4) for k, v in errors.items()}}


def gold_indices(labels: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
    return np.asarray([list(vocabulary).index(label) for label in labels], dtype=int)
