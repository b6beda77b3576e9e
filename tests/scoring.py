"""Score a reading of the fixture documents against their expected files.

A section matches an expected one when its heading is the expected heading and
one of its parts starts with the expected first words (text as a reader sees it:
Markdown syntax removed, white space collapsed). A boilerplate string leaks when
it occurs in a heading or in a part of a section.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES
from topicstance.documents.reading import visible

DOCUMENTS = FIXTURES / "documents"


def norm(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Fixture:
    name: str
    path: Path
    expected: dict[str, Any]

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def fixtures() -> Iterator[Fixture]:
    for expected in sorted(DOCUMENTS.glob("*.expected.json")):
        name = expected.name.removesuffix(".expected.json")
        (source,) = [p for p in DOCUMENTS.glob(f"{name}.*") if p != expected]
        yield Fixture(name, source, json.loads(expected.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class ReadSection:
    """What a reading gave for one section: heading, parts' visible text, and labels."""

    heading: str
    parts: list[str]
    primary_topic: str = ""
    unsupported_language: bool = False


@dataclass
class Score:
    matched: int = 0
    extra: int = 0
    missed: int = 0
    boilerplate: int = 0
    leaks: int = 0
    documents: int = 0
    titles: int = 0
    primary_right: int = 0
    primary_total: int = 0
    unsupported_right: int = 0
    unsupported_total: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def f1(self) -> float:
        precision = self.matched / max(self.matched + self.extra, 1)
        recall = self.matched / max(self.matched + self.missed, 1)
        return 2 * precision * recall / max(precision + recall, 1e-9)

    @property
    def leak_rate(self) -> float:
        return self.leaks / max(self.boilerplate, 1)

    @property
    def primary_accuracy(self) -> float:
        return self.primary_right / max(self.primary_total, 1)

    def summary(self) -> str:
        return (
            f"section F1 {self.f1:.3f} ({self.matched} matched, {self.extra} extra, "
            f"{self.missed} missed); leaks {self.leaks}/{self.boilerplate} "
            f"({self.leak_rate:.2%}); titles {self.titles}/{self.documents}; primary "
            f"{self.primary_right}/{self.primary_total}; unsupported "
            f"{self.unsupported_right}/{self.unsupported_total}"
        )


def score(
    read: Callable[[Fixture], tuple[str, list[ReadSection]]],
    known_languages: tuple[str, ...] = (),
) -> Score:
    """Read every fixture with `read` (title and sections) and score it. Primary
    topics count for sections in `known_languages`; a section in another language
    must come back unsupported."""
    result = Score()
    for fixture in fixtures():
        expected = fixture.expected
        title, sections = read(fixture)
        result.documents += 1
        if norm(title) == norm(expected["title"] or ""):
            result.titles += 1
        else:
            result.problems.append(f"{fixture.name}: title {title!r}")
        taken: set[int] = set()
        for want in expected["sections"]:
            index = _match(want, sections, taken)
            if index is None:
                result.missed += 1
                result.problems.append(f"{fixture.name}: missed {want['heading']!r}")
                continue
            taken.add(index)
            result.matched += 1
            _labels(result, fixture.name, want, sections[index], known_languages)
        result.extra += len(sections) - len(taken)
        for line in expected["boilerplate"]:
            result.boilerplate += 1
            wanted = norm(line)
            if any(wanted in s.heading or any(wanted in p for p in s.parts) for s in sections):
                result.leaks += 1
                result.problems.append(f"{fixture.name}: leak {line!r}")
    return result


def _match(want: dict[str, Any], sections: list[ReadSection], taken: set[int]) -> int | None:
    start = norm(want["starts_with"])
    for index, section in enumerate(sections):
        if index in taken or section.heading != norm(want["heading"]):
            continue
        if any(part.startswith(start) for part in section.parts):
            return index
    return None


def _labels(
    result: Score, name: str, want: dict[str, Any], got: ReadSection, known: tuple[str, ...]
) -> None:
    if not known:
        return
    if want["language"] in known:
        result.primary_total += 1
        if got.primary_topic == want["primary_topic"]:
            result.primary_right += 1
        else:
            result.problems.append(
                f"{name}: {want['heading']!r} primary {got.primary_topic} "
                f"(expected {want['primary_topic']})"
            )
    else:
        result.unsupported_total += 1
        result.unsupported_right += got.unsupported_language


def parts_text(text: str, parts: list[tuple[int, int]]) -> list[str]:
    return [norm(visible(text[start:end])) for start, end in parts]
