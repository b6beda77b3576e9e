"""Find actor mentions in text from alias lists that come from the training data.

The alias lists are data (see training/data/taxonomy.toml) and travel inside the
model artifact, so this module knows no actor by name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Mention:
    """One alias occurrence: offsets index into the searched text."""

    actor: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ActorAliases:
    """The alias list of one actor, phrases that hide those aliases, and the guard of
    aliases that are also other people's or things' names.

    `names` are aliases that may be part of someone else's name ("Рики Рубио"): inside
    a sentence, a capitalised word right before one makes it another name, unless that
    word is one of `name_openers` (the person's given names, titles written with a
    capital) or an alias itself, or it follows one of `name_prepositions` ("в Давосе
    Зеленский": a place) or is written in another script ("Fox News Трамп"). A name
    alone inside a pair of `name_quotes` ("«»") is the name of a ship, a film or a firm.
    """

    aliases: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    name_openers: tuple[str, ...] = ()
    name_quotes: tuple[str, ...] = ()
    name_prepositions: tuple[str, ...] = ()


# The keys of an actor's table that hold lists of words (see ActorAliases).
ACTOR_LISTS = ("aliases", "exclude", "names", "name_openers", "name_quotes", "name_prepositions")
# A capitalised word is inside a sentence only after a letter, a digit, a comma or an
# opening bracket; after anything else (a full stop, a quote mark, a dash, a bullet, an
# emoji, a line break) it may open the sentence, and is not taken for a given name.
INSIDE_SENTENCE = ",("
LOOK_BACK = 48
PREVIOUS_WORD = re.compile(r"([^\W\d_][\w'’-]*)[^\S\n]+$")


def _is_acronym(alias: str) -> bool:
    """Acronyms (US, U.S.) match in their exact case: "us" is a pronoun."""
    return not any(ch.islower() for ch in alias)


STEM_MARK = "*"
# What a stem (a word written with a final `*`) may be followed by: the inflected
# endings of Ukrainian and Russian nouns and adjectives are at most this long.
STEM_ENDING = r"[^\W\d_]{0,4}"


def _word_pattern(word: str) -> str:
    """One word of an alias; `stem*` matches the stem plus an inflected ending."""
    if word.endswith(STEM_MARK) and len(word) > 1:
        return re.escape(word[:-1]) + STEM_ENDING
    return re.escape(word)


def _alias_pattern(alias: str) -> str:
    """A regex for one alias: exact case for acronyms, else a fixed first letter.

    Words ending in `*` are stems (`Україн*` matches України, Україною, ...).
    """
    words = alias.split()
    if _is_acronym(alias):
        return r"\s+".join(_word_pattern(word) for word in words)
    first, rest = alias[0], alias[1:]
    tail = r"\s+".join(_word_pattern(word) for word in rest.split(" ") if word)
    if rest.startswith(" "):
        tail = r"\s+" + tail
    return re.escape(first) + (f"(?i:{tail})" if tail else "")


def compile_phrases(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """One alternation, longest phrase first, bounded by non-word characters."""
    unique = sorted(set(phrases), key=len, reverse=True)
    if not unique:
        return None
    body = "|".join(_alias_pattern(phrase) for phrase in unique)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


class ActorMatcher:
    """Finds every actor's mentions; longest match wins where aliases overlap."""

    def __init__(self, actors: Mapping[str, ActorAliases]) -> None:
        self.actors: tuple[str, ...] = tuple(actors)
        self._patterns = {name: compile_phrases(spec.aliases) for name, spec in actors.items()}
        self._excludes = compile_phrases(
            phrase for spec in actors.values() for phrase in spec.exclude
        )
        self._names = {name: compile_phrases(spec.names) for name, spec in actors.items()}
        self._openers = {name: compile_phrases(spec.name_openers) for name, spec in actors.items()}
        self._prepositions = {
            name: frozenset(spec.name_prepositions) for name, spec in actors.items()
        }
        self._quotes = {
            name: {pair[0]: pair[1:] for pair in spec.name_quotes} for name, spec in actors.items()
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping[str, Sequence[str]]]) -> ActorMatcher:
        """Build from the `[actors.NAME]` tables of a taxonomy file."""
        return cls(
            {
                name: ActorAliases(**{key: tuple(spec.get(key, ())) for key in ACTOR_LISTS})
                for name, spec in config.items()
            }
        )

    def find(self, text: str) -> list[Mention]:
        """All mentions in reading order, without overlaps or excluded phrases."""
        hidden = self._hidden_spans(text)
        candidates = [
            Mention(name, match.start(), match.end(), match.group())
            for name, pattern in self._patterns.items()
            if pattern is not None
            for match in pattern.finditer(text)
            if not _overlaps_any(match.start(), match.end(), hidden)
        ]
        candidates.sort(key=lambda m: (m.start, -(m.end - m.start)))
        candidates = [m for m in candidates if not self._someone_elses(m, text, candidates)]
        mentions: list[Mention] = []
        for mention in candidates:
            if mentions and mention.start < mentions[-1].end:
                continue
            mentions.append(mention)
        return mentions

    def actors_in(self, text: str) -> list[str]:
        """The actors mentioned, in order of first mention."""
        return list(dict.fromkeys(m.actor for m in self.find(text)))

    def _someone_elses(self, mention: Mention, text: str, candidates: Sequence[Mention]) -> bool:
        """Whether a name alias here names another person or a thing (ActorAliases)."""
        names = self._names.get(mention.actor)
        if names is None or names.fullmatch(mention.text) is None:
            return False
        closing = self._quotes[mention.actor].get(text[mention.start - 1 : mention.start])
        if closing is not None and text.startswith(closing, mention.end):
            return True
        window = max(0, mention.start - LOOK_BACK)
        previous = PREVIOUS_WORD.search(text, window, mention.start)
        if previous is None or not _is_capitalised(previous.group(1)):
            return False
        before = text[window : previous.start()].rstrip(" \t\u00a0")
        if not before or not (before[-1].isalnum() or before[-1] in INSIDE_SENTENCE):
            return False
        openers = self._openers[mention.actor]
        if openers is not None and openers.fullmatch(previous.group(1)):
            return False
        if _script(previous.group(1)) != _script(mention.text):
            return False
        preposition = PREVIOUS_WORD.search(before + " ")
        if preposition and preposition.group(1).lower() in self._prepositions[mention.actor]:
            return False
        return not any(m.start <= previous.start() < m.end for m in candidates)

    def _hidden_spans(self, text: str) -> list[tuple[int, int]]:
        if self._excludes is None:
            return []
        return [(m.start(), m.end()) for m in self._excludes.finditer(text)]


def _script(word: str) -> str:
    """The script of a word's first letter ("LATIN", "CYRILLIC", ...)."""
    return unicodedata.name(word[0], "").split(" ")[0]


def _is_capitalised(word: str) -> bool:
    """A capital then a lower-case letter: a name or a title, not an acronym (США)."""
    return len(word) > 1 and word[0].isupper() and word[1].islower()


def _overlaps_any(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(start < span_end and span_start < end for span_start, span_end in spans)


def group_by_actor(mentions: Iterable[Mention]) -> dict[str, list[Mention]]:
    """Mentions per actor, actors in order of first mention."""
    grouped: dict[str, list[Mention]] = {}
    for mention in mentions:
        grouped.setdefault(mention.actor, []).append(mention)
    return grouped
