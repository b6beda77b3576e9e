"""Precision and recall of the alias lists on hand-labeled actor mentions.

    python -m training.mentions training/actors_test [--config TAXONOMY]

Each `<lang>.jsonl` holds {"id", "lang", "text", "actors"}: the actors a person found by
the label rules, without the alias lists. `adjudication.tsv` (id, actors, reason) holds
our reading where it differs; both sets of figures are printed.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from topicstance.actors import ActorMatcher
from training.dataset import load_taxonomy

ADJUDICATION = "adjudication.tsv"


@dataclass(frozen=True)
class Counts:
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0

    def add(self, gold: set[str], found: set[str]) -> Counts:
        return Counts(
            self.true_positive + len(gold & found),
            self.false_positive + len(found - gold),
            self.false_negative + len(gold - found),
        )

    @property
    def precision(self) -> float:
        return self.true_positive / max(self.true_positive + self.false_positive, 1)

    @property
    def recall(self) -> float:
        return self.true_positive / max(self.true_positive + self.false_negative, 1)


def read_adjudication(path: Path) -> dict[str, set[str]]:
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as handle:
        return {
            row["id"]: {a for a in row["actors"].split(",") if a}
            for row in csv.DictReader(handle, delimiter="\t")
        }


def score(
    records: Sequence[Mapping[str, object]], matcher: ActorMatcher, overrides: dict[str, set[str]]
) -> tuple[Counts, Counts]:
    """(as labeled, as adjudicated)."""
    raw, adjudicated = Counts(), Counts()
    for record in records:
        found = set(matcher.actors_in(str(record["text"])))
        gold = set(record["actors"])  # type: ignore[call-overload]
        raw = raw.add(gold, found)
        adjudicated = adjudicated.add(overrides.get(str(record["id"]), gold), found)
    return raw, adjudicated


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.mentions", description=__doc__)
    parser.add_argument("path", type=Path, help="directory of <lang>.jsonl files")
    parser.add_argument("--config", type=Path, default=Path("training/data/taxonomy.toml"))
    args = parser.parse_args(argv)
    matcher = load_taxonomy(args.config).matcher()
    overrides = read_adjudication(args.path / ADJUDICATION)
    print("| language | paragraphs | precision | recall | adjudicated: precision | recall |")
    print("|---|---|---|---|---|---|")
    for path in sorted(args.path.glob("*.jsonl")):
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        raw, adjudicated = score(records, matcher, overrides)
        print(
            f"| {path.stem} | {len(records)} | {raw.precision:.3f} | {raw.recall:.3f} | "
            f"{adjudicated.precision:.3f} | {adjudicated.recall:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
