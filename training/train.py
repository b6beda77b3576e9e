"""Train the topic and stance heads, score them on the held-out split, save the artifact.

    python training/train.py --data training/data --out models/default [--seed N]
                             [--base-data DIR] [--config TAXONOMY] [--search] [--no-report]

--out is a model directory: each run writes a new artifact directory inside it,
named by its version, then points `CURRENT` at it (unless --no-publish). A server
using that directory keeps its model until it reloads (SIGHUP or ReloadModel), so
a retrain never takes the service down. An artifact written directly in --out by
an older layout is never overwritten without --force.

Each artifact holds model.joblib, manifest.json, metrics.json and (unless
--no-report) report.md with its plots. Deterministic for a given seed and corpus,
apart from the creation time in the version.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, TypeVar

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from topicstance.bundle import (
    MANIFEST_FILE,
    POINTER_FILE,
    file_sha256,
    publish,
    save_artifact,
    signing_key,
)
from topicstance.documents import Language
from topicstance.model import QuoteHead
from training import report
from training.dataset import (
    Corpus,
    DataError,
    Section,
    Taxonomy,
    group_hash,
    load_corpus,
    load_taxonomy,
    merge,
    split,
)
from training.heads import (
    CV_FOLDS,
    HeldOut,
    StanceRules,
    TopicRules,
    baselines,
    cross_validate_stances,
    cross_validate_topics,
    evaluate,
    fit_quote_head,
    fit_stances,
    fit_topics,
    summarize,
)
from training.pipelines import (
    DEFAULT_STANCE,
    DEFAULT_TOPIC,
    StanceConfig,
    TopicConfig,
    topic_targets,
)

LEARNING_FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)
T = TypeVar("T")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("training/data"),
        help="labeled data: a directory or a file",
    )
    parser.add_argument(
        "--base-data", type=Path, help="a corpus to train on as well (e.g. training/data)"
    )
    parser.add_argument("--out", type=Path, default=Path("models/default"), help="model directory")
    parser.add_argument("--seed", type=int, default=13, help="random seed")
    parser.add_argument(
        "--config",
        type=Path,
        help="taxonomy file, TOML or YAML (default: taxonomy.toml next to the base data or data)",
    )
    parser.add_argument(
        "--no-publish", action="store_true", help="write the artifact but leave CURRENT alone"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite an artifact written directly in --out"
    )
    parser.add_argument("--search", action="store_true", help="compare model families first (slow)")
    parser.add_argument(
        "--no-report", action="store_true", help="skip the learning curve and plots"
    )
    parser.add_argument(
        "--serving-only",
        action="store_true",
        help="build the model to serve, fast: no report, baselines or learning curve "
        "(what `make serve` does on first use; `make train` writes the full report)",
    )
    parser.add_argument(
        "--test-set",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a further held-out set, labeled by the same taxonomy, scored and reported beside "
        "the held-out split (never trained on); repeatable",
    )
    return parser.parse_args(argv)


class Progress:
    """Numbered steps with their duration, so long runs show where they are."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0

    def step(self, title: str, work: Callable[[], T]) -> T:
        self.done += 1
        print(f"[{self.done}/{self.total}] {title} ...", end="", flush=True)
        started = time.perf_counter()
        result = work()
        print(f" {time.perf_counter() - started:.1f} s", flush=True)
        return result


def learning_curve(
    train: list[Section],
    tests: dict[str, list[Section]],
    taxonomy: Taxonomy,
    *,
    configs: tuple[TopicConfig, StanceConfig],
    rules: tuple[TopicRules, StanceRules],
    seed: int,
    quote_head: QuoteHead | None,
) -> list[dict[str, Any]]:
    """Scores on every held-out set of models fitted on growing shares of the training
    groups (the rules stay those fitted on the whole training split)."""
    groups = sorted({s.group for s in train}, key=group_hash)
    points = []
    for fraction in LEARNING_FRACTIONS:
        chosen = set(groups[: max(2, round(len(groups) * fraction))])
        subset = [s for s in train if s.group in chosen]
        topic_model = fit_topics(subset, taxonomy, configs[0], seed, rules[0])
        stance_model = fit_stances(
            subset, taxonomy, configs[1], seed, rules=rules[1], quote_head=quote_head
        )
        point: dict[str, Any] = {"train_sections": len(subset)}
        for name, sections in tests.items():
            held = evaluate(topic_model, stance_model, sections, taxonomy)
            point[name] = {
                "topic_macro_f1": held.topics["macro_f1"],
                "primary_accuracy": held.topics["primary_accuracy"],
                "stance_macro_f1": held.stances["macro_f1"],
            }
        points.append(point)
    return points


