"""The prediction hot path over fitted scikit-learn objects, without per-call overhead.

scikit-learn validates its input and dispatches through joblib on every call; for
a service that calls it thousands of times a second, that overhead costs more than
the arithmetic. These functions walk the same fitted objects and compute the same
numbers (a test checks them against scikit-learn's own results): pipelines and
feature unions step by step, linear models as a matrix product and a link function.
Anything they do not recognise falls back to scikit-learn's own method.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import FeatureUnion, Pipeline

from topicstance.decisions import class_scores, sigmoid, softmax
from topicstance.features import CueCounts, _FastTfidf, sentences_of


def transform(estimator: Any, inputs: Any) -> Any:
    """What `estimator.transform(inputs)` returns, minus validation and dispatch."""
    if isinstance(estimator, Pipeline):
        for _, step in estimator.steps:
            inputs = transform(step, inputs)
        return inputs
    if isinstance(estimator, FeatureUnion):
        blocks = [block for _, block in estimator.transformer_list if block not in (None, "drop")]
        if all(_column_block(block) is not None for block in blocks):
            return _union_matrix(blocks, inputs)
        return sp.hstack([transform(block, inputs) for block in blocks], format="csr")
    return estimator.transform(inputs)


def _column_block(block: Any) -> tuple[list[Any], Any] | None:
    """(steps that produce documents, final step) when the final step gives raw columns."""
    steps = [step for _, step in block.steps] if isinstance(block, Pipeline) else [block]
    if isinstance(steps[-1], _FastTfidf | CueCounts):
        return steps[:-1], steps[-1]
    return None


@dataclass
class _Block:
    """One feature block's raw entries (row, local column, value) and how to finish them."""

    rows: np.ndarray
    columns: np.ndarray
    values: np.ndarray
    width: int
    idf: np.ndarray | None = None
    sublinear: bool = False
    binary: bool = False
    normalized: bool = False


def _raw_block(block: Any, inputs: Any) -> _Block:
    producers, final = _column_block(block) or ([], block)
    for step in producers:
        inputs = step.transform(inputs)
    count = len(inputs)
    if isinstance(final, CueCounts):
        width = len(final.get_feature_names_out())
        values = np.log1p(np.asarray([final._counts(item) for item in inputs], dtype=float))
        rows = np.repeat(np.arange(count), width)
        columns = np.tile(np.arange(width), count)
        return _Block(rows, columns, values.reshape(-1), width)
    return _columns_block(final, [final._columns(document) for document in inputs])


def _columns_block(final: Any, per_doc: Sequence[Any]) -> _Block:
    """A TF-IDF block's raw entries from each document's column ids."""
    count = len(per_doc)
    lengths = [len(columns) for columns in per_doc]
    if per_doc and isinstance(per_doc[0], np.ndarray):
        columns = np.concatenate(per_doc).astype(np.int64, copy=False)
    else:
        columns = np.fromiter(chain.from_iterable(per_doc), dtype=np.int64, count=sum(lengths))
    rows = np.repeat(np.arange(count), lengths)
    width = len(final.vectorizer_.vocabulary_)
    if not final.weighted:
        return _Block(rows, columns, np.ones(len(columns)), width, binary=True)
    idf: np.ndarray = final.vectorizer_.idf_
    sublinear: bool = final.sublinear_tf
    return _Block(rows, columns, np.ones(len(columns)), width, idf, sublinear, normalized=True)


def sections_and_sentences(
    union: Any, texts: Sequence[str], min_words: int
) -> tuple[sp.csr_matrix, sp.csr_matrix, list[int]]:
    """A sentence-bounded feature union's rows for whole texts and for their sentences
    of `min_words` words or more (with the text each came from), from one pass: a
    text's columns are its sentences' columns put together."""
    finals = [block for _, block in union.transformer_list if block not in (None, "drop")]
    sentences = [sentences_of(text) for text in texts]
    long_enough = [[len(s.split()) >= min_words for s in per_text] for per_text in sentences]
    owners = [i for i, flags in enumerate(long_enough) for keep in flags if keep]
    whole, parts = [], []
    for final in finals:
        per_text = [final.sentence_columns(per) for per in sentences]
        whole.append(
            _columns_block(
                final, [np.concatenate(c) if c else np.zeros(0, np.int32) for c in per_text]
            )
        )
        kept = [
            c
            for cols, flags in zip(per_text, long_enough, strict=True)
            for c, keep in zip(cols, flags, strict=True)
            if keep
        ]
        parts.append(_columns_block(final, kept))
    return _assemble(whole, len(texts)), _assemble(parts, len(owners)), owners


