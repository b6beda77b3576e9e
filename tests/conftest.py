"""Shared fixtures: one model trained on the committed corpus, one live server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.serving import REPO, ServerProcess, start_server
from topicstance.bundle import resolve
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc
from training import train

DATA = REPO / "training" / "data"
FIXTURES = REPO / "tests" / "fixtures"


def copy_taxonomy(directory: Path) -> None:
    """The default taxonomy with its language files, as an analyst would copy it."""
    shutil.copy(DATA / "taxonomy.toml", directory / "taxonomy.toml")
    shutil.copytree(DATA / "languages", directory / "languages", dirs_exist_ok=True)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model, trained once per test session from the committed corpus.

    TOPICSTANCE_TEST_MODEL names an already trained model instead (to iterate faster).
    """
    given = os.environ.get("TOPICSTANCE_TEST_MODEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("model")
    assert train.main(["--data", str(DATA), "--out", str(out), "--no-report"]) == 0
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
