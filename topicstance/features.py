"""Custom scikit-learn transformers and the inputs of the stance head.

They live in service/ because the server unpickles what training saved. The
stance transformers read a `StanceInput`: one actor in one section, with the
actor's own mentions masked as ACTOR_TOKEN and other actors' as OTHER_TOKEN, so
one model serves every actor and learns what an actor does, not who it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

from topicstance.actors import Mention, group_by_actor
from topicstance.sentences import Span, sentence_spans

ACTOR_TOKEN = "xactorx"
OTHER_TOKEN = "xotherx"
_WORD = re.compile(r"(?u)\b\w\w+\b")


@dataclass(frozen=True, eq=False)
class Tokens:
    """A section with the actors masked, as lower-case words: tokenized once per
    actor and shared by every stance feature block."""

    words: tuple[str, ...]
    sentence_of: tuple[int, ...]
    own: tuple[int, ...]

    def context(self, window: int) -> list[str]:
        """The words of the sentences holding the actor, plus `window` on each side."""
        if window == 0:
            return self.sentence_words
        return self._context(window)

    @cached_property
    def sentence_words(self) -> list[str]:
        """The words of the sentences holding the actor (asked for by three blocks)."""
        return self._context(0)

    def _context(self, window: int) -> list[str]:
        holding = {self.sentence_of[i] for i in self.own}
        keep = {s + shift for s in holding for shift in range(-window, window + 1)}
        return [w for w, s in zip(self.words, self.sentence_of, strict=True) if s in keep]

    def around(self, index: int, width: int) -> tuple[list[str], list[str]]:
        """Up to `width` words before and after the word at `index`."""
        return list(self.words[max(0, index - width) : index]), list(
            self.words[index + 1 : index + 1 + width]
        )


@dataclass(frozen=True, eq=False)
class SectionWords:
    """A section with every actor mention masked and tokenized, once for all its
    actors. Each actor's tokens are these with its own mentions ACTOR_TOKEN and the
    others OTHER_TOKEN: the same tokens as masking per actor, since a mask word is one
    word wherever it stands."""

    words: tuple[str, ...]
    sentence_of: tuple[int, ...]
    # Word index of each masked mention -> the mention's span in the text.
    mention_at: tuple[tuple[int, Span], ...]

    @classmethod
    def of(cls, text: str, mentions: Sequence[Span]) -> SectionWords:
        """Cut sentences on the text as written (where case still tells a sentence's
        start), then tokenize each, lower-cased, with every mention a mask word."""
        words: list[str] = []
        sentence_of: list[int] = []
        mention_at: list[tuple[int, Span]] = []
        ordered = sorted(mentions)
        taken = masked_to = 0  # mentions consumed; where the last mention ends
        for index, (start, end) in enumerate(sentence_spans(text)):
            # A name broken across a line ("White\nHouse") is one mention, though the
            # line break ends a sentence: the next sentence starts after it.
            cursor = max(start, masked_to)
            while taken < len(ordered) and ordered[taken][0] < end:
                mention = ordered[taken]
                taken += 1
                found = _WORD.findall(text[cursor : mention[0]].lower())
                mention_at.append((len(words) + len(found), mention))
                words.extend((*found, ACTOR_TOKEN))
                sentence_of.extend([index] * (len(found) + 1))
                cursor = masked_to = max(cursor, mention[1])
            found = _WORD.findall(text[cursor:end].lower())
            words.extend(found)
            sentence_of.extend([index] * len(found))
        return cls(tuple(words), tuple(sentence_of), tuple(mention_at))

    def tokens(self, own: Sequence[Span]) -> Tokens:
        """The section as one actor sees it: its mentions ACTOR_TOKEN, others OTHER_TOKEN."""
        mine = set(own)
        words = list(self.words)
        own_words = []
        for index, span in self.mention_at:
            if span in mine:
                own_words.append(index)
            else:
                words[index] = OTHER_TOKEN
        return Tokens(tuple(words), self.sentence_of, tuple(own_words))


@dataclass(frozen=True)
class StanceInput:
    """One actor in one section: the section text, where the actors are, and the spans
    the actor is quoted saying (its own direct quotes). `words` is the section's
    tokenization, shared by its actors (made here when not given)."""

    text: str
    actor: str
    own: tuple[Span, ...]
    others: tuple[Span, ...]
    quoted: tuple[Span, ...] = ()
    words: SectionWords | None = field(default=None, compare=False, repr=False)

    @cached_property
    def tokens(self) -> Tokens:
        """Mask the mentions (own: ACTOR_TOKEN, others: OTHER_TOKEN), then tokenize."""
        words = self.words or SectionWords.of(self.text, self.own + self.others)
        return words.tokens(self.own)

    def surfaces(self) -> list[str]:
        return [self.text[start:end] for start, end in self.own]

    @cached_property
    def quoted_words(self) -> list[str]:
        """The words of the actor's own quotes, lower-cased, other actors masked."""
        words: list[str] = []
        for start, end in self.quoted:
            piece = self.text[start:end]
            for m_start, m_end in sorted(self.others, reverse=True):
                if start <= m_start and m_end <= end:
                    a, b = m_start - start, m_end - start
                    piece = f"{piece[:a]} {OTHER_TOKEN} {piece[b:]}"
            words += _WORD.findall(piece.lower())
        return words


