"""Fit and score the topic and stance heads: cross-validation, held-out, baselines.

Everything a rule needs (the sentence stacker, the calibrators, the thresholds, the
weight of sentence votes in the primary topic, the own-quote combiner) is fitted on
out-of-fold scores of the training split; the held-out splits are only scored, with the
same `topicstance.model` objects the server runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, KFold, cross_val_predict
from sklearn.naive_bayes import ComplementNB

from topicstance.actors import ActorMatcher
from topicstance.decisions import (
    SentenceEvidence,
    allowed_topics,
    calibrate,
    choose_primaries,
    own_quote_wins,
    primary_inputs,
    stack_inputs,
    stance_inputs,
)
from topicstance.model import QuoteHead, StanceModel, TopicModel, TopicScores
from topicstance.quotes import QuoteAttributor
from training.calibration import (
    choose_stance_calibrator,
    choose_topic_calibrator,
    describe,
    stance_ece,
    topic_ece,
)
from training.dataset import LabeledQuote, Section, Taxonomy
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
    quote_pipeline,
    stance_bayes,
    stance_examples,
    stance_pipeline,
    topic_classifier,
    topic_features,
    topic_targets,
)

CV_FOLDS = 5
STACKER_FOLDS = 5
# Folds run side by side, one process each, up to this many.
PARALLEL_FOLDS = 2


def _texts(sections: Sequence[Section]) -> list[str]:
    return [s.full_text for s in sections]


def _primaries(sections: Sequence[Section], taxonomy: Taxonomy) -> list[str]:
    return [s.primary_topic(taxonomy.none_topic) for s in sections]


def folds(
    sections: Sequence[Section], count: int = CV_FOLDS
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group k-fold by document, so no document is on both sides."""
    groups = [s.group for s in sections]
    splitter = GroupKFold(n_splits=min(count, len(set(groups))))
    return list(splitter.split(np.zeros(len(sections)), groups=groups))


def fit_topic_base(
    sections: Sequence[Section], taxonomy: Taxonomy, config: TopicConfig, seed: int
) -> TopicModel:
    """The fitted features and classifiers, with neutral rules (no stacker, 0.5)."""
    features = topic_features(config)
    matrix = features.fit_transform(_texts(sections))
    classifier = topic_classifier(config, seed).fit(matrix, topic_targets(sections, taxonomy))
    primary = primary_classifier(config, seed).fit(matrix, _primaries(sections, taxonomy))
    return TopicModel(
        features=features,
        classifier=classifier,
        primary_classifier=primary,
        topics=taxonomy.topics,
        none_topic=taxonomy.none_topic,
        thresholds=np.full(len(taxonomy.topics), 0.5),
        requires=dict(taxonomy.topic_actors),
    )


def found_actors(sections: Sequence[Section], taxonomy: Taxonomy) -> list[set[str]]:
    matcher = taxonomy.matcher()
    return [set(matcher.actors_in(section.full_text)) for section in sections]


@dataclass
class TopicEvidence:
    """Out-of-fold (or held-out) raw scores: what the topic rules are fitted on."""

    section: np.ndarray
    evidence: SentenceEvidence
    primary: np.ndarray
    primary_labels: list[str]


def _fold_topics(
    sections: Sequence[Section],
    taxonomy: Taxonomy,
    config: TopicConfig,
    seed: int,
    split: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, TopicScores, list[str]]:
    train_index, val_index = split
    model = fit_topic_base([sections[i] for i in train_index], taxonomy, config, seed)
    return val_index, model.scores([sections[i].full_text for i in val_index]), model.primary_labels


