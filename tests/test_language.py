"""The batched language detector answers exactly as py3langid does text by text."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

from topicstance import language
from training.dataset import load_corpus

ROOT = Path(__file__).resolve().parent.parent
OTHER = ROOT / "tests" / "fixtures" / "languages" / "other.jsonl"


@cache
def _mixed_texts() -> list[str]:
    """Corpus sections in all three languages, short texts in five others, upper-case,
    too-short and empty texts: every branch of the detector (loaded once: 10 s)."""
    sections = load_corpus(ROOT / "training" / "data").sections
    corpus = [s.full_text for s in sections[::25]]
    others = [json.loads(line)["text"] for line in OTHER.read_text(encoding="utf-8").splitlines()]
    shouted = "УНОЧІ РОСІЯ АТАКУВАЛА УКРАЇНУ УДАРНИМИ ДРОНАМИ ТА РАКЕТАМИ."
    odd = ["", "Kyiv said so.", shouted, "!" * 40]
    return odd + others + corpus


def test_a_batch_gets_the_languages_each_text_gets_alone() -> None:
    texts = _mixed_texts()
    assert {"en", "uk", "ru", "fr", ""} <= {language.detect(text) for text in texts}
    alone = [language.detect(text) for text in texts]
    batches = np.array_split(np.arange(len(texts)), len(texts) // 64)
    assert min(len(rows) for rows in batches) >= language.BATCHED_FROM  # the batched path
    for rows in batches:
        assert language.detect_all([texts[i] for i in rows]) == [alone[i] for i in rows]


def test_batched_probabilities_are_the_librarys() -> None:
    identifier = language._identifier()
    encoded = [identifier._encode(language.sample(text)) for text in _mixed_texts() if text]
    batched = language._probabilities(identifier, encoded)
    one_by_one = np.asarray([identifier._decide(text) for text in encoded])
    assert batched.shape == one_by_one.shape
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_a_batch_with_no_readable_text_has_no_languages() -> None:
    unreadable = ["", "!" * 40, "12 34 56", "Kyiv said so."] * language.BATCHED_FROM
    assert [language.detect(text) for text in unreadable] == [""] * len(unreadable)
    assert language.detect_all(unreadable) == [""] * len(unreadable)
