"""The untrained scikit-learn pipelines of the two heads, and their inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

from service.actors import ActorMatcher
from service.features import MaskedContext, StanceInput, stance_inputs
from training.dataset import Section, Taxonomy


def topic_pipeline(seed: int) -> Pipeline:
    """Word and character n-gram TF-IDF, one logistic regression per topic."""
    features = FeatureUnion(
        [
            ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2
                ),
            ),
        ]
    )
    classifier = LogisticRegression(
        C=10.0, class_weight="balanced", max_iter=3000, random_state=seed
    )
    return Pipeline([("features", features), ("classifier", OneVsRestClassifier(classifier))])


def stance_pipeline(seed: int) -> Pipeline:
    """Masked sentence context around the actor, word n-grams, one multiclass model."""
    return Pipeline(
        [
            ("context", MaskedContext(window=0)),
            ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            (
                "classifier",
                LogisticRegression(
                    C=10.0, class_weight="balanced", max_iter=3000, random_state=seed
                ),
            ),
        ]
    )


def topic_targets(sections: Sequence[Section], taxonomy: Taxonomy) -> np.ndarray:
    """A 0/1 matrix: one row per section, one column per topic in taxonomy order."""
    return np.asarray(
        [[int(topic in s.topics) for topic in taxonomy.topics] for s in sections], dtype=int
    )


def stance_examples(
    sections: Sequence[Section], matcher: ActorMatcher
) -> tuple[list[StanceInput], list[str], list[int]]:
    """Stance inputs, their labels, and the index of the section each came from."""
    inputs: list[StanceInput] = []
    labels: list[str] = []
    owners: list[int] = []
    for index, section in enumerate(sections):
        text = section.full_text
        for item in stance_inputs(text, matcher.find(text)):
            inputs.append(item)
            labels.append(section.stances[item.actor])
            owners.append(index)
    return inputs, labels, owners