def topic_evidence_oof(
    sections: Sequence[Section],
    taxonomy: Taxonomy,
    config: TopicConfig,
    seed: int,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
) -> TopicEvidence:
    """Raw topic scores of every training section from a model that never saw it."""
    n, width = len(sections), len(taxonomy.topics)
    section = np.zeros((n, width))
    highest, passing, votes = np.zeros((n, width)), np.zeros((n, width)), np.zeros((n, width))
    counts = np.zeros(n)
    labels = sorted({*taxonomy.topics, taxonomy.none_topic})
    primary = np.zeros((n, len(labels)))
    results = Parallel(n_jobs=min(PARALLEL_FOLDS, len(splits)))(
        delayed(_fold_topics)(sections, taxonomy, config, seed, split) for split in splits
    )
    for val_index, scores, fold_labels in results:
        section[val_index] = scores.section
        highest[val_index] = scores.evidence.highest
        passing[val_index] = scores.evidence.passing
        votes[val_index] = scores.evidence.votes
        counts[val_index] = scores.evidence.sentences
        for column, label in enumerate(fold_labels):
            primary[val_index, labels.index(label)] = scores.primary[:, column]
    evidence = SentenceEvidence(highest, passing, votes, counts)
    return TopicEvidence(section, evidence, primary, labels)


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


@dataclass
class TopicRules:
    """The topic rules fitted on out-of-fold scores, and what the report says of them."""

    stacker: dict[str, np.ndarray]
    calibrator: dict[str, Any]
    thresholds: np.ndarray
    primary_stacker: dict[str, Any]
    probs: np.ndarray
    primaries: list[str]
    notes: dict[str, Any] = field(default_factory=dict)


# The primary stacker's regularization.
PRIMARY_C = 1.0


def fit_topic_rules(
    oof: TopicEvidence, sections: Sequence[Section], taxonomy: Taxonomy, seed: int
) -> TopicRules:
    """Stacker, calibrator (chosen by CV), primary stacker and thresholds, in that order."""
    targets = topic_targets(sections, taxonomy)
    gold = _primaries(sections, taxonomy)
    stacker, stacked = fit_stacker(stack_inputs(oof.section, oof.evidence), targets, seed)
    calibrator, errors = choose_topic_calibrator(stacked, targets, seed)
    allowed = allowed_topics(
        taxonomy.topics, taxonomy.topic_actors, found_actors(sections, taxonomy)
    )
    probs = calibrate(stacked, calibrator) * allowed
    inputs = primary_inputs(oof.primary, oof.evidence, stacked)
    model = LogisticRegression(C=PRIMARY_C, max_iter=3000, random_state=seed)
    splitter = KFold(n_splits=STACKER_FOLDS, shuffle=True, random_state=seed)
    oof_scores = cross_val_predict(model, inputs, gold, cv=splitter, method="predict_log_proba")
    model.fit(inputs, gold)
    labels = [str(c) for c in model.classes_]
    label_allowed = np.column_stack(
        [
            allowed[:, taxonomy.topics.index(label)]
            if label in taxonomy.topics
            else np.ones(len(gold), dtype=bool)
            for label in labels
        ]
    )
    primaries = choose_primaries(oof_scores, labels, label_allowed)
    primary_stacker = {
        "coef": np.asarray(model.coef_),
        "intercept": np.asarray(model.intercept_),
        "labels": labels,
    }
    head = [oof.primary_labels[i] for i in oof.primary.argmax(axis=1)]
    tuned = tune_thresholds(targets, probs, taxonomy.topics, primaries, taxonomy.none_topic)
    thresholds = np.asarray([tuned[t] for t in taxonomy.topics])
    notes = {
        "topic_calibration": describe(calibrator, errors),
        "primary_stacker": {
            "cv_primary_accuracy": _accuracy(primaries, gold),
            "cv_primary_accuracy_head_alone": _accuracy(head, gold),
        },
    }
    return TopicRules(stacker, calibrator, thresholds, primary_stacker, probs, primaries, notes)


def _accuracy(predicted: Sequence[str], gold: Sequence[str]) -> float:
    return float(np.mean([a == b for a, b in zip(predicted, gold, strict=True)]))


def fold_topic_scores(
    rules: TopicRules,
    sections: Sequence[Section],
    taxonomy: Taxonomy,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
) -> list[dict[str, Any]]:
    """Each fold's scores under the fitted rules (for mean and spread)."""
    targets = topic_targets(sections, taxonomy)
    gold = _primaries(sections, taxonomy)
    listed = _served_listing(rules.probs, rules.primaries, rules.thresholds, taxonomy)
    return [
        topic_scores(
            targets[val],
            listed[val],
            [gold[i] for i in val],
            [rules.primaries[i] for i in val],
            taxonomy.topics,
        )
        for _, val in splits
    ]


