"""A Node.js client that loads only the .proto can call ClassifyDocument."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.conftest import FIXTURES
from tests.serving import REPO, ServerProcess


def test_node_client_classifies_a_document(server: ServerProcess) -> None:
    node = shutil.which("node")
    if node is None or not (REPO / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("node and `npm ci` are required: run `make test`, which installs them")
    done = subprocess.run(
        [node, "examples/node/classify_document.js", str(FIXTURES / "article.txt"), server.target],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    sections = json.loads(done.stdout)["sections"]
    assert [s["primary_topic"] for s in sections] == [
        "territory",
        "strikes",
        "us_policy",
        "minerals",
    ]
    assert sections[1]["heading"] == "Drones Hit the Power Grid in Odesa"
