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
"""

from __future__ import annotations

from functools import cache
from typing import Any

MIN_LETTERS = 30
MIN_PROBABILITY = 0.5
SAMPLE_CHARS = 300


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
    if sum(ch.isalpha() for ch in text) < MIN_LETTERS:
        return ""
    code, probability = _identifier().classify(text)
    return str(code) if probability >= MIN_PROBABILITY else ""
