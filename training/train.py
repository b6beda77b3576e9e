"""Train the topic and stance heads, evaluate them on the held-out split, save the artifact.

    python training/train.py --data training/data --out models/default [--seed N]

Deterministic for a given seed and corpus (apart from the creation time and version).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from sklearn.model_selection import GroupKFold, cross_val_predict

from service.bundle import save_artifact
from training.dataset import Corpus, DataError, Section, load_corpus, split
from training.evaluation import (
    format_report,
    primary_topics,
    stance_scores,
    topic_scores,
    tune_thresholds,
)
from training.pipelines import stance_examples, stance_pipeline, topic_pipeline, topic_targets

CV_FOLDS = 5


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
    return parser.parse_args(argv)


def out_of_fold_probs(sections: list[Section], targets: np.ndarray, seed: int) -> np.ndarray:
    """Topic scores for each training section from a model that never saw it."""
    folds = GroupKFold(n_splits=min(CV_FOLDS, len({s.group for s in sections})))
    return np.asarray(
        cross_val_predict(
            topic_pipeline(seed),
            [s.full_text for s in sections],
            targets,
            groups=[s.group for s in sections],
            cv=folds,
            method="predict_proba",
        )
    )


def train_topics(
    corpus: Corpus, train: list[Section], test: list[Section], seed: int
) -> tuple[Any, dict[str, float], dict[str, Any]]:
    taxonomy = corpus.taxonomy
    targets = topic_targets(train, taxonomy)
    thresholds = tune_thresholds(targets, out_of_fold_probs(train, targets, seed), taxonomy.topics)
    model = topic_pipeline(seed).fit([s.full_text for s in train], targets)
    probs = np.asarray(model.predict_proba([s.full_text for s in test]))
    cutoffs = np.asarray([thresholds[t] for t in taxonomy.topics])
    scores = topic_scores(
        topic_targets(test, taxonomy),
        (probs >= cutoffs).astype(int),
        [s.primary_topic(taxonomy.none_topic) for s in test],
        primary_topics(probs, cutoffs, taxonomy.topics, taxonomy.none_topic),
        taxonomy.topics,
    )
    return model, thresholds, scores


def train_stances(
    corpus: Corpus, train: list[Section], test: list[Section], seed: int
) -> tuple[Any, dict[str, Any]]:
    matcher = corpus.taxonomy.matcher()
    inputs, labels, _ = stance_examples(train, matcher)
    model = stance_pipeline(seed).fit(inputs, labels)
    test_inputs, test_labels, _ = stance_examples(test, matcher)
    predicted = list(model.predict(test_inputs)) if test_inputs else []
    scores = stance_scores(
        test_labels, predicted, corpus.taxonomy.stances, corpus.taxonomy.neutral_stance
    )
    return model, scores


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
    topic_model, thresholds, topics = train_topics(corpus, train, test, args.seed)
    stance_model, stances = train_stances(corpus, train, test, args.seed)
    created = datetime.now(UTC).replace(microsecond=0)
    dataset_sha = corpus.sha256()
    metrics = {
        "held_out": {"topics": topics, "stances": stances},
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    manifest = save_artifact(
        args.out,
        {
            "topic_model": topic_model,
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
            "metrics": metrics,
        },
    )
    (args.out / "metrics.json").write_text(_json(metrics))
    print(format_report("topics (held out)", topics, ["macro_f1", "micro_f1", "primary_accuracy"]))
    print(format_report("stances (held out)", stances, ["macro_f1", "f_avg", "accuracy"]))
    size_mb = manifest["artifact_bytes"] / 1e6
    print(f"wrote {args.out} (version {manifest['version']}, {size_mb:.1f} MB)")
    return 0


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
