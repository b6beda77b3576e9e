"""The front page and the docs stay true: their links resolve, and the README's tour
runs as written against a served model."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.serving import REPO, ServerProcess
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "training/data/README.md"]
DOCUMENTED_TARGET = "127.0.0.1:50051"
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
_BLOCK = re.compile(r"```(sh|python)\n(.*?)```", re.S)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_resolves(page: Path) -> None:
    broken = []
    for match in _LINK.finditer(page.read_text(encoding="utf-8")):
        target = match.group(1) or match.group(2)
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert not broken, f"{page.name}: {broken}"


def test_readme_is_a_front_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    two_commands = text.index("## Two commands")
    assert text.index("make serve") > two_commands and text.index("make test") > two_commands


def tour() -> tuple[list[str], list[str]]:
    """The shell lines and Python blocks of the README's one-minute tour."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## A one-minute tour") : text.index("## Documentation")]
    lines: list[str] = []
    blocks: list[str] = []
    for kind, body in _BLOCK.findall(section):
        if kind == "python":
            blocks.append(body)
        else:
            lines += [line for line in body.splitlines() if line.strip()]
    return lines, blocks


def run_shell(line: str, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line.replace(DOCUMENTED_TARGET, target)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TOPICSTANCE_TARGET": target},
        check=False,
    )


def test_the_tour_covers_the_cli_grpcurl_python_and_node() -> None:
    lines, blocks = tour()
    assert any(line.startswith(".venv/bin/topicstance classify") for line in lines)
    assert any(line.startswith("grpcurl ") for line in lines)
    assert any("node examples/node/" in line for line in lines)
    assert len(blocks) == 1 and len(blocks[0].strip().splitlines()) <= 10


def test_the_cli_lines_of_the_tour_run(server: ServerProcess) -> None:
    lines, _ = tour()
    for line in (line for line in lines if line.startswith(".venv/bin/topicstance")):
        done = run_shell(line, server.target)
        assert done.returncode == 0, f"{line}: {done.stderr}"
        assert done.stderr == "", f"{line}: {done.stderr}"
        assert done.stdout.strip(), line
        if " classify " in line and "--json" not in line:
            rows = [row for row in done.stdout.splitlines() if row[:3].strip().isdigit()]
            assert [row.split()[0] for row in rows] == ["1", "2", "3", "4"], line


def test_the_python_client_of_the_tour_runs(server: ServerProcess) -> None:
    (block,) = tour()[1]
    done = subprocess.run(
        [sys.executable, "-c", block.replace(DOCUMENTED_TARGET, server.target)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()
    assert len(rows) == 4 and rows[0].startswith("(lede) territory {")


def test_the_node_client_of_the_tour_runs(server: ServerProcess) -> None:
    (line,) = [line for line in tour()[0] if "node examples/node/" in line]
    install, _, command = line.partition(" && ")
    assert install == "npm ci"  # `make test` has run it; the test must not reinstall
    if not (REPO / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("node_modules is missing: run `make test`, which installs it")
    done = run_shell(command, server.target)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["sections"]) == 4


def test_the_grpcurl_lines_of_the_tour_work(server: ServerProcess) -> None:
    """With grpcurl installed the lines run as written; without it (these build
    machines have none), what they rely on is checked: reflection lists the service,
    and the request body is a valid ClassifyTextRequest the server answers."""
    lines = [line for line in tour()[0] if line.startswith("grpcurl ")]
    if shutil.which("grpcurl"):
        for line in lines:
            done = run_shell(line, server.target)
            assert done.returncode == 0, done.stderr
        return
    with grpc.insecure_channel(server.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        services = {s.name for s in answer.list_services_response.service}
        assert "topicstance.v1.TopicStanceService" in services
        (call,) = [line for line in lines if " -d " in line]
        body = re.search(r"-d '([^']*)'", call)
        assert body is not None and call.endswith("TopicStanceService/ClassifyText")
        message = json_format.Parse(body.group(1), pb.ClassifyTextRequest())
        reply = pb_grpc.TopicStanceServiceStub(channel).ClassifyText(message, timeout=10)
        assert reply.result.primary_topic == "strikes"