def _served_listing(
    probs: np.ndarray, primaries: Sequence[str], thresholds: np.ndarray, taxonomy: Taxonomy
) -> np.ndarray:
    """Topics above threshold plus the primary; none for a none primary (as served)."""
    listed = (probs >= thresholds).astype(int)
    for row, primary in enumerate(primaries):
        if primary == taxonomy.none_topic:
            listed[row] = 0
        else:
            listed[row, taxonomy.topics.index(primary)] = 1
    return listed


def cross_validate_topics(
    sections: Sequence[Section],
    taxonomy: Taxonomy,
    config: TopicConfig,
    seed: int,
    count: int = CV_FOLDS,
) -> tuple[TopicRules, list[dict[str, Any]]]:
    """The topic rules fitted on out-of-fold scores, and each fold's scores with them."""
    splits = folds(sections, count)
    oof = topic_evidence_oof(sections, taxonomy, config, seed, splits)
    rules = fit_topic_rules(oof, sections, taxonomy, seed)
    return rules, fold_topic_scores(rules, sections, taxonomy, splits)


def fit_topics(
    sections: Sequence[Section],
    taxonomy: Taxonomy,
    config: TopicConfig,
    seed: int,
    rules: TopicRules | None = None,
) -> TopicModel:
    """The topic model on every training section, with the rules fitted out of fold."""
    model = fit_topic_base(sections, taxonomy, config, seed)
    if rules is not None:
        model.stacker = rules.stacker
        model.calibrator = rules.calibrator
        model.thresholds = rules.thresholds
        model.primary_stacker = rules.primary_stacker
    return model


# Stances

# The own-quote rule's thresholds to choose from (None: the combiner alone decides).
QUOTE_WINS_AT = (None, 0.6, 0.7, 0.8, 0.9)


def quote_attributor(taxonomy: Taxonomy) -> QuoteAttributor | None:
    verbs = taxonomy.quotes.get("speech_verbs", [])
    if not verbs:
        return None
    return QuoteAttributor(
        verbs, taxonomy.quotes.get("pronouns", []), taxonomy.quotes.get("first_person", [])
    )


def fit_quote_head(quotes: Sequence[LabeledQuote], taxonomy: Taxonomy, seed: int) -> QuoteHead:
    """A classifier of labeled quotes: word and character n-grams of the quoted words."""
    pipeline = quote_pipeline(seed).fit([q.text for q in quotes], [q.stance for q in quotes])
    return QuoteHead(pipeline, taxonomy.stances)


def fit_stance_base(
    sections: Sequence[Section],
    taxonomy: Taxonomy,
    config: StanceConfig,
    seed: int,
    quote_head: QuoteHead | None = None,
) -> StanceModel:
    quotes = quote_attributor(taxonomy)
    inputs, labels, _ = stance_examples(sections, taxonomy.matcher(), quotes)
    with_quotes = any(item.quoted for item in inputs)
    pipeline = stance_pipeline(config, taxonomy.stance_cues, seed, with_quotes)
    features = pipeline[:-1].fit_transform(inputs, labels)
    pipeline[-1].fit(features, labels)
    bayes = stance_bayes(config)
    if bayes is not None:
        lean(bayes.fit(features, labels))
        if list(bayes.classes_) != list(pipeline[-1].classes_):
            raise ValueError("the naive Bayes view and the logistic head disagree on classes")
    return StanceModel(
        pipeline,
        taxonomy.stances,
        quotes=quotes,
        quote_head=quote_head,
        bayes=bayes,
        neutral=taxonomy.neutral_stance,
    )


def lean(bayes: ComplementNB) -> None:
    """Keep only what prediction reads, laid out for it: the log-probabilities in column
    order, so the sparse product with their transpose copies nothing, and without the
    counts they came from (only `partial_fit` reads those; 20 MB of each worker)."""
    bayes.feature_log_prob_ = np.asfortranarray(bayes.feature_log_prob_)
    del bayes.feature_count_, bayes.feature_all_