def _union_matrix(blocks: list[Any], inputs: Any) -> sp.csr_matrix:
    """The feature union's matrix in one sparse build: each block's columns shifted
    to its place, then tf, idf and per-block unit length applied to all at once."""
    return _assemble([_raw_block(block, inputs) for block in blocks], len(inputs))


def _assemble(raw: list[_Block], count: int) -> sp.csr_matrix:
    """Blocks side by side, then tf, idf and per-block unit length applied at once."""
    offsets = np.cumsum([0] + [b.width for b in raw])
    matrix = sp.coo_matrix(
        (
            np.concatenate([b.values for b in raw]),
            (
                np.concatenate([b.rows for b in raw]),
                np.concatenate([b.columns + offsets[i] for i, b in enumerate(raw)]),
            ),
        ),
        shape=(count, int(offsets[-1])),
    ).tocsr()
    matrix.sum_duplicates()
    matrix.sort_indices()
    block_of = np.searchsorted(offsets, matrix.indices, side="right") - 1
    data = matrix.data
    for index, block in enumerate(raw):
        here = block_of == index
        if block.binary:
            data[here] = 1.0
        if block.sublinear:
            data[here] = np.log(data[here]) + 1.0
        if block.idf is not None:
            data[here] *= block.idf[matrix.indices[here] - offsets[index]]
    normalized = np.asarray([b.normalized for b in raw])[block_of]
    segments = np.repeat(np.arange(count), np.diff(matrix.indptr)) * len(raw) + block_of
    squares = np.bincount(
        segments, weights=np.where(normalized, data**2, 0.0), minlength=count * len(raw)
    )
    norms = np.sqrt(squares)
    norms[norms == 0] = 1.0
    data[normalized] /= norms[segments[normalized]]
    return matrix


def predict_proba(classifier: Any, features: Any) -> np.ndarray:
    """What `classifier.predict_proba(features)` returns, for the linear models we ship
    (complement naive Bayes is one: its joint log-likelihood is a matrix product)."""
    if type(classifier) is LogisticRegression:
        return softmax(class_scores(features, classifier.coef_, classifier.intercept_))
    if type(classifier) is ComplementNB and len(classifier.classes_) > 1:
        return softmax(np.asarray(features @ classifier.feature_log_prob_.T))
    if type(classifier) is OneVsRestClassifier and classifier.multilabel_:
        stacked = _stacked_logistic(classifier)
        if stacked is not None:
            weights, intercepts = stacked
            return sigmoid(np.asarray(features @ weights + intercepts))
    return np.asarray(classifier.predict_proba(features))


# Weak keys: a model dropped by a reload takes its stacked weights with it.
_STACKED: weakref.WeakKeyDictionary[Any, tuple[np.ndarray, np.ndarray] | None] = (
    weakref.WeakKeyDictionary()
)


def _stacked_logistic(classifier: OneVsRestClassifier) -> tuple[np.ndarray, np.ndarray] | None:
    """One weight matrix for all of a one-vs-rest model's logistic regressions, built once."""
    if classifier in _STACKED:
        return _STACKED[classifier]
    stacked = None
    if all(type(e) is LogisticRegression for e in classifier.estimators_):
        weights = np.ascontiguousarray(np.vstack([e.coef_ for e in classifier.estimators_]).T)
        stacked = (weights, np.concatenate([e.intercept_ for e in classifier.estimators_]))
    _STACKED[classifier] = stacked
    return stacked
