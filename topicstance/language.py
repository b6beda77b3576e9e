"""Which language a section is written in, so a model never guesses on text it
cannot read.

py3langid (a maintained fork of langid.py that ships its model: 97 languages,
about 0.2 ms a text) was chosen over lingua after both were measured on short
paragraphs of our corpus and on paragraphs in five other languages
(docs/model.md, "Languages"). Text with fewer than MIN_LETTERS letters, or whose
best language has a probability under MIN_PROBABILITY, is not assigned one: a
heading and a short sentence are too little to tell English from Estonian.

Only the first SAMPLE_CHARS characters are read (cut at a space): the classifier's
cost grows with the text. On the corpus sections a 300-character sample gave the
same language as the whole section every time (200 characters missed one), and the
same answers on paragraphs in five other languages, at under half the cost.

A batch walks the identifier's byte automaton for all its texts at once (`detect_all`):
py3langid walks it one byte at a time in Python, which cost a quarter of a batched
prediction. Its answers are py3langid's up to float32 rounding (the sums run in another
order). This reads the identifier's tables and helpers that py3langid does not document
(`tk_nextmove`, `_rowbase`, `_encode`, `_alias_pairs`), so pyproject.toml pins its minor
version, and tests/test_language.py checks that both ways give the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import scipy.sparse as sp

MIN_LETTERS = 30
MIN_PROBABILITY = 0.5
SAMPLE_CHARS = 300
# Below this many texts, stepping numpy arrays byte by byte costs more than the
# library's own per-text walk.
BATCHED_FROM = 8


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def sample(text: str) -> str:
    """The text's first SAMPLE_CHARS characters, cut at the last space before the limit."""
    if len(text) <= SAMPLE_CHARS:
        return text
    space = text.rfind(" ", 0, SAMPLE_CHARS)
    return text[: space if space > 0 else SAMPLE_CHARS]


def detect(text: str) -> str:
    """The ISO 639-1 code of the text's language, or "" when it cannot be told (fewer
    than MIN_LETTERS letters in its sample, or no language probable enough)."""
    text = sample(text)
    if not _enough_letters(text):
        return ""
    code, probability = _identifier().classify(text)
    return str(code) if probability >= MIN_PROBABILITY else ""


def _enough_letters(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= MIN_LETTERS


def detect_all(texts: Sequence[str]) -> list[str]:
    """`detect` for each text, the texts of a batch scored together."""
    if len(texts) < BATCHED_FROM:
        return [detect(text) for text in texts]
    samples = [sample(text) for text in texts]
    readable = [i for i, text in enumerate(samples) if _enough_letters(text)]
    codes = [""] * len(texts)
    if not readable:
        return codes
    identifier = _identifier()
    probs = _probabilities(identifier, [identifier._encode(samples[i]) for i in readable])
    best = probs.argmax(axis=1)
    for row, i in enumerate(readable):
        if probs[row, best[row]] >= MIN_PROBABILITY:
            codes[i] = str(identifier.nb_classes[best[row]])
    return codes


@cache
def _automaton(identifier: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The identifier's byte automaton as arrays: next state, row offsets, output feature."""
    table = identifier.tk_nextmove  # an array.array, of uint16 in small models
    return (
        np.frombuffer(table, dtype=f"u{table.itemsize}"),
        np.asarray(identifier._rowbase, dtype=np.int64),
        np.asarray(identifier.tk_output, dtype=np.int64),
    )


def _probabilities(identifier: Any, encoded: Sequence[bytes]) -> np.ndarray:
    """py3langid's normalized class probabilities (its `_decide`), one row per text."""
    visits, lengths = _visits(identifier, encoded)
    features, columns = np.unique(visits[:, 1], return_inverse=True)
    counts = sp.csr_matrix(  # (row, column) pairs given more than once are summed
        (np.ones(len(visits), dtype=np.float32), (visits[:, 0], columns)),
        shape=(len(encoded), len(features)),
    )
    np.log1p(counts.data, out=counts.data)
    scores = np.asarray(counts @ identifier.nb_ptc[features].astype(np.float32))
    scores += identifier.nb_pc
    scores[np.diff(counts.indptr) == 0] = 0.0  # no feature: flat, as the library
    scores *= (1.0 / np.sqrt(np.maximum(lengths, 1))).astype(np.float32)[:, None]
    np.exp(scores - scores.max(axis=1, keepdims=True), out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    for first, alias in identifier._alias_pairs:
        scores[:, first] += scores[:, alias]
        scores[:, alias] = 0.0
    return scores


def _visits(identifier: Any, encoded: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(text, feature) for every feature the automaton emits, and each text's length."""
    nextmove, rowbase, output = _automaton(identifier)
    lengths = np.asarray([len(text) for text in encoded])
    grid = np.zeros((int(lengths.max()), len(encoded)), dtype=np.int64)
    for row, text in enumerate(encoded):
        grid[: len(text), row] = np.frombuffer(text, dtype=np.uint8)
    states = np.empty_like(grid)
    state = np.zeros(len(encoded), dtype=np.int64)
    for position, letters in enumerate(grid):
        state = nextmove[rowbase[state] + letters]
        states[position] = state
    emitted = output[states]
    at, owner = np.nonzero((emitted >= 0) & (np.arange(len(grid))[:, None] < lengths))
    return np.column_stack([owner, emitted[at, owner]]), lengths