def one_hot(labels: list[str], vocabulary: tuple[str, ...]) -> np.ndarray:
    return np.asarray([[int(label == v) for v in vocabulary] for label in labels], dtype=int)


def load_data(args: argparse.Namespace) -> Corpus:
    """The data to train on: --data alone, or --base-data plus --data (duplicates reported)."""
    if args.base_data is None:
        return load_corpus(args.data, args.config)
    base_dir = args.base_data if args.base_data.is_dir() else args.base_data.parent
    taxonomy = load_taxonomy(args.config or base_dir / "taxonomy.toml")
    base = load_corpus(args.base_data, taxonomy=taxonomy)
    corpus, report = merge(base, load_corpus(args.data, taxonomy=taxonomy))
    for line in report:
        print(f"note: {line}")
    return corpus


def artifact_directory(out: Path, version: str, force: bool) -> Path | None:
    """Where this run's artifact goes, or None when that would overwrite one."""
    if (out / MANIFEST_FILE).is_file():
        return out if force else None
    return out / version


def code_version() -> dict[str, Any]:
    """The package version and, in a git checkout, the commit and whether it was dirty."""
    repo = Path(__file__).resolve().parents[1]
    described: dict[str, Any] = {"package": package_version("topicstance")}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "service", "training"],
            cwd=repo, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return described
    return {**described, "git_commit": commit, "git_dirty": bool(dirty)}