def stance_inputs(
    text: str, mentions: Sequence[Mention], quoted: Mapping[str, Sequence[Span]] | None = None
) -> list[StanceInput]:
    """One input per actor found, in order of first mention; `quoted` gives the spans
    each actor is quoted saying."""
    inputs = []
    words = SectionWords.of(text, [(m.start, m.end) for m in mentions])
    for actor, own in group_by_actor(mentions).items():
        others = tuple((m.start, m.end) for m in mentions if m.actor != actor)
        spans = tuple((quoted or {}).get(actor, ()))
        own_spans = tuple((m.start, m.end) for m in own)
        inputs.append(StanceInput(text, actor, own_spans, others, spans, words))
    return inputs


def sentences_of(text: str) -> list[str]:
    """The sentences of a text, as `sentence_spans` cuts it."""
    return [text[start:end] for start, end in sentence_spans(text)]


def word_grams(words: Sequence[str], ngram_range: tuple[int, int]) -> list[str]:
    """Word n-grams as sklearn builds them: the words, then pairs, then triples..."""
    low, high = ngram_range
    grams = list(words) if low == 1 else []
    for n in range(max(low, 2), high + 1):
        grams += [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return grams


def char_wb_grams(word: str, ngram_range: tuple[int, int]) -> list[str]:
    """Character n-grams of one word padded with spaces, as sklearn's `char_wb`."""
    padded = f" {word} "
    grams = []
    for n in range(ngram_range[0], ngram_range[1] + 1):
        offset = 0
        grams.append(padded[offset : offset + n])
        while offset + n < len(padded):
            offset += 1
            grams.append(padded[offset : offset + n])
        if offset == 0:  # a word shorter than n counts once
            break
    return grams


class _SentenceGrams:
    """Analyzer base: the n-grams of each sentence in turn, none across a boundary, so
    a section's n-grams are exactly those of its sentences (which the sentence stacker
    scores)."""

    def __init__(self, ngram_range: tuple[int, int]) -> None:
        self.ngram_range = ngram_range

    def __call__(self, text: str) -> list[str]:
        return [gram for sentence in sentences_of(text) for gram in self.grams(sentence)]

    def grams(self, sentence: str) -> list[str]:
        raise NotImplementedError


class SentenceWordGrams(_SentenceGrams):
    """Analyzer: word n-grams within sentences."""

    def grams(self, sentence: str) -> list[str]:
        return word_grams(_WORD.findall(sentence.lower()), self.ngram_range)


class SentenceCharGrams(_SentenceGrams):
    """Analyzer: `char_wb` n-grams of the words of each sentence (sentence boundaries
    drop the closing marks after a full stop, as `sentence_spans` does)."""

    def grams(self, sentence: str) -> list[str]:
        return [
            gram
            for word in sentence.lower().split()
            for gram in char_wb_grams(word, self.ngram_range)
        ]


def given(features: list[str]) -> list[str]:
    """The analyzer of vectorizers fed ready-made features (module level: picklable)."""
    return features


def with_bigrams(words: Sequence[str]) -> list[str]:
    return [*words, *(f"{a} {b}" for a, b in pairwise(words))]


class _FeatureLists(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A stateless step that turns stance inputs into feature lists for a vectorizer
    built with `analyzer=given`."""

    def fit(self, inputs: Sequence[StanceInput], y: Any = None) -> _FeatureLists:
        return self

    def transform(self, inputs: Sequence[StanceInput]) -> list[list[str]]:
        return [self._features(item) for item in inputs]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([type(self).__name__.lower()], dtype=object)

    def _features(self, item: StanceInput) -> list[str]:
        raise NotImplementedError


class MaskedContext(_FeatureLists):
    """Words and word pairs of the sentences holding the actor (plus `window` around)."""

    def __init__(self, window: int = 0) -> None:
        self.window = window

    def _features(self, item: StanceInput) -> list[str]:
        return with_bigrams(item.tokens.context(self.window))


class MaskedSection(_FeatureLists):
    """Words and word pairs of the whole section, masked: what the section is doing."""

    def _features(self, item: StanceInput) -> list[str]:
        return with_bigrams(item.tokens.words)


class ActorContext(_FeatureLists):
    """The context's words tagged with the actor ("<actor name>|launched"): what a word
    means for one actor's stance can differ from what it means for another's."""

    def __init__(self, window: int = 0) -> None:
        self.window = window

    def _features(self, item: StanceInput) -> list[str]:
        return [f"{item.actor}|{word}" for word in item.tokens.context(self.window)]


class MentionWindow(_FeatureLists):
    """Words just before (L_) and after (R_) each own mention, and the next two (R2_).

    Position matters for stance: "xactorx launched" makes the actor the attacker,
    "launched at xactorx" makes it the target.
    """

    def __init__(self, width: int = 4) -> None:
        self.width = width

    def _features(self, item: StanceInput) -> list[str]:
        features = []
        for index in item.tokens.own:
            left, right = item.tokens.around(index, self.width)
            features += [f"L_{w}" for w in left] + [f"R_{w}" for w in right]
            features.append("R2_" + "_".join(right[:2]))
        return features


class OwnQuote(_FeatureLists):
    """Words and word pairs of the actor's own direct quotes: the label rules let what
    the actor says itself outweigh what others say about it."""

    def _features(self, item: StanceInput) -> list[str]:
        return with_bigrams(item.quoted_words)


class MentionFacts(_FeatureLists):
    """Which actor, how it is named, and how often: priors the masked text hides."""

    def _features(self, item: StanceInput) -> list[str]:
        surfaces = {"surface_" + "_".join(s.lower().split()) for s in item.surfaces()}
        count = min(len(item.own), 4)
        return [f"actor_{item.actor}", f"mentions_{count}", *sorted(surfaces)]


class CueCounts(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Counts of each stance's cue words right after the mentions and in their sentences.

    `cues` maps a stance label to its cue words; it comes from the taxonomy, so
    this class knows no label. Counts are log-scaled.
    """

    def __init__(self, cues: Mapping[str, Sequence[str]] | None = None, width: int = 6) -> None:
        self.cues = cues
        self.width = width

    def fit(self, inputs: Sequence[StanceInput], y: Any = None) -> CueCounts:
        self.labels_ = sorted(self.cues or {})
        self.words_ = [
            frozenset(w.lower() for w in (self.cues or {})[label]) for label in self.labels_
        ]
        return self

    def transform(self, inputs: Sequence[StanceInput]) -> sp.csr_matrix:
        rows = [self._counts(item) for item in inputs]
        return sp.csr_matrix(np.log1p(np.asarray(rows, dtype=float).reshape(len(rows), -1)))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = [f"{where}_{label}" for label in self.labels_ for where in ("after", "sentence")]
        return np.asarray(names, dtype=object)

    def _counts(self, item: StanceInput) -> list[int]:
        tokens = item.tokens
        after = [w for index in tokens.own for w in tokens.around(index, self.width)[1]]
        context = tokens.context(0)
        counts = []
        for words in self.words_:
            counts.append(sum(w in words for w in after))
            counts.append(sum(w in words for w in context))
        return counts


def l2_normalize(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Scale each row to unit length in place (all-zero rows stay zero), as sklearn's
    `normalize` does, without its per-call validation."""
    lengths = np.diff(matrix.indptr)
    squares = np.zeros(matrix.shape[0])
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    np.add.at(squares, rows, matrix.data**2)
    norms = np.sqrt(squares)
    norms[norms == 0] = 1.0
    matrix.data /= norms[rows]
    return matrix


class _FastTfidf(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """TF-IDF that fits with sklearn's TfidfVectorizer and transforms faster.

    Fitting (vocabulary, idf) is sklearn's own. Transforming builds the same
    matrix from column ids gathered with C-level dict lookups and finishes with
    vectorized tf, idf and norm steps, instead of sklearn's per-feature Python
    loop: that loop is most of the cost of serving a TF-IDF model.
    """

    def __init__(self, min_df: int = 1, sublinear_tf: bool = True, weighted: bool = True) -> None:
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.weighted = weighted

    def _vectorizer(self) -> Any:
        raise NotImplementedError

    def _columns(self, document: Any) -> list[int] | np.ndarray:
        raise NotImplementedError

    def sentence_columns(self, sentences: Sequence[str]) -> list[np.ndarray]:
        """Per sentence, its columns; their concatenation is the whole text's."""
        raise NotImplementedError

    def fit(self, documents: Sequence[Any], y: Any = None) -> _FastTfidf:
        self.fit_transform(documents)
        return self

    def fit_transform(self, documents: Sequence[Any], y: Any = None) -> sp.csr_matrix:
        """sklearn's own fit, and its matrix, in one pass."""
        self.vectorizer_ = self._vectorizer()
        return sp.csr_matrix(self.vectorizer_.fit_transform(documents))

    def transform(self, documents: Sequence[Any]) -> sp.csr_matrix:
        columns = [np.asarray(self._columns(document), dtype=np.int32) for document in documents]
        indptr = np.zeros(len(columns) + 1, dtype=np.int64)
        np.cumsum([len(c) for c in columns], out=indptr[1:])
        indices = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int32)
        shape = (len(documents), len(self.vectorizer_.vocabulary_))
        matrix = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=shape)
        matrix.sum_duplicates()
        if not self.weighted:
            matrix.data[:] = 1.0
            return matrix
        if self.sublinear_tf:
            np.log(matrix.data, matrix.data)
            matrix.data += 1.0
        matrix.data *= self.vectorizer_.idf_[matrix.indices]
        return l2_normalize(matrix)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.vectorizer_.get_feature_names_out(), dtype=object)


