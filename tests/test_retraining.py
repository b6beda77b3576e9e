"""Retraining for analysts: their taxonomy, their data, and a safe path to production."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
import pytest

from tests.conftest import DATA, copy_taxonomy
from tests.serving import REPO, start_server
from topicstance.bundle import MANIFEST_FILE, POINTER_FILE, read_manifest, resolve
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc
from training import train
from training.dataset import load_corpus

TRADE = REPO / "training" / "examples" / "trade"


def write_jsonl(path: Path, records: Sequence[Mapping[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every tenth section of our corpus, with our taxonomy: quick to train on."""
    directory = tmp_path_factory.mktemp("small")
    copy_taxonomy(directory)
    sections = load_corpus(DATA).sections[::10]
    write_jsonl(
        directory / "small.jsonl",
        [{"id": s.id, "basis": s.basis, "text": s.text, "heading": s.heading,
          "topics": list(s.topics), "stances": s.stances} for s in sections],
    )  # fmt: skip
    return directory


@pytest.fixture(scope="module")
def models(small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model root trained twice: two versions, CURRENT at the second."""
    root = tmp_path_factory.mktemp("models") / "analyst"
    for seed in ("1", "2"):
        args = ["--data", str(small), "--out", str(root), "--seed", seed, "--no-report"]
        assert train.main(args) == 0
    return root


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client.main", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_second_taxonomy_trains_serves_and_reports_its_own_labels(tmp_path: Path) -> None:
    out = tmp_path / "trade"
    assert train.main(["--data", str(TRADE), "--out", str(out), "--no-report"]) == 0
    server = start_server(out, ["--workers", "1"])
    try:
        with grpc.insecure_channel(server.target) as channel:
            stub = pb_grpc.TopicStanceServiceStub(channel)
            info = stub.GetModelInfo(pb.GetModelInfoRequest())
            assert list(info.topics) == ["tariffs", "quotas", "arbitration"]
            assert list(info.actors) == ["valdoria", "ostmark"]
            assert list(info.stances) == ["escalating", "conciliatory", "neutral"]
            text = (
                "Ostmark raised its duties on Valdorian cheese and wine to forty percent, "
                "and Valdoria said it would answer with tariffs of its own on Ostmarker steel."
            )
            result = stub.ClassifyText(pb.ClassifyTextRequest(text=text)).result
    finally:
        assert server.stop() == 0
    assert result.primary_topic == "tariffs"
    assert {s.label for s in result.topic_scores} == {"tariffs", "quotas", "arbitration"}
    assert {s.actor for s in result.stances} == {"ostmark", "valdoria"}
    for stance in result.stances:
        assert {s.label for s in stance.scores} == {"escalating", "conciliatory", "neutral"}


def test_csv_errors_come_all_at_once_and_nothing_is_written(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "theirs"
    data.mkdir()
    copy_taxonomy(data)
    rows = [
        ["id", "basis", "text", "topics", "stances"],
        ["a1", "invented", "Russian troops took two villages west of the river.", "territory",
         "russia=confrontational"],
        ["a2", "invented", "Kyiv asked for more interceptors after the night attack.", "weather",
         "ukraine=cooperative"],
        ["a3", "invented", "The White House announced new sanctions on oil traders.", "us_policy",
         "united_states:confrontational"],
        ["a4", "invented", "A short one.", "", ""],
    ]  # fmt: skip
    with (data / "theirs.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    out = tmp_path / "never"
    assert train.main(["--data", str(data), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "theirs.csv:3: topics: unknown label 'weather'" in err
    assert "theirs.csv:4: stances: expected actor=stance pairs" in err
    assert "theirs.csv:5: text: expected 5 to 300 words" in err
    assert "3 problem(s) in the data; nothing was written" in err
    assert not out.exists()


def test_base_data_plus_theirs_reports_duplicates(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours = load_corpus(small).sections

    def record(index: int, text: str) -> dict[str, object]:
        section = ours[index]
        return {"id": f"their-{index + 1}", "basis": "invented", "text": text,
                "heading": section.heading, "topics": list(section.topics),
                "stances": section.stances}  # fmt: skip

    new = "Our own new paragraph: Valencia's port unions went on a labour strike over pay."
    theirs = write_jsonl(
        tmp_path / "theirs.jsonl",
        [
            record(0, ours[0].text),
            record(1, ours[1].text + " Officials confirmed it."),
            {"id": "their-3", "basis": "invented", "text": new, "topics": [], "stances": {}},
        ],
    )
    out = tmp_path / "combined"
    args = ["--base-data", str(small), "--data", str(theirs), "--out", str(out), "--no-report"]
    assert train.main(args) == 0
    printed = capsys.readouterr().out
    assert f"theirs.jsonl:1: duplicate of base section {ours[0].id}; dropped" in printed
    assert f"theirs.jsonl:2: near duplicate of base section {ours[1].id}" in printed
    manifest = read_manifest(resolve(out))
    assert [Path(d["file"]).name for d in manifest["data"]] == ["small.jsonl", "theirs.jsonl"]
    assert manifest["data"][1]["sections"] == 2


def test_each_run_is_a_new_version_behind_a_pointer(models: Path, small: Path) -> None:
    versions = sorted(p.name for p in models.iterdir() if p.is_dir())
    assert len(versions) == 2
    current = (models / POINTER_FILE).read_text().strip()
    assert current in versions
    assert read_manifest(models / current)["seed"] == 2
    args = [
        "--data",
        str(small),
        "--out",
        str(models),
        "--no-report",
        "--no-publish",
        "--seed",
        "3",
    ]
    assert train.main(args) == 0
    assert (models / POINTER_FILE).read_text().strip() == current
    assert len([p for p in models.iterdir() if p.is_dir()]) == 3


def test_an_artifact_in_use_is_not_overwritten_without_force(
    models: Path, small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    in_use = tmp_path / "in-use"
    shutil.copytree(resolve(models), in_use)
    before = (in_use / MANIFEST_FILE).read_text()
    args = ["--data", str(small), "--out", str(in_use), "--no-report"]
    assert train.main(args) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (in_use / MANIFEST_FILE).read_text() == before
    assert train.main([*args, "--force"]) == 0
    assert (in_use / MANIFEST_FILE).read_text() != before


def test_manifest_records_data_config_code_and_scores(models: Path) -> None:
    manifest = read_manifest(resolve(models))
    assert manifest["version"].startswith(manifest["dataset_sha256"][:12])
    assert len(manifest["data"][0]["sha256"]) == 64
    assert len(manifest["taxonomy_sha256"]) == 64
    assert manifest["config"]["seed"] == 2
    assert "topics" in manifest["config"] and "stances" in manifest["config"]
    assert manifest["code"]["package"]
    assert "held_out" in manifest["metrics"]


def test_evaluate_compares_two_models_on_a_labeled_file(models: Path, small: Path) -> None:
    versions = sorted(p for p in models.iterdir() if p.is_dir())
    done = run_cli(
        "evaluate", "--model", str(versions[0]), "--data", str(small / "small.jsonl"),
        "--compare", str(versions[1]),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[1]
    assert versions[0].name in header and versions[1].name in header
    assert "| topics macro_f1 |" in done.stdout and "| stances f_avg |" in done.stdout
    assert "| topics F1 `minerals`" in done.stdout


def test_evaluate_names_bad_records(models: Path, tmp_path: Path) -> None:
    records = [
        {
            "id": "x",
            "basis": "invented",
            "text": "The weather stayed mild all week long.",
            "topics": ["nope"],
            "stances": {},
        },
        {
            "id": "y",
            "basis": "invented",
            "text": "Kyiv waited for news from the talks.",
            "topics": [],
            "stances": {},
        },
    ]
    bad = write_jsonl(tmp_path / "bad.jsonl", records)
    done = run_cli("evaluate", "--model", str(models), "--data", str(bad))
    assert done.returncode == 1
    assert "bad.jsonl:1: topics: unknown label 'nope'" in done.stderr
    assert "bad.jsonl:2: stances: 'ukraine' is mentioned (Kyiv) but has no stance" in done.stderr


def test_suggest_writes_the_least_certain_sections_ready_to_label(
    models: Path, small: Path, tmp_path: Path
) -> None:
    unlabeled = tmp_path / "unlabeled.txt"
    texts = [s.text for s in load_corpus(small).sections[:40]]
    unlabeled.write_text("\n\n".join(texts))
    out = tmp_path / "to_label.jsonl"
    done = run_cli(
        "suggest",
        "--model",
        str(models),
        "--unlabeled",
        str(unlabeled),
        "-n",
        "5",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 5
    for record in records:
        assert set(record) >= {"id", "text", "topics", "stances"}
        assert record["text"] in texts
    assert "5 of 40 sections, least sure first" in done.stderr
    values = [
        float(line.split("uncertainty ")[1].split()[0]) for line in done.stderr.splitlines()[1:]
    ]
    assert values == sorted(values, reverse=True)


def test_no_label_is_named_in_the_service_or_the_proto() -> None:
    """Label sets are data: the server code and the contract name none of them."""
    taxonomy = load_corpus(DATA).taxonomy
    labels = [*taxonomy.topics, taxonomy.none_topic, *taxonomy.stances, *taxonomy.actors]
    sources = [*(REPO / "service").glob("*.py"), REPO / "proto/topicstance/v1/topicstance.proto"]
    for source in sources:
        text = source.read_text()
        for label in labels:
            for quoted in (f'"{label}"', f"'{label}'", f"`{label}`"):
                assert quoted not in text, f"{source.name} names the label {label!r}"
