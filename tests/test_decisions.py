"""The rules that turn scores into answers: calibration, topics an actor is needed for,
the primary topic, and the actor's own quote."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from topicstance.decisions import (
    allowed_topics,
    calibrate,
    choose_primaries,
    class_scores,
    combine_stances,
    own_quote_wins,
    softmax,
    stance_inputs,
)
from training.calibration import choose_topic_calibrator, ece


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_not() -> None:
    confidence = np.full(100, 0.8)
    assert ece(confidence, np.arange(100) < 80) < 1e-9
    assert abs(ece(confidence, np.zeros(100)) - 0.8) < 1e-9


def test_a_calibrator_chosen_by_cross_validation_fixes_overconfidence() -> None:
    rng = np.random.default_rng(3)
    truth = rng.random(4000)
    targets = (rng.random(4000) < truth).astype(int)[:, None]
    overconfident = np.clip(truth + (truth - 0.5), 0.001, 0.999)[:, None]
    calibrator, errors = choose_topic_calibrator(overconfident, targets, seed=1)
    assert calibrator["kind"] != "none"
    assert errors[calibrator["kind"]] < errors["none"] / 2
    fixed = calibrate(overconfident, calibrator)
    assert ece(fixed[:, 0], targets[:, 0]) < ece(overconfident[:, 0], targets[:, 0]) / 2


def test_a_topic_that_needs_an_actor_is_allowed_only_where_it_is_mentioned() -> None:
    allowed = allowed_topics(
        ["territory", "us_policy"],
        {"us_policy": ["united_states"]},
        [{"ukraine"}, {"united_states", "russia"}, set()],
    )
    assert allowed.tolist() == [[True, False], [True, True], [True, False]]


def test_the_primary_is_the_best_allowed_label() -> None:
    scores = np.asarray([[0.1, 0.9, 0.3], [0.1, 0.9, 0.3]])
    allowed = np.asarray([[True, True, True], [True, False, True]])
    labels = ["other", "us_policy", "territory"]
    assert choose_primaries(scores, labels, allowed) == ["us_policy", "territory"]


def test_a_confident_own_quote_that_takes_a_side_wins() -> None:
    section = np.asarray([[0.05, 0.9, 0.05]] * 3)
    quote = np.asarray([[0.85, 0.1, 0.05], [0.05, 0.1, 0.85], [0.6, 0.3, 0.1]])
    polar = np.asarray([True, True, False])
    decided = own_quote_wins(section, quote, np.asarray([True, True, True]), 0.8, polar)
    assert decided.argmax(axis=1).tolist() == [0, 1, 1]  # neutral and unsure quotes do not win
    unquoted = own_quote_wins(section, quote, np.asarray([False, False, False]), 0.8, polar)
    assert np.array_equal(unquoted, section)


def test_scores_of_a_two_class_combiner_give_both_classes_as_sklearn_does() -> None:
    """A taxonomy with two stances gets a binary combiner: one row of weights, which
    must still give one probability per stance, the same as scikit-learn's."""
    rng = np.random.default_rng(3)
    section, quote = rng.dirichlet([1, 1], 60), rng.dirichlet([1, 1], 60)
    has_quote = rng.random(60) < 0.5
    inputs = stance_inputs(section, quote, has_quote)
    gold = (section[:, 1] + rng.normal(0, 0.2, 60) > 0.5).astype(int)
    model = LogisticRegression().fit(inputs, gold)
    combiner = {"coef": model.coef_, "intercept": model.intercept_}
    probs = combine_stances(section, quote, has_quote, combiner)
    assert probs.shape == (60, 2)
    assert np.allclose(probs, model.predict_proba(inputs))
    assert np.allclose(softmax(class_scores(inputs, model.coef_, model.intercept_)), probs)