@dataclass
class StanceViews:
    """Per actor pair: the section view, the own-quote view, whether quoted, the gold,
    and the naive Bayes view (if the model has one)."""

    section: np.ndarray
    quote: np.ndarray
    has_quote: np.ndarray
    gold: np.ndarray
    bayes: np.ndarray | None = None


def stance_views(
    model: StanceModel, sections: Sequence[Section], matcher: ActorMatcher, taxonomy: Taxonomy
) -> StanceViews:
    texts = _texts(sections)
    scores = model.scores(texts, [matcher.find(text) for text in texts])
    flat = [item for per_text in scores.inputs for item in per_text]
    gold = np.asarray(
        [
            taxonomy.stances.index(section.stances[item.actor])
            for section, per_text in zip(sections, scores.inputs, strict=True)
            for item in per_text
        ],
        dtype=int,
    )
    quote, has_quote = model.quote_view(flat)
    return StanceViews(scores.section, quote, has_quote, gold, scores.bayes)


def _fold_stances(
    sections: Sequence[Section],
    taxonomy: Taxonomy,
    config: StanceConfig,
    seed: int,
    split: tuple[np.ndarray, np.ndarray],
    *,
    quote_head: QuoteHead | None,
) -> StanceViews:
    train_index, val_index = split
    model = fit_stance_base([sections[i] for i in train_index], taxonomy, config, seed, quote_head)
    return stance_views(model, [sections[i] for i in val_index], taxonomy.matcher(), taxonomy)


@dataclass
class StanceRules:
    combiner: dict[str, np.ndarray]
    quote_wins_at: float | None
    calibrator: dict[str, Any]
    probs: np.ndarray
    gold: np.ndarray
    notes: dict[str, Any] = field(default_factory=dict)


def fit_stance_rules(views: StanceViews, taxonomy: Taxonomy, seed: int) -> StanceRules:
    """The combiner of the section views (logistic, naive Bayes if any) and the own-quote
    view (with its out-of-fold probabilities), the own-quote rule's threshold (by
    out-of-fold macro-F1), then the calibrator."""
    inputs = stance_inputs(views.section, views.quote, views.has_quote, views.bayes)
    model = LogisticRegression(C=COMBINER_C, max_iter=2000, random_state=seed)
    splitter = KFold(n_splits=STACKER_FOLDS, shuffle=True, random_state=seed)
    probs = cross_val_predict(model, inputs, views.gold, cv=splitter, method="predict_proba")
    model.fit(inputs, views.gold)
    combiner = {"coef": np.asarray(model.coef_), "intercept": np.asarray(model.intercept_)}
    polar = np.asarray([s != taxonomy.neutral_stance for s in taxonomy.stances])
    scores = {}
    for at in QUOTE_WINS_AT:
        ruled = (
            probs if at is None else own_quote_wins(probs, views.quote, views.has_quote, at, polar)
        )
        scores[str(at)] = _macro_f1(views.gold, ruled.argmax(axis=1), len(taxonomy.stances))
    best = max(QUOTE_WINS_AT, key=lambda at: (round(scores[str(at)], 4), at is None, at or 0))
    if best is not None:
        probs = own_quote_wins(probs, views.quote, views.has_quote, best, polar)
    calibrator, errors = choose_stance_calibrator(probs, views.gold, seed)
    notes = {
        "stance_calibration": describe(calibrator, errors),
        "quoted_pairs": int(views.has_quote.sum()),
        "own_quote_wins_at": {"chosen": best, "cv_macro_f1": scores},
    }
    return StanceRules(combiner, best, calibrator, calibrate(probs, calibrator), views.gold, notes)


# The combiner's regularization: a few inputs, so a strong prior on small weights.
COMBINER_C = 0.1


def _macro_f1(gold: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, predicted, labels=list(range(classes)), average="macro"))


