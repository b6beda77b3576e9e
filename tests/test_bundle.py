"""The artifact: hash checked before unpickling, versions checked, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from topicstance.bundle import (
    ARTIFACT_FILE,
    MANIFEST_FILE,
    ArtifactError,
    load_bundle,
    verify_artifact,
)


@pytest.fixture
def copy(model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    return target


def test_manifest_describes_the_artifact(model_dir: Path) -> None:
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    for key in (
        "version",
        "created",
        "artifact_sha256",
        "dataset_sha256",
        "topics",
        "actors",
        "stances",
        "thresholds",
        "metrics",
        "library_versions",
    ):
        assert key in manifest
    assert set(manifest["library_versions"]) >= {"python", "scikit-learn", "joblib"}
    assert (model_dir / "metrics.json").is_file()


def test_loaded_bundle_predicts(model_dir: Path) -> None:
    bundle = load_bundle(model_dir)
    (prediction,) = bundle.predict(["Russian drones struck a power plant near Kyiv overnight."])
    assert prediction.primary_topic == "strikes"
    assert [s.actor for s in prediction.stances] == ["russia", "ukraine"]


def test_tampered_artifact_is_refused_before_unpickling(copy: Path) -> None:
    data = bytearray((copy / ARTIFACT_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / ARTIFACT_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match its manifest"):
        load_bundle(copy)


def test_truncated_artifact_is_refused(copy: Path) -> None:
    path = copy / ARTIFACT_FILE
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match="does not match its manifest"):
        verify_artifact(copy)


def test_missing_pieces_are_named(copy: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"manifest\.json is missing"):
        load_bundle(tmp_path / "nowhere")
    (copy / ARTIFACT_FILE).unlink()
    with pytest.raises(ArtifactError, match=r"model\.joblib is missing"):
        load_bundle(copy)


def test_other_scikit_learn_version_is_refused(copy: Path) -> None:
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    manifest["library_versions"]["scikit-learn"] = "0.24.2"
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"trained with scikit-learn 0\.24\.2"):
        load_bundle(copy)


def test_an_artifact_of_an_older_format_is_refused_with_a_way_out(copy: Path) -> None:
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    (copy / MANIFEST_FILE).write_text(json.dumps({**manifest, "format_version": 1}))
    with pytest.raises(ArtifactError, match=r"artifact format 1 .* retrain the model"):
        load_bundle(copy)
