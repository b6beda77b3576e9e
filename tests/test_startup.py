"""Starting without a usable model, and settings from flags and environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service.config import parse_settings
from tests.serving import REPO


def test_missing_model_exits_nonzero_with_a_clear_message(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service.server", "--model", str(tmp_path / "none"), "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "manifest.json is missing" in done.stderr
    assert "Traceback" not in done.stderr


def test_flags_win_over_environment_over_defaults() -> None:
    env = {"TOPICSTANCE_PORT": "6000", "TOPICSTANCE_WORKERS": "3", "TOPICSTANCE_LOG_LEVEL": "DEBUG"}
    settings = parse_settings(["--port", "7000"], env)
    assert (settings.port, settings.workers, settings.log_level) == (7000, 3, "DEBUG")
    assert parse_settings([], {}).port == 50051


def test_bad_environment_value_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings([], {"TOPICSTANCE_WORKERS": "many"})
    assert "TOPICSTANCE_WORKERS='many': expected int" in capsys.readouterr().err


def make_serve_plan(model: Path) -> str:
    """What `make serve` would run for this model path, without running it."""
    done = subprocess.run(
        ["make", "-n", "serve", f"TOPICSTANCE_MODEL={model}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_make_serve_serves_an_artifact_directory_as_it_is(model_dir: Path) -> None:
    plan = make_serve_plan(model_dir)
    assert "train.py" not in plan
    assert f"TOPICSTANCE_MODEL={model_dir} exec .venv/bin/topicstance-server" in plan


def test_make_serve_builds_a_missing_model_for_serving_only(tmp_path: Path) -> None:
    plan = make_serve_plan(tmp_path / "new")
    assert f"training/train.py --data training/data --out {tmp_path / 'new'} --serving-only" in plan
