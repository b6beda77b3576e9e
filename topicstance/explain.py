"""Evidence: the terms behind a prediction, as coefficient × feature value products.

Computed only when a request asks for it; the names of a feature union's columns are
looked up one at a time, so explaining never spells out the whole vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.pipeline import FeatureUnion, Pipeline

from topicstance.features import ACTOR_TOKEN, OTHER_TOKEN

if TYPE_CHECKING:
    from topicstance.model import StanceModel, TopicModel

TOP_TERMS = 5


@dataclass(frozen=True)
class Evidence:
    """A term and how much it pushed a prediction (coefficient × feature value)."""

    term: str
    weight: float


class Explainer:
    """Top terms behind a prediction: the largest coefficient × feature value products."""

    def __init__(self, topics: TopicModel, stances: StanceModel) -> None:
        self._topic_names = FeatureNames(topics.features)
        self._topic_weights = linear_weights(topics.primary_classifier)
        self._topic_classes = topics.primary_labels
        self._stance_names = FeatureNames(stances.pipeline[:-1])
        self._stance_weights = linear_weights(stances.pipeline[-1])
        self._stance_classes = [str(c) for c in stances.pipeline[-1].classes_]

    def topic(self, features: Any, row: int, label: str) -> list[Evidence]:
        weights = self._topic_weights[self._topic_classes.index(label)]
        return _top_terms(features[row], weights, self._topic_names)

    def stance(self, features: Any, row: int, label: str) -> list[Evidence]:
        weights = self._stance_weights[self._stance_classes.index(label)]
        return _top_terms(features[row], weights, self._stance_names)


class FeatureNames:
    """Readable names of a feature union's columns, one column at a time.

    Spelling out every name (hundreds of thousands of strings) would grow each
    worker by ~20 MB on the first explained call; this keeps, per TF-IDF block,
    only an index into the vocabulary the block already holds.
    """

    def __init__(self, features: Any) -> None:
        self._prefixes: list[str] = []
        self._names: list[np.ndarray] = []
        for prefix, block in _leaf_blocks(features, ""):
            self._prefixes.append(prefix)
            self._names.append(_block_names(block))
        self._offsets = np.cumsum([0] + [len(names) for names in self._names])

    def __getitem__(self, column: int) -> str | None:
        index = int(np.searchsorted(self._offsets, column, side="right")) - 1
        name = self._prefixes[index] + str(self._names[index][column - self._offsets[index]])
        return _readable(name)


def _leaf_blocks(features: Any, prefix: str) -> list[tuple[str, Any]]:
    """(name prefix, estimator) per block, in column order, as FeatureUnion names them."""
    if isinstance(features, Pipeline):
        return _leaf_blocks(features.steps[-1][1], prefix)
    if isinstance(features, FeatureUnion):
        return [
            leaf
            for name, block in features.transformer_list
            if block not in (None, "drop")
            for leaf in _leaf_blocks(block, f"{prefix}{name}__")
        ]
    return [(prefix, features)]


def _block_names(block: Any) -> np.ndarray:
    """A block's names; a TF-IDF block's point at its vocabulary's own strings."""
    vocabulary = getattr(getattr(block, "vectorizer_", None), "vocabulary_", None)
    if vocabulary is None:
        return np.asarray(block.get_feature_names_out(), dtype=object)
    names = np.empty(len(vocabulary), dtype=object)
    names[np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary))] = list(
        vocabulary
    )
    return names


def linear_weights(estimator: Any) -> np.ndarray:
    """Per-class coefficient rows of a linear classifier (calibrated ones averaged)."""
    if hasattr(estimator, "calibrated_classifiers_"):
        coef = np.mean([c.estimator.coef_ for c in estimator.calibrated_classifiers_], axis=0)
    else:
        coef = np.asarray(estimator.coef_)
    if coef.shape[0] == 1:  # binary: the row scores the second class
        coef = np.vstack([-coef[0], coef[0]])
    return np.asarray(coef)


def _readable(name: str) -> str | None:
    """A feature name as a term; character n-grams (unreadable as evidence) are None."""
    block, _, term = name.rpartition("__")
    if block.startswith("char"):
        return None
    return term.replace(ACTOR_TOKEN, "<actor>").replace(OTHER_TOKEN, "<other>")


def _top_terms(row: Any, weights: np.ndarray, names: FeatureNames) -> list[Evidence]:
    row = row.tocsr()
    contributions = row.data * weights[row.indices]
    order = np.argsort(-contributions)
    terms: list[Evidence] = []
    for position in order:
        name = names[row.indices[position]]
        if contributions[position] <= 0 or len(terms) == TOP_TERMS:
            break
        if name is not None:
            terms.append(Evidence(name, float(contributions[position])))
    return terms
