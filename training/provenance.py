"""Find the sections that may retell real, reported events, and the ones that must not stay.

    python -m training.provenance candidates training/data   # may retell a real event
    python -m training.provenance leads training/data        # open like an agency lead

A candidate names a real official or institution in its first sentence and carries a
date, weekday or month; the data card lists them with their `basis`. A lead is a first
sentence that ends on an unnamed source and a day, the shape of a wire story's opening:
a `real_event` section must not have one. The patterns are data
(`provenance.toml` next to the taxonomy), so they cover every language of the corpus.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.dataset import DataError, Section, load_corpus

PATTERNS_FILE = "provenance.toml"
_FIRST_SENTENCE = re.compile(r"^.*?(?:[.!?…](?=[\"'”’»)]*(?:\s|$))|\n|$)", re.S)


@dataclass(frozen=True)
class Patterns:
    real_names: re.Pattern[str]
    date_words: re.Pattern[str]
    agency_lead: re.Pattern[str]

    @classmethod
    def load(cls, path: Path) -> Patterns:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
        return cls(
            real_names=re.compile(r"(?<!\w)(?:" + "|".join(config["real_names"]) + r")(?!\w)"),
            date_words=re.compile(
                r"(?<!\w)(?:" + "|".join(config["date_words"]) + r")(?!\w)", re.I
            ),
            agency_lead=re.compile("|".join(config["agency_lead"]), re.I),
        )


def first_sentence(section: Section) -> str:
    match = _FIRST_SENTENCE.match(section.text)
    return (match.group() if match else section.text).strip()


def is_candidate(section: Section, patterns: Patterns) -> bool:
    """A real name in the first sentence and a date word in the heading or text."""
    return bool(
        patterns.real_names.search(first_sentence(section))
        and patterns.date_words.search(section.full_text)
    )


def has_agency_lead(section: Section, patterns: Patterns) -> bool:
    return bool(patterns.agency_lead.search(first_sentence(section)))


def candidates(sections: Sequence[Section], patterns: Patterns) -> list[Section]:
    return [s for s in sections if is_candidate(s, patterns)]


def leads(sections: Sequence[Section], patterns: Patterns) -> list[Section]:
    """Real-event sections whose first sentence reads like an agency lead."""
    return [s for s in sections if s.basis == "real_event" and has_agency_lead(s, patterns)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.provenance")
    parser.add_argument("command", choices=["candidates", "leads"])
    parser.add_argument("path", type=Path, help="a corpus directory")
    args = parser.parse_args(argv)
    try:
        corpus = load_corpus(args.path)
    except DataError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    directory = args.path if args.path.is_dir() else args.path.parent
    patterns = Patterns.load(directory / PATTERNS_FILE)
    found = (candidates if args.command == "candidates" else leads)(corpus.sections, patterns)
    for section in found:
        print(f"{section.id}\t{section.basis}\t{section.source}\t{first_sentence(section)[:90]}")
    print(f"{len(found)} of {len(corpus.sections)} sections", file=sys.stderr)
    return 1 if args.command == "leads" and found else 0


if __name__ == "__main__":
    raise SystemExit(main())
