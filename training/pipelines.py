"""The untrained heads, the configurations `--search` compares, and their inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from topicstance.actors import ActorMatcher
from topicstance.features import (
    ActorContext,
    CharNgramTfidf,
    CueCounts,
    FeatureListTfidf,
    MaskedContext,
    MaskedSection,
    MentionFacts,
    MentionWindow,
    OwnQuote,
    StanceInput,
    WordNgramTfidf,
    stance_inputs,
)
from topicstance.quotes import QuoteAttributor, own_quotes
from training.dataset import Section, Taxonomy

STANCE_PARTS = ("context", "section", "window", "facts", "cues", "actor_context", "quote")


@dataclass(frozen=True)
class ClassifierConfig:
    """A linear model family with its regularization and class weights."""

    family: str = "logreg"  # logreg, svc (calibrated LinearSVC) or sgd
    C: float = 10.0
    class_weight: str | None = "balanced"

    def build(self, seed: int) -> Any:
        if self.family == "logreg":
            return LogisticRegression(
                C=self.C, class_weight=self.class_weight, max_iter=5000, random_state=seed
            )
        if self.family == "svc":
            svc = LinearSVC(C=self.C / 20, class_weight=self.class_weight, random_state=seed)
            return CalibratedClassifierCV(svc, cv=3)
        if self.family == "sgd":
            return SGDClassifier(
                loss="log_loss",
                alpha=1.0 / (self.C * 2000),
                class_weight=self.class_weight,
                max_iter=50,
                tol=None,
                random_state=seed,
            )
        raise ValueError(f"unknown classifier family {self.family!r}")


@dataclass(frozen=True)
class TopicConfig:
    """Features and classifier of the topic heads (multi-label and primary)."""

    char_ngrams: tuple[int, int] | None = (3, 5)
    word_ngrams: tuple[int, int] = (1, 2)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)

    def describe(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StanceConfig:
    """Feature blocks and classifier of the stance head."""

    parts: tuple[str, ...] = STANCE_PARTS
    window: int = 0
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    # Smoothing of the complement naive Bayes view on the same features (None: no view).
    bayes_alpha: float | None = None

    def describe(self) -> dict[str, Any]:
        return asdict(self)


# The winners of the last `train.py --search` (see the model's report.md). The naive
# Bayes view and its smoothing were chosen later, by 5-fold CV of the train split with
# the quote head (a one-off script, not `--search`): stance macro-F1 0.795 without it,
# 0.804 at alpha 0.01, 0.803 at 0.03, 0.803 at 0.1.
DEFAULT_TOPIC = TopicConfig(word_ngrams=(1, 3))
DEFAULT_STANCE = StanceConfig(
    parts=tuple(part for part in STANCE_PARTS if part != "cues"),
    classifier=ClassifierConfig("logreg", 30.0),
    bayes_alpha=0.01,
)


def topic_features(config: TopicConfig) -> FeatureUnion:
    """Word n-gram TF-IDF, plus character n-grams within word boundaries if configured;
    both bounded by sentences, so the sentence stacker's rows come from the same pass."""
    blocks: list[tuple[str, Any]] = [
        (
            "word",
            WordNgramTfidf(
                ngram_range=config.word_ngrams, min_df=2, sublinear_tf=True, sentences=True
            ),
        )
    ]
    if config.char_ngrams:
        blocks.append(
            (
                "char",
                CharNgramTfidf(
                    ngram_range=config.char_ngrams, min_df=2, sublinear_tf=True, sentences=True
                ),
            )
        )
    return FeatureUnion(blocks)


def topic_classifier(config: TopicConfig, seed: int) -> OneVsRestClassifier:
    """One binary classifier per topic (multi-label)."""
    return OneVsRestClassifier(config.classifier.build(seed))


def primary_classifier(config: TopicConfig, seed: int) -> Any:
    """One multiclass classifier over the topics and the none topic, on the same features."""
    return config.classifier.build(seed)


