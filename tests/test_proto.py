"""The generated stubs are exactly what `make proto` produces from the .proto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.serving import REPO

GENERATED = ["topicstance_pb2.py", "topicstance_pb2.pyi", "topicstance_pb2_grpc.py"]


def test_stubs_are_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            "proto",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            "proto/topicstance/v1/topicstance.proto",
        ],
        cwd=REPO,
        check=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / "topicstance" / "v1" / name).read_text()
        committed = (REPO / "topicstance" / "v1" / name).read_text()
        assert fresh == committed, f"topicstance/v1/{name} is stale: run `make proto`"
