"""Fit and score the topic and stance heads: cross-validation, held-out, baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict

from topicstance.bundle import sentence_evidence, stack_inputs, stacked_probs
from training.dataset import Section, Taxonomy
from training.evaluation import (
    keyword_stances,
    keyword_topics,
    majority,
    stance_scores,
    topic_scores,
    tune_thresholds,
)
from training.pipelines import (
    StanceConfig,
    TopicConfig,
    primary_classifier,
    stance_examples,
    stance_pipeline,
    topic_classifier,
    topic_features,
    topic_targets,
)

CV_FOLDS = 5
STACKER_FOLDS = 5


@dataclass
class TopicHeads:
    """Fitted features, multi-label classifier, thresholds and primary classifier."""

    features: Any
    classifier: Any
    primary: Any
    thresholds: dict[str, float]
    stacker: dict[str, np.ndarray] | None = None

    def stack_inputs(self, texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Section and best-sentence evidence per topic (the stacker's inputs), and primaries."""
        matrix = self.features.transform(list(texts))
        section = np.asarray(self.classifier.predict_proba(matrix))
        highest, passing = sentence_evidence(texts, self.features, self.classifier)
        primaries = [str(p) for p in self.primary.predict(matrix)]
        return stack_inputs(section, highest, passing), primaries

    def predict(
        self, texts: Sequence[str], taxonomy: Taxonomy
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(probabilities, listed topics as 0/1, primary topics) by the serving rule."""
        inputs, primaries = self.stack_inputs(texts)
        if self.stacker is not None:
            probs = stacked_probs(inputs, self.stacker)
        else:  # the section's own probability (the first input is its log-odds)
            probs = 1.0 / (1.0 + np.exp(-inputs[..., 0]))
        return probs, listed_topics(probs, primaries, self.thresholds, taxonomy), primaries


def listed_topics(
    probs: np.ndarray, primaries: Sequence[str], thresholds: dict[str, float], taxonomy: Taxonomy
) -> np.ndarray:
    """Topics above threshold plus the primary; none for a none primary (as served)."""
    cutoffs = np.asarray([thresholds[t] for t in taxonomy.topics])
    listed = (probs >= cutoffs).astype(int)
    for row, primary in enumerate(primaries):
        if primary == taxonomy.none_topic:
            listed[row] = 0
        else:
            listed[row, taxonomy.topics.index(primary)] = 1
    return listed


def _texts(sections: Sequence[Section]) -> list[str]:
    return [s.full_text for s in sections]


def _primaries(sections: Sequence[Section], taxonomy: Taxonomy) -> list[str]:
    return [s.primary_topic(taxonomy.none_topic) for s in sections]


def fit_topics(
    sections: Sequence[Section],
    taxonomy: Taxonomy,
    config: TopicConfig,
    seed: int,
    thresholds: dict[str, float],
    *,
    stacker: dict[str, np.ndarray] | None = None,
) -> TopicHeads:
    features = topic_features(config)
    matrix = features.fit_transform(_texts(sections))
    classifier = topic_classifier(config, seed).fit(matrix, topic_targets(sections, taxonomy))
    primary = primary_classifier(config, seed).fit(matrix, _primaries(sections, taxonomy))
    return TopicHeads(features, classifier, primary, thresholds, stacker)


def folds(
    sections: Sequence[Section], count: int = CV_FOLDS
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group k-fold by document, so no document is on both sides."""
    groups = [s.group for s in sections]
    splitter = GroupKFold(n_splits=min(count, len(set(groups))))
    return list(splitter.split(np.zeros(len(sections)), groups=groups))


def fit_stacker(
    inputs: np.ndarray, targets: np.ndarray, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per topic, a logistic regression over (section, best sentence, sentence count),
    fitted on out-of-fold inputs; returns it and its own out-of-fold probabilities."""
    coef, intercept = [], []
    probs = np.zeros(targets.shape)
    for column in range(targets.shape[1]):
        model = LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
        probs[:, column] = cross_val_predict(
            model, inputs[:, column], targets[:, column], cv=STACKER_FOLDS, method="predict_proba"
        )[:, 1]
        model.fit(inputs[:, column], targets[:, column])
        coef.append(model.coef_[0])
        intercept.append(model.intercept_[0])
    return {"coef": np.asarray(coef), "intercept": np.asarray(intercept)}, probs


def cross_validate_topics(
    sections: Sequence[Section],
    taxonomy: Taxonomy,
    config: TopicConfig,
    seed: int,
    count: int = CV_FOLDS,
) -> tuple[dict[str, float], dict[str, np.ndarray], list[dict[str, Any]]]:
    """The stacker and thresholds, fitted and tuned on out-of-fold scores, and each
    fold's scores with them."""
    targets = topic_targets(sections, taxonomy)
    inputs = np.zeros((*targets.shape, 3))
    primaries: list[str] = [""] * len(sections)
    splits = folds(sections, count)
    neutral_thresholds = dict.fromkeys(taxonomy.topics, 0.5)
    for train_index, val_index in splits:
        heads = fit_topics(
            [sections[i] for i in train_index], taxonomy, config, seed, neutral_thresholds
        )
        fold_inputs, fold_primaries = heads.stack_inputs([sections[i].full_text for i in val_index])
        inputs[val_index] = fold_inputs
        for i, primary in zip(val_index, fold_primaries, strict=True):
            primaries[i] = primary
    stacker, oof = fit_stacker(inputs, targets, seed)
    thresholds = tune_thresholds(targets, oof, taxonomy.topics, primaries, taxonomy.none_topic)
    gold = _primaries(sections, taxonomy)
    scores = []
    for _, val_index in splits:
        fold_primaries = [primaries[i] for i in val_index]
        scores.append(
            topic_scores(
                targets[val_index],
                listed_topics(oof[val_index], fold_primaries, thresholds, taxonomy),
                [gold[i] for i in val_index],
                fold_primaries,
                taxonomy.topics,
            )
        )
    return thresholds, stacker, scores


def score_topics(
    heads: TopicHeads, sections: Sequence[Section], taxonomy: Taxonomy
) -> tuple[dict[str, Any], np.ndarray, list[str]]:
    probs, listed, primaries = heads.predict(_texts(sections), taxonomy)
    scores = topic_scores(
        topic_targets(sections, taxonomy),
        listed,
        _primaries(sections, taxonomy),
        primaries,
        taxonomy.topics,
    )
    return scores, probs, primaries


def fit_stances(
    sections: Sequence[Section], taxonomy: Taxonomy, config: StanceConfig, seed: int
) -> Any:
    inputs, labels, _ = stance_examples(sections, taxonomy.matcher())
    return stance_pipeline(config, taxonomy.stance_cues, seed).fit(inputs, labels)


def score_stances(
    model: Any, sections: Sequence[Section], taxonomy: Taxonomy
) -> tuple[dict[str, Any], list[str], list[str], np.ndarray]:
    inputs, gold, _ = stance_examples(sections, taxonomy.matcher())
    if not inputs:
        return (
            stance_scores([], [], taxonomy.stances, taxonomy.neutral_stance),
            [],
            [],
            np.empty((0, 0)),
        )
    probs = np.asarray(model.predict_proba(inputs))
    order = [list(model.classes_).index(s) for s in taxonomy.stances]
    probs = probs[:, order]
    predicted = [taxonomy.stances[i] for i in probs.argmax(axis=1)]
    return (
        stance_scores(gold, predicted, taxonomy.stances, taxonomy.neutral_stance),
        gold,
        predicted,
        probs,
    )


def cross_validate_stances(
    sections: Sequence[Section],
    taxonomy: Taxonomy,
    config: StanceConfig,
    seed: int,
    count: int = CV_FOLDS,
) -> list[dict[str, Any]]:
    scores = []
    for train_index, val_index in folds(sections, count):
        model = fit_stances([sections[i] for i in train_index], taxonomy, config, seed)
        scores.append(score_stances(model, [sections[i] for i in val_index], taxonomy)[0])
    return scores


@dataclass
class HeldOut:
    """Scores and predictions of both heads on the held-out split."""

    sections: Sequence[Section]
    topics: dict[str, Any]
    topic_probs: np.ndarray
    primaries: list[str]
    stances: dict[str, Any]
    gold_stances: list[str]
    predicted_stances: list[str]
    stance_probs: np.ndarray


def evaluate(
    heads: TopicHeads, stance_model: Any, sections: Sequence[Section], taxonomy: Taxonomy
) -> HeldOut:
    topics, topic_probs, primaries = score_topics(heads, sections, taxonomy)
    stances, gold, predicted, stance_probs = score_stances(stance_model, sections, taxonomy)
    return HeldOut(sections, topics, topic_probs, primaries, stances, gold, predicted, stance_probs)


def baselines(
    train: Sequence[Section], test: Sequence[Section], taxonomy: Taxonomy
) -> dict[str, Any]:
    """Majority-class and keyword-rule scores on the held-out split."""
    targets = topic_targets(test, taxonomy)
    gold_primary = _primaries(test, taxonomy)
    common = majority(_primaries(train, taxonomy))
    majority_listed = np.zeros(targets.shape, dtype=int)
    if common != taxonomy.none_topic:
        majority_listed[:, taxonomy.topics.index(common)] = 1
    results: dict[str, Any] = {
        "majority": {
            "topics": topic_scores(
                targets, majority_listed, gold_primary, [common] * len(test), taxonomy.topics
            ),
        }
    }
    matcher = taxonomy.matcher()
    _, train_stances, _ = stance_examples(train, matcher)
    inputs, gold_stances, _ = stance_examples(test, matcher)
    common_stance = majority(train_stances)
    results["majority"]["stances"] = stance_scores(
        gold_stances, [common_stance] * len(gold_stances), taxonomy.stances, taxonomy.neutral_stance
    )
    if taxonomy.topic_keywords:
        listed, primaries = keyword_topics(
            _texts(test), taxonomy.topic_keywords, taxonomy.topics, taxonomy.none_topic
        )
        results.setdefault("keywords", {})["topics"] = topic_scores(
            targets, listed, gold_primary, primaries, taxonomy.topics
        )
    if taxonomy.stance_cues:
        predicted = keyword_stances(
            inputs, taxonomy.stance_cues, taxonomy.stances, taxonomy.neutral_stance
        )
        results.setdefault("keywords", {})["stances"] = stance_scores(
            gold_stances, predicted, taxonomy.stances, taxonomy.neutral_stance
        )
    return results


def summarize(
    folds_scores: Sequence[dict[str, Any]], keys: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each score over the folds."""
    return {
        key: {
            "mean": float(np.mean([fold[key] for fold in folds_scores])),
            "std": float(np.std([fold[key] for fold in folds_scores])),
        }
        for key in keys
    }