class FeatureListTfidf(_FastTfidf):
    """TF-IDF over ready-made feature lists (the stance blocks); `weighted=False`
    gives binary presence instead."""

    def _vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if not self.weighted:
            return TfidfVectorizer(analyzer=given, use_idf=False, norm=None, binary=True)
        return TfidfVectorizer(analyzer=given, sublinear_tf=self.sublinear_tf, min_df=self.min_df)

    def _columns(self, document: list[str]) -> list[int]:
        lookup = self.vectorizer_.vocabulary_.get
        return [column for column in map(lookup, document) if column is not None]


class WordNgramTfidf(_FastTfidf):
    """TF-IDF of word n-grams, as sklearn's TfidfVectorizer with its default tokens
    (two or more word characters) and lower-casing; with `sentences`, n-grams stay
    inside sentences."""

    def __init__(
        self,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 2,
        sublinear_tf: bool = True,
        sentences: bool = False,
    ) -> None:
        super().__init__(min_df=min_df, sublinear_tf=sublinear_tf)
        self.ngram_range = ngram_range
        self.sentences = sentences

    def _vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if self.sentences:
            return TfidfVectorizer(
                analyzer=SentenceWordGrams(self.ngram_range),
                min_df=self.min_df,
                sublinear_tf=self.sublinear_tf,
            )
        return TfidfVectorizer(
            ngram_range=self.ngram_range, min_df=self.min_df, sublinear_tf=self.sublinear_tf
        )

    def _columns(self, text: str) -> list[int] | np.ndarray:
        if self.sentences:
            found = self.sentence_columns(sentences_of(text))
            return np.concatenate(found) if found else np.zeros(0, dtype=np.int32)
        return self._lookup(word_grams(_WORD.findall(text.lower()), self.ngram_range))

    def sentence_columns(self, sentences: Sequence[str]) -> list[np.ndarray]:
        return [
            np.asarray(
                self._lookup(word_grams(_WORD.findall(sentence.lower()), self.ngram_range)),
                dtype=np.int32,
            )
            for sentence in sentences
        ]

    def _lookup(self, grams: list[str]) -> list[int]:
        lookup = self.vectorizer_.vocabulary_.get
        return [column for column in map(lookup, grams) if column is not None]


