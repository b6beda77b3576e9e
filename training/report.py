"""The training report: `report.md` and its PNG plots, written next to the artifact."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix

PLOTS = {
    "confusion": "confusion.png",
    "per_label": "per_label.png",
    "learning_curve": "learning_curve.png",
    "calibration": "calibration.png",
}


def _confusion(
    axis: Any, gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str], title: str
) -> None:
    matrix = confusion_matrix(gold, predicted, labels=list(labels))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("labeled")
    axis.set_title(title)
    peak = matrix.max() or 1
    for (row, col), value in np.ndenumerate(matrix):
        colour = "white" if value > peak / 2 else "black"
        axis.text(col, row, str(value), ha="center", va="center", color=colour, fontsize=9)


def plot_confusions(
    path: Path,
    topic: tuple[Sequence[str], Sequence[str], Sequence[str]],
    stance: tuple[Sequence[str], Sequence[str], Sequence[str]],
) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(11, 5))
    _confusion(axes[0], *topic, "primary topic (held out)")
    _confusion(axes[1], *stance, "stance (held out)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_per_label(path: Path, heads: dict[str, dict[str, Any]]) -> None:
    figure, axes = plt.subplots(1, len(heads), figsize=(6 * len(heads), 4))
    for axis, (title, scores) in zip(np.atleast_1d(axes), heads.items(), strict=True):
        labels = list(scores["per_label"])
        positions = np.arange(len(labels))
        for offset, metric in zip((-0.27, 0, 0.27), ("precision", "recall", "f1"), strict=True):
            values = [scores["per_label"][label][metric] for label in labels]
            axis.bar(positions + offset, values, width=0.27, label=metric)
        axis.set_xticks(positions, labels, rotation=20)
        axis.set_ylim(0, 1.05)
        axis.set_title(f"{title} (held out)")
        axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_learning_curve(path: Path, curve: Sequence[dict[str, Any]]) -> None:
    """One panel per held-out set: the three scores against the training size."""
    sets = [key for key in curve[0] if key != "train_sections"] if curve else []
    figure, axes = plt.subplots(1, max(len(sets), 1), figsize=(6 * max(len(sets), 1), 4.5))
    axes = np.atleast_1d(axes)
    sizes = [point["train_sections"] for point in curve]
    for axis, name in zip(axes, sets, strict=False):
        for key, label in (
            ("topic_macro_f1", "topic macro-F1"),
            ("primary_accuracy", "primary-topic accuracy"),
            ("stance_macro_f1", "stance macro-F1"),
        ):
            axis.plot(sizes, [point[name][key] for point in curve], marker="o", label=label)
        axis.set_xlabel("training sections")
        axis.set_ylabel("score")
        axis.set_ylim(0.5, 1.0)
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right")
        axis.set_title(f"Learning curve ({name.replace('_', ' ')})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


Reliability = tuple[np.ndarray, np.ndarray, Sequence[str]]


def plot_calibration(path: Path, sets: dict[str, tuple[Reliability, Reliability]]) -> None:
    """Reliability diagrams (15 equal-width bins, as the ECE): topics and stances, one row
    per held-out set."""
    figure, axes = plt.subplots(len(sets), 2, figsize=(11, 4.5 * len(sets)), squeeze=False)
    for row, (name, heads) in enumerate(sets.items()):
        for axis, (targets, probs, labels), title in zip(
            axes[row], heads, ("topics", "stances"), strict=True
        ):
            axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
            for column, label in enumerate(labels):
                if targets[:, column].min() == targets[:, column].max():
                    continue
                observed, predicted = calibration_curve(
                    targets[:, column], probs[:, column], n_bins=15, strategy="uniform"
                )
                axis.plot(predicted, observed, marker="o", label=label)
            axis.set_xlabel("predicted probability")
            axis.set_ylabel("observed frequency")
            axis.set_title(f"Reliability: {title} ({name.replace('_', ' ')})")
            axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _per_label_table(scores: dict[str, Any]) -> str:
    lines = ["| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, row in scores["per_label"].items():
        numbers = " | ".join(f"{row[key]:.3f}" for key in ("precision", "recall", "f1"))
        lines.append(f"| `{label}` | {numbers} | {row['support']} |")
    return "\n".join(lines)


def _cell(tree: dict[str, Any], *path: str) -> str:
    node: Any = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return "n/a"
        node = node[key]
    return f"{node:.3f}"


SCORE_ROWS = (
    ("topic macro-F1", ("topics", "macro_f1")),
    ("topic micro-F1", ("topics", "micro_f1")),
    ("primary-topic accuracy", ("topics", "primary_accuracy")),
    ("primary accuracy, two-topic sections", ("topics", "two_topic_primary_accuracy")),
    ("stance macro-F1", ("stances", "macro_f1")),
    ("stance F_avg", ("stances", "f_avg")),
    ("stance accuracy", ("stances", "accuracy")),
)


def _score_table(metrics: dict[str, Any], name: str, with_cv: bool) -> list[str]:
    """One held-out set: the model, cross-validation (for the split), the baselines."""
    held, cv, base = metrics[name], metrics["cross_validation"], metrics["baselines"].get(name, {})
    header = "| score | model |" + (" cross-validation (mean ± std) |" if with_cv else "")
    lines = [header + " keyword rules | majority class |", "|---|---|" + "---|" * (2 + with_cv)]
    for label, (head, key) in SCORE_ROWS:
        if key not in held[head]:
            continue
        cells = [f"**{held[head][key]:.3f}**"]
        if with_cv:
            spread = cv.get(head, {}).get(key)
            cells.append(f"{spread['mean']:.3f} ± {spread['std']:.3f}" if spread else "n/a")
        cells += [_cell(base, baseline, head, key) for baseline in ("keywords", "majority")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _calibration_table(metrics: dict[str, Any], sets: Sequence[str]) -> list[str]:
    topics = list(metrics["held_out"]["topics"].get("ece", {}))
    lines = [
        "| set | " + " | ".join(f"`{t}`" for t in topics) + " | stances |",
        "|---|" + "---|" * (len(topics) + 1),
    ]
    for name in sets:
        ece = metrics[name]["topics"].get("ece", {})
        cells = [f"{ece.get(t, 0.0):.3f}" for t in topics]
        lines.append(
            f"| {name.replace('_', ' ')} | "
            + " | ".join(cells)
            + f" | {metrics[name]['stances'].get('ece', 0.0):.3f} |"
        )
    return lines


def _language_table(metrics: dict[str, Any]) -> list[str]:
    rows = metrics.get("held_out_by_language", {})
    if not rows:
        return []
    lines = [
        "## Held-out scores per language",
        "",
        "| language | sections | primary-topic accuracy | topic macro-F1 | stance macro-F1 |",
        "|---|---|---|---|---|",
    ]
    for code, scores in rows.items():
        topics, stances = scores["topics"], scores["stances"]
        lines.append(
            f"| {code} | {topics['sections']} | {topics['primary_accuracy']:.3f} | "
            f"{topics['macro_f1']:.3f} | {stances['macro_f1']:.3f} |"
        )
    return [*lines, ""]


def render(metrics: dict[str, Any], manifest: dict[str, Any], plots: bool) -> str:
    """The report in Markdown; every figure comes from `metrics`."""
    data = metrics["data"]
    sets = ["held_out", *data.get("test_sets", {})]
    rules = metrics.get("rules", {})
    parts = [
        f"# Training report: model `{manifest['version']}`",
        "",
        f"Trained {manifest['created']} on {data['sections']} sections ({data['train']} train, "
        f"{data['held_out']} held out; {data['train_pairs']} and {data['held_out_pairs']} "
        f"actor-stance pairs), seed {manifest['seed']}, in {metrics['training_seconds']:.0f} s. "
        f"Artifact: {metrics['artifact_bytes'] / 1e6:.1f} MB. Dataset SHA-256 "
        f"`{manifest['dataset_sha256'][:16]}...`.",
        "",
        "## Held-out scores and baselines",
        "",
        "Scores on the fixed held-out split, which training never sees. Cross-validation: "
        f"{metrics['cv_folds']} folds by document on the training split. Keyword rules: the "
        "baseline written from the label rules (`topic_keywords` and `stance_cues` in the "
        "taxonomy).",
        "",
        *_score_table(metrics, "held_out", with_cv=True),
        "",
    ]
    for name in sets[1:]:
        parts += [
            f"## Test set `{name}` ({data['test_sets'][name]} sections, never trained or tuned on)",
            "",
            *_score_table(metrics, name, with_cv=False),
            "",
        ]
    parts += _language_table(metrics)
    parts += [
        "## Calibration",
        "",
        "Expected calibration error (15 equal-width bins): per topic, of its probability as a "
        "yes/no forecast; for stances, of the predicted stance's probability. The calibrators "
        "were chosen by cross-validation on out-of-fold scores of the training split "
        f"(topics: {rules.get('topic_calibration', {}).get('chosen', 'n/a')}, "
        f"stances: {rules.get('stance_calibration', {}).get('chosen', 'n/a')}; "
        f"cross-validated ECE of each candidate: topics "
        f"{rules.get('topic_calibration', {}).get('cv_ece', {})}, stances "
        f"{rules.get('stance_calibration', {}).get('cv_ece', {})}).",
        "",
        *_calibration_table(metrics, sets),
        "",
        "## Topics (held out)",
        "",
        _per_label_table(metrics["held_out"]["topics"]),
        "",
        "Thresholds (tuned for F1 on calibrated out-of-fold scores): "
        + ", ".join(f"`{t}` {v:.2f}" for t, v in manifest["thresholds"].items()),
        "",
        "Primary topic: a stacker over the primary head and the sentences' votes (the topic "
        "most sentences are about), fitted on out-of-fold scores: out-of-fold primary "
        "accuracy "
        f"{rules.get('primary_stacker', {}).get('cv_primary_accuracy', 0):.3f}, against "
        f"{rules.get('primary_stacker', {}).get('cv_primary_accuracy_head_alone', 0):.3f} "
        "for the head alone.",
        "",
        "## Stances (held out)",
        "",
        _per_label_table(metrics["held_out"]["stances"]),
        "",
        f"Own quotes: {rules.get('quoted_pairs', 0)} actor-section pairs of the training split "
        "quote the actor. The quote head (trained on labeled quotes) reads them; a combiner "
        "fitted on out-of-fold scores weighs it against the section's views (the logistic "
        "head and, if configured, a naive Bayes view of the same features), and a quote the "
        "head is at least "
        f"{rules.get('own_quote_wins_at', {}).get('chosen')} sure of wins (threshold by "
        f"out-of-fold macro-F1: {rules.get('own_quote_wins_at', {}).get('cv_macro_f1', {})}).",
        "",
        "## Configuration",
        "",
        f"- Topics: `{metrics['config']['topics']}`",
        f"- Stances: `{metrics['config']['stances']}`",
    ]
    if metrics.get("search"):
        parts += [
            "",
            "## Model search (cross-validation on the training split)",
            "",
            *metrics["search"],
        ]
    if plots:
        parts += [
            "",
            "## Plots",
            "",
            f"![confusion matrices]({PLOTS['confusion']})",
            f"![per-label precision, recall and F1]({PLOTS['per_label']})",
            f"![learning curve]({PLOTS['learning_curve']})",
            f"![reliability curves]({PLOTS['calibration']})",
        ]
    return "\n".join(parts) + "\n"
