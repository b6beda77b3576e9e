"""Which language a section is written in, so a model never guesses on text it
cannot read.

py3langid (a maintained fork of langid.py that ships its model: 97 languages,
about 0.2 ms a text) was chosen over lingua after both were measured on short
paragraphs of our corpus and on paragraphs in five other languages
(docs/model.md, "Languages"). Text with fewer than MIN_LETTERS letters, or whose
best language has a probability under MIN_PROBABILITY, is not assigned one: a
heading and a short sentence are too little to tell English from Estonian.
"""

from __future__ import annotations

from functools import cache
from typing import Any

MIN_LETTERS = 30
MIN_PROBABILITY = 0.5


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect(text: str) -> str:
    """The ISO 639-1 code of the text's language, or "" when it cannot be told."""
    if sum(ch.isalpha() for ch in text) < MIN_LETTERS:
        return ""
    code, probability = _identifier().classify(text)
    return str(code) if probability >= MIN_PROBABILITY else ""