def _vectorizer(min_df: int = 1, weighted: bool = True) -> FeatureListTfidf:
    """TF-IDF over the ready-made feature lists of a stance block."""
    return FeatureListTfidf(min_df=min_df, weighted=weighted)


def stance_features(
    config: StanceConfig, cues: Mapping[str, Sequence[str]], quotes: bool = True
) -> FeatureUnion:
    """The stance blocks of the config; the cue block needs cue words and the quote
    block needs quotes (a taxonomy without speech verbs attributes none)."""
    blocks: dict[str, Any] = {
        "context": Pipeline(
            [("features", MaskedContext(window=config.window)), ("tfidf", _vectorizer())]
        ),
        "section": Pipeline([("features", MaskedSection()), ("tfidf", _vectorizer(min_df=2))]),
        "window": Pipeline([("features", MentionWindow(width=4)), ("tfidf", _vectorizer())]),
        "facts": Pipeline([("features", MentionFacts()), ("counts", _vectorizer(weighted=False))]),
        "cues": CueCounts(cues=dict(cues)),
        "actor_context": Pipeline(
            [("features", ActorContext(window=config.window)), ("tfidf", _vectorizer())]
        ),
        "quote": Pipeline([("features", OwnQuote()), ("tfidf", _vectorizer())]),
    }
    chosen = [
        part for part in config.parts if (part != "cues" or cues) and (part != "quote" or quotes)
    ]
    return FeatureUnion([(part, blocks[part]) for part in chosen])


def stance_pipeline(
    config: StanceConfig, cues: Mapping[str, Sequence[str]], seed: int, quotes: bool = True
) -> Pipeline:
    """Masked-context features around each actor, one multiclass classifier."""
    return Pipeline(
        [
            ("features", stance_features(config, cues, quotes)),
            ("classifier", config.classifier.build(seed)),
        ]
    )


def stance_bayes(config: StanceConfig) -> ComplementNB | None:
    """The naive Bayes view of the stance features, if the config asks for one."""
    return None if config.bayes_alpha is None else ComplementNB(alpha=config.bayes_alpha)


def topic_targets(sections: Sequence[Section], taxonomy: Taxonomy) -> np.ndarray:
    """A 0/1 matrix: one row per section, one column per topic in taxonomy order."""
    return np.asarray(
        [[int(topic in s.topics) for topic in taxonomy.topics] for s in sections], dtype=int
    )


def stance_examples(
    sections: Sequence[Section], matcher: ActorMatcher, quotes: QuoteAttributor | None = None
) -> tuple[list[StanceInput], list[str], list[int]]:
    """Stance inputs (with each actor's own quotes, given an attributor), their labels,
    and the index of the section each came from."""
    inputs: list[StanceInput] = []
    labels: list[str] = []
    owners: list[int] = []
    for index, section in enumerate(sections):
        text = section.full_text
        found = matcher.find(text)
        quoted = {}
        if quotes is not None and found:
            attributed = quotes.quotes(text, found)
            quoted = {actor: own_quotes(attributed, actor) for actor in {m.actor for m in found}}
        for item in stance_inputs(text, found, quoted):
            inputs.append(item)
            labels.append(section.stances[item.actor])
            owners.append(index)
    return inputs, labels, owners


def quote_pipeline(seed: int) -> Pipeline:
    """The quote head: word (1-2) and character (2-5) n-grams of a quote's words, one
    multiclass logistic regression; quotes are short, so characters carry the forms."""
    features = FeatureUnion(
        [
            ("word", WordNgramTfidf(ngram_range=(1, 2), min_df=1, sublinear_tf=True)),
            ("char", CharNgramTfidf(ngram_range=(2, 5), min_df=2, sublinear_tf=True)),
        ]
    )
    classifier = LogisticRegression(
        C=3.0, class_weight="balanced", max_iter=3000, random_state=seed
    )
    return Pipeline([("features", features), ("classifier", classifier)])
