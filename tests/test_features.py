"""The fast serving path computes exactly what scikit-learn computes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from tests.conftest import DATA
from topicstance import inference
from topicstance.bundle import ModelBundle, SectionPrediction, load_bundle
from topicstance.features import (
    ACTOR_TOKEN,
    CharNgramTfidf,
    FeatureListTfidf,
    SectionWords,
    StanceInput,
    WordNgramTfidf,
    stance_inputs,
    with_bigrams,
)
from training.dataset import load_corpus

TEXTS = [s.full_text for s in load_corpus(DATA).sections[::7]]
TRAIN, TEST = TEXTS[: len(TEXTS) // 2], [*TEXTS[len(TEXTS) // 2 :], "", "   ", "Éé ünïcode ——"]


def assert_same(fast: Any, reference: Any) -> None:
    assert fast.shape == reference.shape
    assert abs(fast - reference).sum() < 1e-9


def test_char_ngrams_match_sklearn() -> None:
    fast = CharNgramTfidf(ngram_range=(3, 5)).fit(TRAIN)
    assert_same(fast.transform(TEST), fast.vectorizer_.transform(TEST))
    assert_same(fast.transform(TEST), fast.transform(TEST))  # and again from its cache


def test_word_ngrams_match_sklearn() -> None:
    fast = WordNgramTfidf(ngram_range=(1, 3)).fit(TRAIN)
    reference = TfidfVectorizer(ngram_range=(1, 3), min_df=2, sublinear_tf=True).fit(TRAIN)
    assert_same(fast.transform(TEST), reference.transform(TEST))


@pytest.mark.parametrize("weighted", [True, False])
def test_feature_lists_match_sklearn(weighted: bool) -> None:
    lists = [with_bigrams(text.lower().split()) for text in TEXTS]
    fast = FeatureListTfidf(min_df=2, weighted=weighted).fit(lists[:100])
    test = [*lists[100:], []]
    assert_same(fast.transform(test), fast.vectorizer_.transform(test))


def test_char_cache_is_not_pickled() -> None:
    import pickle

    fast = CharNgramTfidf().fit(TRAIN)
    fast.transform(TEST)
    assert "_cache" in fast.__dict__
    assert "_cache" not in pickle.loads(pickle.dumps(fast)).__dict__


@pytest.fixture(scope="module")
def bundle(model_dir: object) -> ModelBundle:
    return load_bundle(model_dir)  # type: ignore[arg-type]


def stance_batch(bundle: ModelBundle) -> list[StanceInput]:
    return [item for text in TEST for item in stance_inputs(text, bundle.matcher.find(text))]


def test_union_and_linear_models_match_sklearn(bundle: ModelBundle) -> None:
    topics = bundle.topic_model
    topic = inference.transform(topics.features, TEST)
    assert_same(topic, topics.features.transform(TEST))
    for classifier in (topics.classifier, topics.primary_classifier):
        assert np.allclose(
            inference.predict_proba(classifier, topic), classifier.predict_proba(topic)
        )
    inputs = stance_batch(bundle)
    pipeline = bundle.stance_model.pipeline
    stance = inference.transform(pipeline[:-1], inputs)
    assert_same(stance, pipeline[:-1].transform(inputs))
    bayes = bundle.stance_model.bayes
    for classifier in (pipeline[-1], *([] if bayes is None else [bayes])):
        assert np.allclose(
            inference.predict_proba(classifier, stance), classifier.predict_proba(stance)
        )


def scores(prediction: SectionPrediction) -> list[float]:
    return [v for _, v in prediction.topic_scores] + [
        v for stance in prediction.stances for _, v in stance.scores
    ]


def labels(prediction: SectionPrediction) -> SectionPrediction:
    """The prediction with every score set to 0: what must not move at all."""
    return replace(
        prediction,
        topic_scores=[(label, 0.0) for label, _ in prediction.topic_scores],
        stances=[
            replace(stance, scores=[(label, 0.0) for label, _ in stance.scores])
            for stance in prediction.stances
        ],
    )


def test_batching_does_not_change_predictions(bundle: ModelBundle) -> None:
    """Every label, mention and piece of evidence is the same; a score may differ in
    its last bits (a batch is summed in another order), never by more than 1e-12."""
    together = bundle.predict(TEST[:20])
    alone = [bundle.predict([text])[0] for text in TEST[:20]]
    assert [labels(p) for p in together] == [labels(p) for p in alone]
    for batched, single in zip(together, alone, strict=True):
        assert np.allclose(scores(batched), scores(single), rtol=0, atol=1e-12)


def test_a_name_broken_across_lines_is_one_mask_word() -> None:
    text = "Talks with the White\nHouse stalled. Kyiv waited."
    words = SectionWords.of(text, [(15, 26), (text.find("Kyiv"), text.find("Kyiv") + 4)])
    assert words.words == ("talks", "with", "the", ACTOR_TOKEN, "stalled", ACTOR_TOKEN, "waited")
    assert [index for index, _ in words.mention_at] == [3, 5]