def provenance(corpus: Corpus, args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    """What the manifest records about the data, the taxonomy, the settings and the code."""
    counts: dict[str, int] = {}
    for section in corpus.sections:
        path = section.source.rsplit(":", 1)[0]
        counts[path] = counts.get(path, 0) + 1
    return {
        "data": [
            {"file": str(path), "sha256": file_sha256(path), "sections": counts.get(str(path), 0)}
            for path in corpus.files
        ],
        "taxonomy_sha256": corpus.taxonomy.source_sha256,
        "config": {**config, "seed": args.seed},
        "code": code_version(),
    }


def fit_and_score(
    corpus: Corpus,
    splits: tuple[list[Section], list[Section], dict[str, list[Section]]],
    args: argparse.Namespace,
    progress: Progress,
) -> tuple[Any, Any, dict[str, Any], dict[str, HeldOut]]:
    """Cross-validate (fitting the rules), fit both heads, score every held-out set."""
    taxonomy = corpus.taxonomy
    train, test, extra_tests = splits
    full = not args.serving_only
    topic_config, stance_config = DEFAULT_TOPIC, DEFAULT_STANCE
    search_lines: list[str] = []
    quote_head = fit_quote_head(corpus.quotes, taxonomy, args.seed) if corpus.quotes else None
    if args.search:
        from training.search import search

        topic_config, stance_config, search_lines = progress.step(
            "comparing model families by cross-validation",
            lambda: search(train, taxonomy, args.seed, quote_head),
        )
    topic_rules, topic_folds = progress.step(
        f"cross-validating topics ({CV_FOLDS} folds)",
        lambda: cross_validate_topics(train, taxonomy, topic_config, args.seed),
    )
    stance_rules, stance_folds = progress.step(
        f"cross-validating stances ({CV_FOLDS} folds)",
        lambda: cross_validate_stances(
            train, taxonomy, stance_config, args.seed, quote_head=quote_head
        ),
    )
    topic_model = progress.step(
        "fitting the topic heads",
        lambda: fit_topics(train, taxonomy, topic_config, args.seed, topic_rules),
    )
    stance_model = progress.step(
        "fitting the stance head",
        lambda: fit_stances(
            train, taxonomy, stance_config, args.seed, rules=stance_rules, quote_head=quote_head
        ),
    )
    tests = {"held_out": test, **extra_tests}
    held = {
        name: evaluate(topic_model, stance_model, sections, taxonomy)
        for name, sections in tests.items()
    }
    by_language = {
        code: evaluate(topic_model, stance_model, mine, taxonomy)
        for code in taxonomy.languages
        if (mine := [s for s in test if s.lang == code]) and len(taxonomy.languages) > 1
    }
    base = (
        progress.step(
            "scoring the baselines",
            lambda: {
                name: baselines(train, sections, taxonomy) for name, sections in tests.items()
            },
        )
        if full
        else {}
    )
    curve = []
    if not args.no_report:
        curve = progress.step(
            "computing the learning curve",
            lambda: learning_curve(
                train,
                tests,
                taxonomy,
                configs=(topic_config, stance_config),
                rules=(topic_rules, stance_rules),
                quote_head=quote_head,
                seed=args.seed,
            ),
        )
    metrics: dict[str, Any] = {
        **{name: _scores(result) for name, result in held.items()},
        "held_out_by_language": {code: _scores(result) for code, result in by_language.items()},
        "cross_validation": {
            "topics": summarize(topic_folds, ["macro_f1", "micro_f1", "primary_accuracy"]),
            "stances": summarize(stance_folds, ["macro_f1", "f_avg", "accuracy"]),
        },
        "rules": {**topic_rules.notes, **stance_rules.notes},
        "baselines": base,
        "learning_curve": curve,
        "cv_folds": CV_FOLDS,
        "config": {"topics": topic_config.describe(), "stances": stance_config.describe()},
        "search": search_lines,
        "data": {
            "sections": len(corpus.sections),
            "train": len(train),
            "held_out": len(test),
            "test_sets": {name: len(sections) for name, sections in extra_tests.items()},
            "languages": {
                code: sum(s.lang == code for s in corpus.sections) for code in taxonomy.languages
            },
            "quotes": len(corpus.quotes),
            "train_pairs": sum(len(s.stances) for s in train),
            "held_out_pairs": held["held_out"].stances["pairs"],
        },
    }
    return topic_model, stance_model, metrics, held


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.no_report = args.no_report or args.serving_only
    started = time.perf_counter()
    try:
        corpus = load_data(args)
        extra_tests = load_test_sets(args.test_set, corpus.taxonomy)
    except DataError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in the data; nothing was written", file=sys.stderr)
        return 1
    if (args.out / MANIFEST_FILE).is_file() and not args.force:
        print(
            f"{args.out} holds an artifact directly, perhaps the one a server is using: "
            "refusing to overwrite it (give another --out, or --force)",
            file=sys.stderr,
        )
        return 1
    taxonomy = corpus.taxonomy
    train, test = split(corpus)
    print(f"data: {len(corpus.sections)} sections, {len(train)} train, {len(test)} held out")
    steps = 5 + int(args.search) + int(not args.serving_only) + 2 * int(not args.no_report)
    progress = Progress(steps)
    topic_model, stance_model, metrics, held = fit_and_score(
        corpus, (train, test, extra_tests), args, progress
    )
    created = datetime.now(UTC).replace(microsecond=0)
    dataset_sha = corpus.sha256()
    version = f"{dataset_sha[:12]}-{created:%Y%m%dT%H%M%SZ}"
    out = artifact_directory(args.out, version, args.force)
    assert out is not None  # refused above
    metrics["training_seconds"] = round(time.perf_counter() - started, 1)
    key = signing_key()
    manifest = progress.step(
        "writing the artifact",
        lambda: save_artifact(
            out,
            {
                "topic_model": topic_model,
                "stance_model": stance_model,
                "actors": taxonomy.actors,
                "neutral_stance": taxonomy.neutral_stance,
                "languages": language_payload(corpus),
            },
            {
                "version": version,
                "created": created.isoformat().replace("+00:00", "Z"),
                "dataset_sha256": dataset_sha,
                "seed": args.seed,
                "topics": list(taxonomy.topics),
                "none_topic": taxonomy.none_topic,
                "actors": list(taxonomy.actors),
                "stances": list(taxonomy.stances),
                "languages": list(taxonomy.languages),
                "thresholds": {
                    t: float(v)
                    for t, v in zip(taxonomy.topics, topic_model.thresholds, strict=True)
                },
                "metrics": _headline(metrics),
                **provenance(corpus, args, metrics["config"]),
            },
            key,
        ),
    )
    metrics["artifact_bytes"] = manifest["artifact_bytes"]
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if not args.no_report:
        progress.step(
            "writing report.md and plots",
            lambda: write_report(out, metrics, manifest, held, taxonomy),
        )
    print(_summary(metrics))
    size_mb = manifest["artifact_bytes"] / 1e6
    print(f"wrote {out} (version {version}, {size_mb:.1f} MB)")
    if out != args.out and not args.no_publish:
        publish(args.out, version)
        print(
            f"published: {args.out / POINTER_FILE} -> {version} "
            "(a running server switches on SIGHUP or ReloadModel)"
        )
    return 0


def load_test_sets(specs: Sequence[str], taxonomy: Taxonomy) -> dict[str, list[Section]]:
    """`NAME=PATH` pairs as labeled sections (checked against the same taxonomy)."""
    sets = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.isidentifier():
            raise DataError([f"--test-set: expected NAME=PATH, got {spec!r}"])
        sets[name] = load_corpus(Path(path), taxonomy=taxonomy).sections
    return sets


def _scores(result: HeldOut) -> dict[str, Any]:
    return {"topics": result.topics, "stances": result.stances}


def language_payload(corpus: Corpus) -> list[dict[str, Any]]:
    """Per taxonomy language: code, name, boilerplate, and whether the model was
    trained on it (any section in it); the server serves them from the model."""
    present = {section.lang for section in corpus.sections}
    return [
        Language.from_payload(
            {
                "code": code,
                **corpus.taxonomy.language_data.get(code, {}),
                "trained": code in present,
            }
        ).to_payload()
        for code in corpus.taxonomy.languages
    ]


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """What GetModelInfo reports: held-out sets, cross-validation, calibration, baselines,
    time and size."""

    def pick(scores: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in scores.items() if k != "per_label"}

    sets = ["held_out", *metrics["data"]["test_sets"]]
    return {
        **{name: {head: pick(s) for head, s in metrics[name].items()} for name in sets},
        "held_out_by_language": {
            code: {head: pick(s) for head, s in scores.items()}
            for code, scores in metrics["held_out_by_language"].items()
        },
        "cross_validation": metrics["cross_validation"],
        "baselines": {
            name: {
                baseline: {head: pick(s) for head, s in heads.items()}
                for baseline, heads in per_set.items()
            }
            for name, per_set in metrics["baselines"].items()
        },
        "training_seconds": metrics["training_seconds"],
    }


def _summary(metrics: dict[str, Any]) -> str:
    from training.evaluation import format_report

    lines = []
    for name in ["held_out", *metrics["data"]["test_sets"]]:
        label = name.replace("_", " ")
        lines += [
            format_report(
                f"topics ({label})",
                metrics[name]["topics"],
                ["macro_f1", "micro_f1", "primary_accuracy"],
            ),
            format_report(
                f"stances ({label})", metrics[name]["stances"], ["macro_f1", "f_avg", "accuracy"]
            ),
        ]
    for code, scores in metrics["held_out_by_language"].items():
        topics, stances = scores["topics"], scores["stances"]
        lines.append(
            f"held out, {code}: primary_accuracy {topics['primary_accuracy']:.3f}, "
            f"topics macro_f1 {topics['macro_f1']:.3f}, stances macro_f1 {stances['macro_f1']:.3f}"
        )
    return "\n".join(lines)


def write_report(
    out: Path,
    metrics: dict[str, Any],
    manifest: dict[str, Any],
    held_sets: dict[str, HeldOut],
    taxonomy: Taxonomy,
) -> None:
    held = held_sets["held_out"]
    labels = (*taxonomy.topics, taxonomy.none_topic)
    gold_primaries = [s.primary_topic(taxonomy.none_topic) for s in held.sections]
    report.plot_confusions(
        out / report.PLOTS["confusion"],
        (gold_primaries, held.primaries, labels),
        (held.gold_stances, held.predicted_stances, taxonomy.stances),
    )
    report.plot_per_label(
        out / report.PLOTS["per_label"], {"topics": held.topics, "stances": held.stances}
    )
    report.plot_learning_curve(out / report.PLOTS["learning_curve"], metrics["learning_curve"])
    report.plot_calibration(
        out / report.PLOTS["calibration"],
        {
            name: (
                (topic_targets(h.sections, taxonomy), h.topic_probs, taxonomy.topics),
                (one_hot(h.gold_stances, taxonomy.stances), h.stance_probs, taxonomy.stances),
            )
            for name, h in held_sets.items()
        },
    )
    (out / "report.md").write_text(report.render(metrics, manifest, plots=True), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
