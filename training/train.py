"""Train the topic and stance heads, score them on the held-out split, save the artifact.

    python training/train.py --data training/data --out models/default [--seed N]
                             [--search] [--no-report]

Writes model.joblib, manifest.json, metrics.json and (unless --no-report)
report.md with its plots. Deterministic for a given seed and corpus, apart from
the creation time in the version.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from service.bundle import save_artifact
from training import report
from training.dataset import DataError, Section, Taxonomy, group_hash, load_corpus, split
from training.heads import (
    CV_FOLDS,
    HeldOut,
    baselines,
    cross_validate_stances,
    cross_validate_topics,
    evaluate,
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
    parser.add_argument("--data", type=Path, default=Path("training/data"), help="corpus directory")
    parser.add_argument(
        "--out", type=Path, default=Path("models/default"), help="artifact directory"
    )
    parser.add_argument("--seed", type=int, default=13, help="random seed")
    parser.add_argument("--config", type=Path, help="taxonomy file (default: DATA/taxonomy.toml)")
    parser.add_argument("--search", action="store_true", help="compare model families first (slow)")
    parser.add_argument(
        "--no-report", action="store_true", help="skip the learning curve and plots"
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
    test: list[Section],
    taxonomy: Taxonomy,
    *,
    configs: tuple[TopicConfig, StanceConfig],
    thresholds: dict[str, float],
    seed: int,
) -> list[dict[str, float]]:
    """Held-out scores of models fitted on growing shares of the training groups."""
    groups = sorted({s.group for s in train}, key=group_hash)
    points = []
    for fraction in LEARNING_FRACTIONS:
        chosen = set(groups[: max(2, round(len(groups) * fraction))])
        subset = [s for s in train if s.group in chosen]
        heads = fit_topics(subset, taxonomy, configs[0], seed, thresholds)
        held = evaluate(heads, fit_stances(subset, taxonomy, configs[1], seed), test, taxonomy)
        points.append(
            {
                "train_sections": len(subset),
                "topic_macro_f1": held.topics["macro_f1"],
                "primary_accuracy": held.topics["primary_accuracy"],
                "stance_macro_f1": held.stances["macro_f1"],
            }
        )
    return points


def one_hot(labels: list[str], vocabulary: tuple[str, ...]) -> np.ndarray:
    return np.asarray([[int(label == v) for v in vocabulary] for label in labels], dtype=int)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        corpus = load_corpus(args.data, args.config)
    except DataError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in the data; nothing was written", file=sys.stderr)
        return 1
    taxonomy = corpus.taxonomy
    train, test = split(corpus)
    print(f"data: {len(corpus.sections)} sections, {len(train)} train, {len(test)} held out")
    progress = Progress(6 + int(args.search) + 2 * int(not args.no_report))
    topic_config, stance_config = DEFAULT_TOPIC, DEFAULT_STANCE
    search_lines: list[str] = []
    if args.search:
        from training.search import search

        topic_config, stance_config, search_lines = progress.step(
            "comparing model families by cross-validation",
            lambda: search(train, taxonomy, args.seed),
        )
    thresholds, topic_folds = progress.step(
        f"cross-validating topics ({CV_FOLDS} folds)",
        lambda: cross_validate_topics(train, taxonomy, topic_config, args.seed),
    )
    stance_folds = progress.step(
        f"cross-validating stances ({CV_FOLDS} folds)",
        lambda: cross_validate_stances(train, taxonomy, stance_config, args.seed),
    )
    heads = progress.step(
        "fitting the topic heads",
        lambda: fit_topics(train, taxonomy, topic_config, args.seed, thresholds),
    )
    stance_model = progress.step(
        "fitting the stance head", lambda: fit_stances(train, taxonomy, stance_config, args.seed)
    )
    held = evaluate(heads, stance_model, test, taxonomy)
    base = progress.step("scoring the baselines", lambda: baselines(train, test, taxonomy))
    curve = []
    if not args.no_report:
        curve = progress.step(
            "computing the learning curve",
            lambda: learning_curve(
                train,
                test,
                taxonomy,
                configs=(topic_config, stance_config),
                thresholds=thresholds,
                seed=args.seed,
            ),
        )
    metrics: dict[str, Any] = {
        "held_out": {"topics": held.topics, "stances": held.stances},
        "cross_validation": {
            "topics": summarize(topic_folds, ["macro_f1", "micro_f1", "primary_accuracy"]),
            "stances": summarize(stance_folds, ["macro_f1", "f_avg", "accuracy"]),
        },
        "baselines": base,
        "learning_curve": curve,
        "cv_folds": CV_FOLDS,
        "config": {"topics": topic_config.describe(), "stances": stance_config.describe()},
        "search": search_lines,
        "data": {
            "sections": len(corpus.sections),
            "train": len(train),
            "held_out": len(test),
            "train_pairs": sum(len(s.stances) for s in train),
            "held_out_pairs": held.stances["pairs"],
        },
    }
    created = datetime.now(UTC).replace(microsecond=0)
    dataset_sha = corpus.sha256()
    metrics["training_seconds"] = round(time.perf_counter() - started, 1)
    manifest = progress.step(
        "writing the artifact",
        lambda: save_artifact(
            args.out,
            {
                "topic_features": heads.features,
                "topic_classifier": heads.classifier,
                "primary_classifier": heads.primary,
                "stance_model": stance_model,
                "topics": list(taxonomy.topics),
                "none_topic": taxonomy.none_topic,
                "stances": list(taxonomy.stances),
                "actors": taxonomy.actors,
                "thresholds": thresholds,
            },
            {
                "version": f"{dataset_sha[:12]}-{created:%Y%m%dT%H%M%SZ}",
                "created": created.isoformat().replace("+00:00", "Z"),
                "dataset_sha256": dataset_sha,
                "seed": args.seed,
                "topics": list(taxonomy.topics),
                "none_topic": taxonomy.none_topic,
                "actors": list(taxonomy.actors),
                "stances": list(taxonomy.stances),
                "thresholds": thresholds,
                "metrics": _headline(metrics),
            },
        ),
    )
    metrics["artifact_bytes"] = manifest["artifact_bytes"]
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if not args.no_report:
        progress.step(
            "writing report.md and plots",
            lambda: write_report(args.out, metrics, manifest, held, taxonomy),
        )
    print(_summary(metrics))
    size_mb = manifest["artifact_bytes"] / 1e6
    print(f"wrote {args.out} (version {manifest['version']}, {size_mb:.1f} MB)")
    return 0


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """What GetModelInfo reports: held-out, cross-validation, baselines, time and size."""

    def pick(scores: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in scores.items() if k != "per_label"}

    return {
        "held_out": {head: pick(scores) for head, scores in metrics["held_out"].items()},
        "cross_validation": metrics["cross_validation"],
        "baselines": {
            name: {head: pick(scores) for head, scores in heads.items()}
            for name, heads in metrics["baselines"].items()
        },
        "training_seconds": metrics["training_seconds"],
    }


def _summary(metrics: dict[str, Any]) -> str:
    from training.evaluation import format_report

    held = metrics["held_out"]
    return "\n".join(
        [
            format_report(
                "topics (held out)", held["topics"], ["macro_f1", "micro_f1", "primary_accuracy"]
            ),
            format_report("stances (held out)", held["stances"], ["macro_f1", "f_avg", "accuracy"]),
        ]
    )


def write_report(
    out: Path, metrics: dict[str, Any], manifest: dict[str, Any], held: HeldOut, taxonomy: Taxonomy
) -> None:
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
        (topic_targets(held.sections, taxonomy), held.topic_probs, taxonomy.topics),
        (one_hot(held.gold_stances, taxonomy.stances), held.stance_probs, taxonomy.stances),
    )
    (out / "report.md").write_text(report.render(metrics, manifest, plots=True), encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
