"""Boilerplate rules: the per-language patterns of page furniture, compiled once.

The patterns are data (`training/data/languages/<code>.toml`), carried in the model
artifact, so a model trained on another taxonomy brings its own. Every language's
patterns apply to every document: a Ukrainian page quoted in an English one keeps
its own furniture recognisable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Kinds whose lead line takes the whole list of short lines after it.
LIST_KINDS = frozenset({"related", "navigation"})
TABLES = ("boilerplate", "boilerplate_lead", "boilerplate_end")


@dataclass(frozen=True)
class Language:
    """What the model knows of one language: its name, whether it was trained on,
    and the patterns of the pages written in it."""

    code: str
    name: str
    trained: bool
    boilerplate: dict[str, list[str]] = field(default_factory=dict)
    boilerplate_lead: dict[str, list[str]] = field(default_factory=dict)
    boilerplate_end: dict[str, list[str]] = field(default_factory=dict)
    live_blog_timestamp: str = ""

    def to_payload(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "trained": self.trained,
            "boilerplate": self.boilerplate,
            "boilerplate_lead": self.boilerplate_lead,
            "boilerplate_end": self.boilerplate_end,
            "live_blog_timestamp": self.live_blog_timestamp,
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Language:
        return cls(
            code=str(data["code"]),
            name=str(data.get("name", data["code"])),
            trained=bool(data.get("trained", True)),
            boilerplate=dict(data.get("boilerplate", {})),
            boilerplate_lead=dict(data.get("boilerplate_lead", {})),
            boilerplate_end=dict(data.get("boilerplate_end", {})),
            live_blog_timestamp=str(data.get("live_blog_timestamp", "")),
        )


def pattern_problems(table: Any, where: str) -> list[str]:
    """What is wrong with a `kind -> [regex]` table, one message per problem."""
    if not isinstance(table, dict):
        return [f"{where}: expected a table of kind -> list of regular expressions"]
    problems = []
    for kind, patterns in table.items():
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            problems.append(f"{where}.{kind}: expected a list of regular expressions")
            continue
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(f"{where}.{kind}: {pattern!r} is not a regular expression: {exc}")
    return problems


Rule = tuple[str, re.Pattern[str], int]
UNBOUNDED = 1 << 30


def _longest(pattern: str) -> int:
    """The longest line a pattern anchored at both ends can match (UNBOUNDED if it
    is not anchored so, or has no bound): longer lines skip it, which is most of
    the cost of reading a page."""
    bare = re.sub(r"^\(\?[a-zA-Z]+\)", "", pattern)
    if not (bare.startswith("^") and bare.endswith("$") and not bare.endswith("\\$")):
        return UNBOUNDED
    width = int(re._parser.parse(pattern).getwidth()[1])  # type: ignore[attr-defined]
    return min(width, UNBOUNDED)


def _compile(tables: Iterable[Mapping[str, Sequence[str]]]) -> list[Rule]:
    return [
        (kind, re.compile(pattern), _longest(pattern))
        for table in tables
        for kind, patterns in table.items()
        for pattern in patterns
    ]


class Boilerplate:
    """Every language's patterns, compiled: which kind of furniture a line is."""

    def __init__(self, languages: Sequence[Language]) -> None:
        self.languages = tuple(languages)
        self._lines = _compile(language.boilerplate for language in languages)
        self._leads = _compile(language.boilerplate_lead for language in languages)
        self._ends = _compile(language.boilerplate_end for language in languages)
        self._live = [
            re.compile(language.live_blog_timestamp)
            for language in languages
            if language.live_blog_timestamp
        ]

    @staticmethod
    def _first(rules: list[Rule], line: str) -> str | None:
        size = len(line)
        for kind, pattern, longest in rules:
            if size <= longest and pattern.search(line):
                return kind
        return None

    def kind(self, line: str) -> str | None:
        """The kind of boilerplate the whole line is, or None."""
        return self._first(self._lines, line)

    def lead(self, line: str) -> str | None:
        """The kind, when the line introduces boilerplate that follows it."""
        return self._first(self._leads, line)

    def end(self, line: str) -> str | None:
        """The kind, when the line is boilerplate at the end of an article."""
        return self._first(self._ends, line)

    def live_blog_timestamp(self, line: str) -> bool:
        return any(pattern.search(line) for pattern in self._live)
