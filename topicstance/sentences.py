"""Where sentences end, for the features, the sentence votes and quote attribution.

After final punctuation (and any closing marks) and at line breaks; but not after
initials and dotted abbreviations in capitals ("the U.S. envoy", "J. D. Vance"), nor
before a word in lower case ("12 тис. осіб", "at 8 a.m. local time"). Real wire copy
is full of both, and a sentence cut there splits one statement into two votes. The
rules are about letters and case, so they hold in every script we read.

The cost: a sentence that really ends in dotted capitals ("talks with the U.S. An aide
said ...") runs on into the next, and a lower-case abbreviation before a capital ("по
м. Харків") still ends one. Telling those apart needs word lists per language; wire
copy writes "U.S." mid-sentence far more often than at the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

Span = tuple[int, int]

_CLOSERS = "\"'”’»)"
_CANDIDATE = re.compile(rf"(?<=[.!?…])[{_CLOSERS}]*\s+|\n+")
# A run of single letters, each followed by a full stop, at the end of what precedes.
_DOTTED = re.compile(r"(?:^|[^\w.])((?:[^\W\d_]\.)+)$")
# Enough characters before a candidate boundary to see a dotted abbreviation whole.
_LOOKBACK = 16


def boundaries(text: str, start: int = 0, end: int | None = None) -> Iterator[Span]:
    """The (start, end) of each gap between sentences within text[start:end]."""
    stop = len(text) if end is None else end
    for match in _CANDIDATE.finditer(text, start, stop):
        if "\n" in match.group() or _ends_sentence(text, match.start(), match.end()):
            yield match.start(), match.end()


def sentence_spans(text: str) -> list[Span]:
    """The (start, end) of each sentence of a text, in order."""
    spans, start = [], 0
    for gap_start, gap_end in boundaries(text):
        if gap_start > start:
            spans.append((start, gap_start))
        start = gap_end
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _ends_sentence(text: str, gap_start: int, gap_end: int) -> bool:
    if text[gap_end : gap_end + 1].islower():
        return False
    stop = gap_start
    while stop > 0 and text[stop - 1] in _CLOSERS:
        stop -= 1
    if text[stop - 1 : stop] != ".":
        return True
    dotted = _DOTTED.search(text, max(0, stop - _LOOKBACK), stop)
    return not (dotted and dotted.group(1)[-2].isupper())
