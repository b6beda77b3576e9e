"""The `topicstance` client end to end, against the live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import FIXTURES
from tests.serving import REPO, ServerProcess

ARTICLE = FIXTURES / "article.txt"


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client.main", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_classify_prints_one_row_per_section(server: ServerProcess) -> None:
    done = run_cli("classify", str(ARTICLE), "--target", server.target)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.strip().splitlines()
    assert "primary" in header and "stances" in header
    assert len(rows) == 4
    assert [row.split()[0] for row in rows] == ["1", "2", "3", "4"]
    assert "territory" in rows[0] and "ukraine:" in rows[0]
    assert "Drones Hit the Power Grid in Odesa" in rows[1] and "strikes" in rows[1]


def test_a_section_in_a_language_without_data_says_why_it_was_not_read(
    server: ServerProcess,
) -> None:
    polish = REPO / "training" / "examples" / "polish" / "article.txt"
    done = run_cli("classify", str(polish), "--target", server.target)
    assert done.returncode == 0, done.stderr
    rows = done.stdout.strip().splitlines()[1:]
    assert rows and all("not read: the model has no pl data" in row for row in rows)


def test_classify_json_from_stdin(server: ServerProcess) -> None:
    done = run_cli("classify", "-", "--json", "--target", server.target, stdin=ARTICLE.read_text())
    assert done.returncode == 0, done.stderr
    sections = json.loads(done.stdout)["sections"]
    assert [s["primary_topic"] for s in sections] == [
        "territory",
        "strikes",
        "us_policy",
        "minerals",
    ]


def test_explain_prints_the_terms_behind_each_row(server: ServerProcess) -> None:
    done = run_cli("classify", str(ARTICLE), "--explain", "--target", server.target)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    why = [line.strip() for line in lines if line.strip().startswith("why ")]
    assert any(line.startswith("why territory: ") for line in why)
    assert any(line.startswith("why ukraine ") for line in why)
    assert all("(" in line for line in why)


def test_info_names_the_model_in_use_and_its_labels(server: ServerProcess) -> None:
    done = run_cli("info", "--target", server.target)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(maxsplit=1) for line in done.stdout.strip().splitlines())
    as_json = json.loads(run_cli("info", "--json", "--target", server.target).stdout)
    assert lines["model"].startswith(as_json["model_version"] + "  (created ")
    assert lines["actors"] == ", ".join(as_json["actors"])
    assert "topics.macro_f1 0." in lines["held-out"]


def test_unreachable_server_is_a_clear_error() -> None:
    done = run_cli("classify", str(ARTICLE), "--target", "127.0.0.1:1")
    assert done.returncode == 1
    assert done.stderr.startswith("topicstance: UNAVAILABLE")
    assert "Traceback" not in done.stderr


def test_unreadable_file_is_a_clear_error() -> None:
    done = run_cli("classify", "/no/such/file.txt")
    assert done.returncode == 1 and "cannot read /no/such/file.txt" in done.stderr


def test_json_prints_zero_valued_fields(server: ServerProcess) -> None:
    done = run_cli("classify", "-", "--json", "--target", server.target, stdin="Kyiv said so.")
    assert done.returncode == 0, done.stderr
    (section,) = json.loads(done.stdout)["sections"]
    assert section["start"] == 0 and section["heading"] == ""
    (mention,) = section["stances"][0]["mentions"]
    assert mention == {"start": 0, "end": 4, "text": "Kyiv", "in_heading": False}


def test_a_closed_pipe_ends_the_command_quietly(server: ServerProcess) -> None:
    command = [sys.executable, "-m", "client.main", "classify", "-", "--json"]
    writer = subprocess.Popen(
        [*command, "--target", server.target],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdin is not None and writer.stdout is not None and writer.stderr is not None
    # Far more JSON than a pipe holds, so the writer is still writing when the pipe closes.
    writer.stdin.write("\n\n".join([ARTICLE.read_text()] * 40).encode())
    writer.stdin.close()
    writer.stdout.readline()
    writer.stdout.close()  # what `| head -n 1` does once it has its line
    assert writer.wait(timeout=60) == 141
    assert writer.stderr.read() == b""


def test_write_errors_and_read_errors_say_which(server: ServerProcess) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "client.main", "classify", str(ARTICLE)],
            cwd=REPO,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TOPICSTANCE_TARGET": server.target},
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.strip() == "topicstance: cannot write the output: No space left on device"
    unreadable = run_cli("classify", "/no/such/file.txt")
    assert unreadable.stderr.strip() == (
        "topicstance: cannot read /no/such/file.txt: No such file or directory"
    )