class CharNgramTfidf(_FastTfidf):
    """TF-IDF of character n-grams inside word boundaries, as sklearn's `char_wb`.

    A word's n-gram columns are looked up once and cached: news text repeats its
    words, and n-gram generation is the costliest step of char features. The
    cache is bounded and never pickled.
    """

    CACHE_WORDS = 200_000

    def __init__(
        self,
        ngram_range: tuple[int, int] = (3, 5),
        min_df: int = 2,
        sublinear_tf: bool = True,
        sentences: bool = False,
    ) -> None:
        super().__init__(min_df=min_df, sublinear_tf=sublinear_tf)
        self.ngram_range = ngram_range
        self.sentences = sentences

    def _vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if self.sentences:
            return TfidfVectorizer(
                analyzer=SentenceCharGrams(self.ngram_range),
                min_df=self.min_df,
                sublinear_tf=self.sublinear_tf,
            )
        return TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=self.ngram_range,
            min_df=self.min_df,
            sublinear_tf=self.sublinear_tf,
        )

    def _columns(self, text: str) -> np.ndarray:
        if self.sentences:
            found = self.sentence_columns(sentences_of(text))
            return np.concatenate(found) if found else np.zeros(0, dtype=np.int32)
        return self._words_columns(text.lower().split())

    def sentence_columns(self, sentences: Sequence[str]) -> list[np.ndarray]:
        return [self._words_columns(sentence.lower().split()) for sentence in sentences]

    def _words_columns(self, words: list[str]) -> np.ndarray:
        if not words:
            return np.zeros(0, dtype=np.int32)
        return np.concatenate([self._word_columns(word) for word in words])

    def _word_columns(self, word: str) -> np.ndarray:
        cache: dict[str, np.ndarray] = self.__dict__.setdefault("_cache", {})
        columns = cache.get(word)
        if columns is None:
            lookup = self.vectorizer_.vocabulary_.get
            grams = char_wb_grams(word, self.ngram_range)
            found = [c for c in map(lookup, grams) if c is not None]
            columns = np.asarray(found, dtype=np.int32)
            if len(cache) < self.CACHE_WORDS:
                cache[word] = columns
        return columns

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_cache", None)
        return state
