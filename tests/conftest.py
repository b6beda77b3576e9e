"""Shared fixtures: one model trained on the committed corpus, one live server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.serving import REPO, ServerProcess, start_server
from topicstance.bundle import resolve
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

DATA = REPO / "training" / "data"
TRAIN_LIMIT_SECONDS = 1500
FIXTURES = REPO / "tests" / "fixtures"


def copy_taxonomy(directory: Path) -> None:
    """The default taxonomy with its language files, as an analyst would copy it."""
    shutil.copy(DATA / "taxonomy.toml", directory / "taxonomy.toml")
    shutil.copytree(DATA / "languages", directory / "languages", dirs_exist_ok=True)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model, trained once per test session from the committed corpus.

    In a process of its own, under a limit of its own: its cross-validation takes
    several minutes on two busy cores, more than the 300 s one test may take (and
    fixtures do not count against that: `timeout_func_only`).
    TOPICSTANCE_TEST_MODEL names an already trained model instead (to iterate faster).
    """
    given = os.environ.get("TOPICSTANCE_TEST_MODEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("model")
    command = [sys.executable, "training/train.py", "--data", str(DATA), "--out", str(out)]
    done = subprocess.run(
        [*command, "--no-report"], cwd=REPO, capture_output=True, text=True,
        timeout=TRAIN_LIMIT_SECONDS, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return resolve(out)


@pytest.fixture(scope="session")
def server(model_dir: Path) -> Iterator[ServerProcess]:
    running = start_server(model_dir, ["--workers", "1"])
    yield running
    assert running.stop() == 0


@pytest.fixture
def stub(server: ServerProcess) -> Iterator[pb_grpc.TopicStanceServiceStub]:
    with grpc.insecure_channel(server.target) as channel:
        yield pb_grpc.TopicStanceServiceStub(channel)