def cross_validate_stances(
    sections: Sequence[Section],
    taxonomy: Taxonomy,
    config: StanceConfig,
    seed: int,
    count: int = CV_FOLDS,
    *,
    quote_head: QuoteHead | None = None,
) -> tuple[StanceRules, list[dict[str, Any]]]:
    """The stance rules fitted on out-of-fold views, and each fold's scores with them."""
    splits = folds(sections, count)
    results = Parallel(n_jobs=min(PARALLEL_FOLDS, len(splits)))(
        delayed(_fold_stances)(sections, taxonomy, config, seed, split, quote_head=quote_head)
        for split in splits
    )
    views = StanceViews(
        np.vstack([r.section for r in results]),
        np.vstack([r.quote for r in results]),
        np.concatenate([r.has_quote for r in results]),
        np.concatenate([r.gold for r in results]),
        None if config.bayes_alpha is None else np.vstack([r.bayes for r in results]),
    )
    rules = fit_stance_rules(views, taxonomy, seed)
    scores, start = [], 0
    for result in results:
        end = start + len(result.gold)
        predicted = [taxonomy.stances[i] for i in rules.probs[start:end].argmax(axis=1)]
        gold = [taxonomy.stances[i] for i in result.gold]
        scores.append(stance_scores(gold, predicted, taxonomy.stances, taxonomy.neutral_stance))
        start = end
    return rules, scores


def fit_stances(
    sections: Sequence[Section],
    taxonomy: Taxonomy,
    config: StanceConfig,
    seed: int,
    *,
    rules: StanceRules | None = None,
    quote_head: QuoteHead | None = None,
) -> StanceModel:
    model = fit_stance_base(sections, taxonomy, config, seed, quote_head)
    if rules is not None:
        model.combiner = rules.combiner
        model.quote_wins_at = rules.quote_wins_at
        model.calibrator = rules.calibrator
    return model


# Scoring


@dataclass
class HeldOut:
    """Scores and predictions of both heads on a held-out set."""

    sections: Sequence[Section]
    topics: dict[str, Any]
    topic_probs: np.ndarray
    primaries: list[str]
    stances: dict[str, Any]
    gold_stances: list[str]
    predicted_stances: list[str]
    stance_probs: np.ndarray


def evaluate(
    topic_model: TopicModel,
    stance_model: StanceModel,
    sections: Sequence[Section],
    taxonomy: Taxonomy,
) -> HeldOut:
    """Both heads on a labeled set, exactly as served, with calibration errors."""
    texts = _texts(sections)
    scores = topic_model.scores(texts, found_actors(sections, taxonomy))
    answers = topic_model.decide(scores)
    primaries = [primary for primary, _ in answers]
    targets = topic_targets(sections, taxonomy)
    listed = np.asarray(
        [[int(t in topics) for t in taxonomy.topics] for _, topics in answers], dtype=int
    ).reshape(len(sections), len(taxonomy.topics))
    topics = topic_scores(
        targets, listed, _primaries(sections, taxonomy), primaries, taxonomy.topics
    )
    two = [i for i, s in enumerate(sections) if len(s.topics) >= 2]
    gold_primaries = _primaries(sections, taxonomy)
    topics["two_topic_primary_accuracy"] = (
        float(np.mean([primaries[i] == gold_primaries[i] for i in two])) if two else 0.0
    )
    topics["two_topic_sections"] = len(two)
    topics["ece"] = dict(zip(taxonomy.topics, topic_ece(scores.probs, targets), strict=True))
    matcher = taxonomy.matcher()
    mentions = [matcher.find(text) for text in texts]
    stance = stance_model.scores(texts, mentions)
    gold_labels = [
        section.stances[item.actor]
        for section, per_text in zip(sections, stance.inputs, strict=True)
        for item in per_text
    ]
    predicted = [taxonomy.stances[i] for i in stance.probs.argmax(axis=1)]
    stances = stance_scores(gold_labels, predicted, taxonomy.stances, taxonomy.neutral_stance)
    gold_index = np.asarray([taxonomy.stances.index(g) for g in gold_labels], dtype=int)
    stances["ece"] = stance_ece(stance.probs, gold_index)
    return HeldOut(
        sections, topics, scores.probs, primaries, stances, gold_labels, predicted, stance.probs
    )


def baselines(
    train: Sequence[Section], test: Sequence[Section], taxonomy: Taxonomy
) -> dict[str, Any]:
    """Majority-class and keyword-rule scores on a held-out set."""
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
