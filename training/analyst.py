"""The analyst commands of `topicstance`: they read model directories, not servers.

    topicstance evaluate --model PATH --data FILE [--compare OTHER_MODEL]
    topicstance suggest --model PATH --unlabeled FILE [-n 50] [--out FILE]

`evaluate` scores any model on any labeled file (JSONL or CSV, checked against
the model's own label sets and alias lists); `suggest` picks the sections the
model is least sure of, to label next, written as JSONL with its guesses filled in.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from topicstance.bundle import ArtifactError, ModelBundle, SectionPrediction, load_bundle
from training.dataset import DataError, Section, Taxonomy, load_corpus
from training.evaluation import stance_scores, topic_scores

CHUNK = 256


def taxonomy_of(bundle: ModelBundle) -> Taxonomy:
    """The label sets and alias lists a model was trained with."""
    return Taxonomy(
        topics=bundle.topics,
        none_topic=bundle.none_topic,
        stances=bundle.stances,
        actors=bundle.actor_config,
        source_sha256="",
        neutral_stance=bundle.neutral_stance,
    )


def predict_all(bundle: ModelBundle, texts: Sequence[str]) -> list[SectionPrediction]:
    predictions: list[SectionPrediction] = []
    for start in range(0, len(texts), CHUNK):
        predictions += bundle.predict(texts[start : start + CHUNK])
    return predictions


def score(bundle: ModelBundle, sections: Sequence[Section], taxonomy: Taxonomy) -> dict[str, Any]:
    """Topic and stance scores of one model on labeled sections."""
    predictions = predict_all(bundle, [s.full_text for s in sections])
    targets = np.asarray([[int(t in s.topics) for t in taxonomy.topics] for s in sections])
    listed = np.asarray([[int(t in p.topics) for t in taxonomy.topics] for p in predictions])
    gold, predicted = [], []
    for section, prediction in zip(sections, predictions, strict=True):
        found = {s.actor: s.stance for s in prediction.stances}
        for actor, stance in section.stances.items():
            gold.append(stance)
            predicted.append(found.get(actor, taxonomy.neutral_stance or taxonomy.stances[-1]))
    return {
        "topics": topic_scores(
            targets,
            listed,
            [s.primary_topic(taxonomy.none_topic) for s in sections],
            [p.primary_topic for p in predictions],
            taxonomy.topics,
        ),
        "stances": stance_scores(gold, predicted, taxonomy.stances, taxonomy.neutral_stance),
    }


def side_by_side(names: Sequence[str], results: Sequence[dict[str, Any]]) -> str:
    """Headline scores, then per-label F1, one column per model."""
    header = "| score | " + " | ".join(names) + " |"
    lines = [header, "|---|" + "---|" * len(names)]
    for head, keys in (
        ("topics", ("macro_f1", "micro_f1", "primary_accuracy")),
        ("stances", ("macro_f1", "f_avg", "accuracy")),
    ):
        for key in keys:
            lines.append(
                f"| {head} {key} | " + " | ".join(f"{r[head][key]:.3f}" for r in results) + " |"
            )
        for label in results[0][head]["per_label"]:
            cells = " | ".join(f"{r[head]['per_label'][label]['f1']:.3f}" for r in results)
            support = results[0][head]["per_label"][label]["support"]
            lines.append(f"| {head} F1 `{label}` (n={support}) | {cells} |")
    return "\n".join(lines)


def evaluate(args: argparse.Namespace) -> int:
    bundles = [
        load_bundle(path) for path in [args.model, *([args.compare] if args.compare else [])]
    ]
    taxonomy = taxonomy_of(bundles[0])
    for other in bundles[1:]:
        if (other.topics, other.stances, other.actors) != (
            bundles[0].topics,
            bundles[0].stances,
            bundles[0].actors,
        ):
            print("topicstance: the two models have different label sets", file=sys.stderr)
            return 1
    corpus = load_corpus(args.data, taxonomy=taxonomy)
    results = [score(bundle, corpus.sections, taxonomy) for bundle in bundles]
    if args.json:
        print(json.dumps({b.version: r for b, r in zip(bundles, results, strict=True)}, indent=2))
        return 0
    print(f"{len(corpus.sections)} labeled sections from {args.data}")
    print(side_by_side([b.version for b in bundles], results))
    return 0


def read_unlabeled(path: Path) -> Iterator[dict[str, Any]]:
    """Sections to label: JSONL or CSV with a `text` field (and optional id, heading),
    or plain text with sections separated by blank lines."""
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix == ".jsonl":
            rows: Iterator[dict[str, Any]] = (json.loads(line) for line in handle if line.strip())
        elif path.suffix == ".csv":
            rows = csv.DictReader(handle)
        else:
            rows = (
                {"text": block.strip()} for block in handle.read().split("\n\n") if block.strip()
            )
        for number, row in enumerate(rows, start=1):
            if not isinstance(row, dict) or not str(row.get("text") or "").strip():
                raise DataError([f"{path}: record {number}: text: expected a non-empty string"])
            yield {
                "id": str(row.get("id") or f"u{number:05d}"),
                **{k: row[k] for k in ("heading", "text") if row.get(k)},
            }


def uncertainty(prediction: SectionPrediction, thresholds: dict[str, float]) -> tuple[float, str]:
    """How unsure the model is (0 sure, 1 unsure), and what it is unsure about."""
    candidates = [
        (
            1.0 - abs(score - thresholds[topic]) / max(thresholds[topic], 1.0 - thresholds[topic]),
            f"topic {topic}",
        )
        for topic, score in prediction.topic_scores
    ]
    for stance in prediction.stances:
        scores = sorted((s for _, s in stance.scores), reverse=True)
        margin = scores[0] - (scores[1] if len(scores) > 1 else 0.0)
        candidates.append((1.0 - margin, f"stance of {stance.actor}"))
    return max(candidates)


def suggest(args: argparse.Namespace) -> int:
    bundle = load_bundle(args.model)
    items = list(read_unlabeled(args.unlabeled))
    texts = [f"{i['heading']}\n{i['text']}" if i.get("heading") else i["text"] for i in items]
    thresholds = dict(zip(bundle.topics, map(float, bundle.thresholds), strict=True))
    ranked = sorted(
        (
            (uncertainty(p, thresholds), item, p)
            for item, p in zip(items, predict_all(bundle, texts), strict=True)
        ),
        key=lambda entry: -entry[0][0],
    )[: args.n]
    output = args.out.open("w", encoding="utf-8") if args.out else nullcontext(sys.stdout)
    with output as handle:
        for _, item, prediction in ranked:
            record = {
                **item,
                "topics": prediction.topics,
                "stances": {s.actor: s.stance for s in prediction.stances},
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(
        f"{len(ranked)} of {len(items)} sections, least sure first (labels are guesses):",
        file=sys.stderr,
    )
    for (value, reason), item, _ in ranked[:10]:
        print(f"  {item['id']:<12} uncertainty {value:.2f}  ({reason})", file=sys.stderr)
    return 0


def add_commands(commands: Any) -> None:
    """`evaluate` and `suggest`: the analyst's tools, run on a model directory."""
    evaluate_cmd = commands.add_parser("evaluate", help="score a model on a labeled file")
    evaluate_cmd.add_argument("--model", type=Path, required=True, help="model directory")
    evaluate_cmd.add_argument(
        "--data", type=Path, required=True, help="labeled JSONL or CSV file (or directory)"
    )
    evaluate_cmd.add_argument("--compare", type=Path, help="a second model, scored side by side")
    evaluate_cmd.add_argument("--json", action="store_true", help="print every score as JSON")
    evaluate_cmd.set_defaults(run=reporting(evaluate))
    suggest_cmd = commands.add_parser(
        "suggest", help="the sections to label next (least sure first)"
    )
    suggest_cmd.add_argument("--model", type=Path, required=True, help="model directory")
    suggest_cmd.add_argument(
        "--unlabeled", type=Path, required=True, help="JSONL, CSV or text file"
    )
    suggest_cmd.add_argument("-n", type=int, default=50, help="how many sections (default 50)")
    suggest_cmd.add_argument(
        "--out", type=Path, help="write the JSONL here (default: standard output)"
    )
    suggest_cmd.set_defaults(run=reporting(suggest))


def reporting(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The command, with data and artifact problems as lines on stderr and exit status 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (DataError, ArtifactError) as error:
            problems = error.problems if isinstance(error, DataError) else [str(error)]
            for problem in problems:
                print(f"topicstance: {problem}", file=sys.stderr)
            return 1

    return run
