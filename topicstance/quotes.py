"""Direct quotes and who said them, so an actor's own words can outweigh what others say.

The label rules let the posture of an actor's own direct quote win when a section holds
both postures. This module finds quoted passages (“…”, «…», „…“, "…") and attributes
each to a speaker: the actor named in the attribution next to it ("…," Zelensky said;
"…," said a Kremlin spokesman; Peskov told reporters: "…"; «…», — заявив Сибіга), or,
for a quote standing alone, the speaker of the quote just before it. Speech verbs are
data (a list per language in the taxonomy's language files), so this module knows no
language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from topicstance.actors import Mention
from topicstance.sentences import boundaries

# Opening mark -> closing marks. Straight double quotes pair with the next one.
_PAIRS = {"“": '”"', "«": "»", "„": "“”", '"': '"'}
# How far an attribution may sit from its quote, in characters.
ATTRIBUTION_REACH = 120


@dataclass(frozen=True)
class Quote:
    """A quoted passage (offsets of its words, marks excluded) and its speaker, if known."""

    start: int
    end: int
    actor: str | None


_OPENING = re.compile("[" + re.escape("".join(_PAIRS)) + "]")
_CLOSING = {mark: re.compile("[" + re.escape(closing) + "\n]") for mark, closing in _PAIRS.items()}


def quoted_spans(text: str) -> list[tuple[int, int]]:
    """Spans inside matching quote marks on one line, in order; nested marks stay inside."""
    spans: list[tuple[int, int]] = []
    index = 0
    while (opening := _OPENING.search(text, index)) is not None:
        start = opening.start()
        closing = _CLOSING[text[start]].search(text, start + 1)
        if closing is None or text[closing.start()] == "\n":
            index = start + 1
            continue
        if closing.start() > start + 1:
            spans.append((start + 1, closing.start()))
        index = closing.start() + 1
    return spans


def _words(words: Iterable[str]) -> re.Pattern[str]:
    unique = sorted({w.lower() for w in words}, key=len, reverse=True)
    body = "|".join(re.escape(w) for w in unique) or r"(?!x)x"
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


class QuoteAttributor:
    """Attributes quotes to actors; speech verbs and pronouns are data, per language."""

    def __init__(
        self,
        speech_verbs: Iterable[str],
        pronouns: Iterable[str] = (),
        first_person: Iterable[str] = (),
    ) -> None:
        self._verb = _words(speech_verbs)
        self._pronoun = _words(pronouns)
        words = sorted({w.lower() for w in first_person}, key=len, reverse=True)
        forms = [form for w in words for form in (w, w[:1].upper() + w[1:])]
        body = "|".join(re.escape(w) for w in forms) or r"(?!x)x"
        self._first_person = re.compile(rf"(?<!\w)(?:{body})(?!\w)")

    def speaker_words(self, quote: str) -> list[tuple[int, int]]:
        """Where the speaker names itself inside its quote ("we", "our"): its mentions."""
        return [(m.start(), m.end()) for m in self._first_person.finditer(quote)]

    def quotes(self, text: str, mentions: Sequence[Mention]) -> list[Quote]:
        """Every quote with its speaker: named next to it, or carried from the last."""
        found: list[Quote] = []
        previous: Quote | None = None
        for start, end in quoted_spans(text):
            outside = [m for m in mentions if m.end <= start - 1 or m.start > end]
            actor = self._speaker(text, start, end, outside)
            if actor is None and previous is not None and _follows(previous, start, mentions):
                actor = previous.actor
            quote = Quote(start, end, actor)
            found.append(quote)
            previous = quote
        return found

    def _speaker(self, text: str, start: int, end: int, mentions: Sequence[Mention]) -> str | None:
        """A colon before the quote names the speaker; else the attribution right after
        it; else a speech verb earlier in the same sentence."""
        begin = _clause_start(text, start - 1)
        if text[begin : start - 1].rstrip().endswith(":"):
            inside = [m for m in mentions if begin <= m.start and m.end <= start - 1]
            return inside[-1].actor if inside else None
        if _attribution_follows(text, end):
            stop = _clause_end(text, end + 1)
            verb = self._verb.search(text, end + 1, stop)
            if verb is not None:
                named = _nearest(mentions, verb.start(), verb.end(), end + 1, stop)
                if named is None and self._pronoun.search(text, end + 1, stop):
                    named = _last_before(mentions, start)
                return named
        return self._before(text, start, mentions)

    def _before(self, text: str, start: int, mentions: Sequence[Mention]) -> str | None:
        """`Peskov told reporters: "…"` / `Zelensky said that "…"` (same sentence)."""
        begin = _clause_start(text, start - 1)
        verbs = list(self._verb.finditer(text, begin, start - 1))
        if not verbs:
            return None
        return _nearest(mentions, verbs[-1].start(), verbs[-1].end(), begin, start - 1)


def _follows(previous: Quote, start: int, mentions: Sequence[Mention]) -> bool:
    """A quote soon after another, with no other actor named between them, continues
    the same speaker (`"…," Zelensky said. "…"`)."""
    if start - previous.end > ATTRIBUTION_REACH:
        return False
    between = [m for m in mentions if previous.end < m.start and m.end < start]
    return all(m.actor == previous.actor for m in between)


# How far from its speech verb a speaker's name may stand ("said Kremlin spokesman Peskov").
SPEAKER_REACH = 48


def _nearest(
    mentions: Sequence[Mention], verb_start: int, verb_end: int, floor: int, ceiling: int
) -> str | None:
    """The actor named closest to the speech verb, within reach and inside the clause."""
    best: tuple[int, str] | None = None
    for mention in mentions:
        if not (floor <= mention.start and mention.end <= ceiling):
            continue
        if mention.end <= verb_start:
            gap = verb_start - mention.end
        elif mention.start >= verb_end:
            gap = mention.start - verb_end
        else:
            continue
        if gap <= SPEAKER_REACH and (best is None or gap < best[0]):
            best = (gap, mention.actor)
    return best[1] if best else None


def _attribution_follows(text: str, end: int) -> bool:
    """The quote's sentence goes on after it (`"…," he said`), rather than ending in it."""
    quoted_end = text[:end].rstrip()[-1:]
    after = text[end + 1 : end + 4].lstrip()
    return quoted_end not in ".!?…" or (after[:1].islower() or after[:1] in ",—–-")


# How far back a pronoun ("he said") looks for the actor it stands for.
PRONOUN_REACH = 240


def _last_before(mentions: Sequence[Mention], start: int) -> str | None:
    earlier = [m for m in mentions if m.end <= start and start - m.end <= PRONOUN_REACH]
    return earlier[-1].actor if earlier else None


def _clause_end(text: str, start: int) -> int:
    limit = min(len(text), start + ATTRIBUTION_REACH)
    return next((gap for gap, _ in boundaries(text, start, limit)), limit)


def _clause_start(text: str, end: int) -> int:
    floor = max(0, end - ATTRIBUTION_REACH)
    return max((gap for _, gap in boundaries(text, floor, end)), default=floor)


def own_quotes(quotes: Sequence[Quote], actor: str) -> list[tuple[int, int]]:
    """The spans an actor is quoted saying."""
    return [(q.start, q.end) for q in quotes if q.actor == actor]
