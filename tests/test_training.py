"""train.py: validates first, writes the artifact, is deterministic for a seed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA, copy_taxonomy
from topicstance.bundle import load_bundle, resolve
from training import train
from training.dataset import load_corpus

PROBE = [
    "Russian missiles hit a substation in Kharkiv; Ukraine said two workers died.",
    "Washington offered Kyiv a new package of air-defence interceptors.",
]


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every tenth section of the real corpus: enough to train, quick to fit."""
    directory = tmp_path_factory.mktemp("small")
    copy_taxonomy(directory)
    corpus = load_corpus(DATA)
    lines = [
        json.dumps(
            {
                "id": s.id,
                "basis": s.basis,
                "text": s.text,
                "heading": s.heading,
                "topics": list(s.topics),
                "stances": s.stances,
            }
        )
        for s in corpus.sections[::10]
    ]
    (directory / "small.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def test_same_seed_same_model(small_corpus: Path, tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        args = [
            "--data",
            str(small_corpus),
            "--out",
            str(tmp_path / name),
            "--seed",
            "3",
            "--no-report",
        ]
        assert train.main(args) == 0
        bundle = load_bundle(tmp_path / name)
        topics = bundle.topic_model
        features = topics.features.transform(PROBE)
        outputs.append((topics.classifier.predict_proba(features), bundle.manifest["thresholds"]))
    assert np.array_equal(outputs[0][0], outputs[1][0])
    assert outputs[0][1] == outputs[1][1]


def test_training_writes_the_report_with_its_plots(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train.main(["--data", str(small_corpus), "--out", str(tmp_path / "model")]) == 0
    out = resolve(tmp_path / "model")
    plots = {"confusion.png", "per_label.png", "learning_curve.png", "calibration.png"}
    expected = {"model.joblib", "manifest.json", "metrics.json", "report.md"} | plots
    assert {p.name for p in out.iterdir()} >= expected
    for plot in plots:
        assert (out / plot).read_bytes().startswith(b"\x89PNG")
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["held_out"]["topics"]["macro_f1"] <= 1.0
    assert len(metrics["learning_curve"]) == 5
    report = (out / "report.md").read_text()
    for part in (
        "## Held-out scores and baselines",
        "keyword rules",
        "majority class",
        "cross-validation (mean ± std)",
        "Artifact:",
        "![learning curve](learning_curve.png)",
    ):
        assert part in report
    held = metrics["held_out"]["stances"]["macro_f1"]
    assert f"**{held:.3f}**" in report
    printed = capsys.readouterr().out
    assert "topics (held out)" in printed and "stances (held out)" in printed
    assert "[1/8] cross-validating topics" in printed


def test_bad_record_stops_training_with_file_and_line(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(small_corpus, broken)
    with (broken / "small.jsonl").open("a") as handle:
        handle.write(
            '{"id": "bad-1", "text": "A text with no label list at all here.", "stances": {}}\n'
        )
    out = tmp_path / "model"
    assert train.main(["--data", str(broken), "--out", str(out)]) == 1
    lines = sum(1 for _ in (broken / "small.jsonl").open())
    assert f"small.jsonl:{lines}: topics: expected a list" in capsys.readouterr().err
    assert not out.exists()
