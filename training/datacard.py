"""Write the corpus data card, `training/data/README.md`, from the corpus itself.

    python -m training.datacard training/data          # rewrite README.md
    python -m training.datacard training/data --check  # fail if it is out of date

Every figure in the card comes from here; nothing in it is typed by hand.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from training.dataset import BASES, Corpus, DataError, Section, load_corpus, split
from training.provenance import PATTERNS_FILE, Patterns, candidates

CARD = "README.md"
LENGTH_BINS = (15, 40, 80, 120, 160, 200, 250, 301)
BAR_WIDTH = 40

TEMPLATE = Path(__file__).with_name("datacard_template.md")
FIGURES_MARK = "<!-- figures -->"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _share(count: int, total: int) -> str:
    return f"{count} ({count / max(total, 1):.0%})"


def label_counts(corpus: Corpus, train: list[Section], test: list[Section]) -> str:
    none = corpus.taxonomy.none_topic
    labels = [*corpus.taxonomy.topics, none]
    rows = []
    for label in labels:
        primary = [s for s in corpus.sections if s.primary_topic(none) == label]
        anywhere = (
            sum(label in s.topics for s in corpus.sections) if label != none else len(primary)
        )
        rows.append(
            [
                f"`{label}`",
                len(primary),
                anywhere,
                sum(s.primary_topic(none) == label for s in train),
                sum(s.primary_topic(none) == label for s in test),
            ]
        )
    multi = sum(len(s.topics) >= 2 for s in corpus.sections)
    near_miss = sum(1 for s in corpus.sections if not s.topics and s.stances)
    unrelated = sum(1 for s in corpus.sections if not s.topics and not s.stances)
    header = ["topic", "primary", "listed anywhere", "primary, train", "primary, held out"]
    return "\n".join(
        [
            "### Topics",
            "",
            _table(header, rows),
            "",
            f"- Sections with two or more topics: {_share(multi, len(corpus.sections))}.",
            f"- `{none}` sections that mention an actor (near misses): {near_miss}; "
            f"with no actor at all: {unrelated}.",
        ]
    )


def stance_counts(corpus: Corpus) -> str:
    taxonomy = corpus.taxonomy
    pairs = Counter((actor, stance) for s in corpus.sections for actor, stance in s.stances.items())
    total = sum(pairs.values())
    rows = [
        [
            f"`{actor}`",
            *[pairs[(actor, stance)] for stance in taxonomy.stances],
            sum(pairs[(actor, stance)] for stance in taxonomy.stances),
        ]
        for actor in taxonomy.actor_names
    ]
    rows.append(
        [
            "all",
            *[
                _share(sum(pairs[(a, stance)] for a in taxonomy.actor_names), total)
                for stance in taxonomy.stances
            ],
            total,
        ]
    )
    mixed = sum(1 for s in corpus.sections if len(set(s.stances.values())) >= 2)
    return "\n".join(
        [
            "### Actor-stance pairs",
            "",
            _table(["actor", *[f"`{s}`" for s in taxonomy.stances], "pairs"], rows),
            "",
            f"- Sections where actors take different stances: {mixed}.",
        ]
    )


def length_histogram(sections: Sequence[Section]) -> str:
    words = [len(s.text.split()) for s in sections]
    bins = list(zip((0, *LENGTH_BINS[:-1]), LENGTH_BINS, strict=True))
    counts = [sum(low <= w < high for w in words) for low, high in bins]
    peak = max(counts) or 1
    rows = [
        [f"{low}-{high - 1}", count, "█" * round(BAR_WIDTH * count / peak)]
        for (low, high), count in zip(bins, counts, strict=True)
    ]
    ordered = sorted(words)
    return "\n".join(
        [
            "### Length of the text, in words",
            "",
            _table(["words", "sections", ""], rows),
            "",
            f"- Shortest {ordered[0]}, median {ordered[len(ordered) // 2]}, longest {ordered[-1]}.",
        ]
    )


def variety(corpus: Corpus) -> str:
    registers = Counter(s.register or "(none)" for s in corpus.sections)
    documents = Counter(s.doc for s in corpus.sections if s.doc)
    with_heading = sum(bool(s.heading) for s in corpus.sections)
    return "\n".join(
        [
            "### Registers and shape",
            "",
            _table(["register", "sections"], registers.most_common()),
            "",
            f"- Multi-section documents: {len(documents)}, with {sum(documents.values())} sections "
            f"({min(documents.values(), default=0)} to {max(documents.values(), default=0)} each).",
            f"- Sections with a heading: {with_heading}.",
        ]
    )


def provenance(corpus: Corpus, directory: Path) -> str:
    """What each record retells, per file and per primary label, and the candidates."""
    none = corpus.taxonomy.none_topic

    def counts(sections: Sequence[Section]) -> list[int]:
        return [sum(s.basis == basis for s in sections) for basis in BASES]

    by_file = [
        [f"`{path.name}`", *counts([s for s in corpus.sections if _file(s) == path.name])]
        for path in corpus.files
    ]
    labels = [*corpus.taxonomy.topics, none]
    by_label = [
        [f"`{label}`", *counts([s for s in corpus.sections if s.primary_topic(none) == label])]
        for label in labels
    ]
    total = ["all", *counts(corpus.sections)]
    lines = [
        "### What the sections retell (`basis`)",
        "",
        _table(["file", *[f"`{b}`" for b in BASES]], [*by_file, total]),
        "",
        _table(["primary topic", *[f"`{b}`" for b in BASES]], by_label),
    ]
    lines += review_record(corpus, directory)
    return "\n".join(lines)


REVIEW_DIRECTORY = "review"
CANDIDATES_FILE = "candidates.txt"


def review_record(corpus: Corpus, directory: Path) -> list[str]:
    """The provenance review: what was rewritten, the candidates then and those the
    script still finds (a real name and a weekday may stay; the specifics are ours)."""
    review = directory / REVIEW_DIRECTORY
    actions: dict[str, str] = {}
    for log in sorted(review.glob("*.tsv")):
        with log.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                actions[row["id"]] = row["action"]
    reviewed = review / CANDIDATES_FILE
    before = [
        line.strip()
        for line in (
            reviewed.read_text(encoding="utf-8").splitlines() if reviewed.is_file() else []
        )
        if line.strip() and not line.startswith("#")
    ]
    basis = {s.id: s.basis for s in corpus.sections}
    lines: list[str] = []
    if actions:
        counts = Counter(actions.values())
        lines += [
            "",
            f"The review (`{REVIEW_DIRECTORY}/*.tsv`, one line per section): "
            f"{counts['rewritten']} sections rewritten from the facts, "
            f"{counts['basis_only']} more marked `real_event` as they were.",
        ]
    if before:
        listed = ", ".join(f"`{i}` ({basis.get(i, 'removed')})" for i in before)
        rewritten = sum(actions.get(i) == "rewritten" for i in before)
        lines += [
            "",
            f"Candidates that might retell a real event as it was reported: {len(before)} "
            f"(`{REVIEW_DIRECTORY}/{CANDIDATES_FILE}`), {rewritten} of them rewritten: {listed}.",
        ]
    patterns_file = directory / PATTERNS_FILE
    if patterns_file.is_file():
        now = candidates(corpus.sections, Patterns.load(patterns_file))
        lines += [
            "",
            f"`python -m training.provenance candidates` finds {len(now)} sections today: "
            "after the rewrite a real name in the first sentence and a day may remain, but "
            "the specifics and their order are ours.",
        ]
    return lines


def _file(section: Section) -> str:
    return Path(section.source.rsplit(":", 1)[0]).name


def languages(corpus: Corpus, train: list[Section], test: list[Section]) -> str:
    """Sections, primary topics, two-topic share and stances per language."""
    taxonomy = corpus.taxonomy
    none = taxonomy.none_topic
    labels = [*taxonomy.topics, none]
    held = {s.id for s in test}
    rows = []
    for code in taxonomy.languages:
        mine = [s for s in corpus.sections if s.lang == code]
        multi = sum(len(s.topics) >= 2 for s in mine)
        pairs = Counter(stance for s in mine for stance in s.stances.values())
        rows.append(
            [
                code,
                len(mine),
                sum(s.id in held for s in mine),
                *[sum(s.primary_topic(none) == label for s in mine) for label in labels],
                _share(multi, len(mine)),
                ", ".join(f"{stance} {pairs[stance]}" for stance in taxonomy.stances),
            ]
        )
    header = ["language", "sections", "held out", *[f"`{x}`" for x in labels], "2+ topics"]
    return "\n".join(["### Languages", "", _table([*header, "stance pairs"], rows)])


def render(corpus: Corpus, directory: Path) -> str:
    train, test = split(corpus)
    files = ", ".join(f"`{path.name}`" for path in corpus.files)
    figures = "\n\n".join(
        [
            "## Figures",
            f"{len(corpus.sections)} sections in {files}; {len(train)} train, "
            f"{len(test)} held out. Dataset SHA-256 `{corpus.sha256()[:16]}...`.",
            label_counts(corpus, train, test),
            stance_counts(corpus),
            languages(corpus, train, test),
            length_histogram(corpus.sections),
            variety(corpus),
            provenance(corpus, directory),
        ]
    )
    return TEMPLATE.read_text(encoding="utf-8").replace(FIGURES_MARK, figures)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.datacard", description=__doc__)
    parser.add_argument("data", type=Path, help="corpus directory")
    parser.add_argument("--check", action="store_true", help="only check the card is up to date")
    args = parser.parse_args(argv)
    try:
        card = render(load_corpus(args.data), args.data)
    except DataError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    path = args.data / CARD
    if args.check:
        if not path.is_file() or path.read_text(encoding="utf-8") != card:
            print(
                f"{path} is out of date: run python -m training.datacard {args.data}",
                file=sys.stderr,
            )
            return 1
        return 0
    path.write_text(card, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
