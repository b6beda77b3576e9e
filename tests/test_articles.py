"""Real articles through a real server: the fixtures scored against the served model,
languages, offsets, and bad HTML answered with the right code while serving goes on."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scoring import Fixture, ReadSection, norm, parts_text, score
from tests.serving import REPO, ServerProcess, start_server
from tests.test_hardening import expect_error, still_serving
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

Stub = Any
UKRAINIAN = (
    "Уночі російська армія атакувала Одесу ударними дронами. Уламки пошкодили склади "
    "в порту та кілька приватних будинків, повідомила обласна адміністрація."
)
FORMATS = {
    "html": pb.DOCUMENT_FORMAT_HTML,
    "plain_text": pb.DOCUMENT_FORMAT_PLAIN_TEXT,
    "markdown": pb.DOCUMENT_FORMAT_MARKDOWN,
}


def served_reading(stub: Stub) -> Callable[[Fixture], tuple[str, list[ReadSection]]]:
    def read(fixture: Fixture) -> tuple[str, list[ReadSection]]:
        response = stub.ClassifyDocument(pb.ClassifyDocumentRequest(text=fixture.text), timeout=60)
        check_offsets(response)
        return response.title, [
            ReadSection(
                norm(s.heading),
                parts_text(response.text, [(p.start, p.end) for p in s.parts]),
                s.primary_topic,
                s.unsupported_language,
            )
            for s in response.sections
        ]

    return read


def check_offsets(response: pb.ClassifyDocumentResponse) -> None:
    text = response.text
    skipped = [(s.start, s.end) for s in response.skipped]
    assert all(0 <= a < b <= len(text) for a, b in skipped)
    for section in response.sections:
        parts = [(p.start, p.end) for p in section.parts]
        assert parts == sorted(parts) and parts
        assert parts[0][0] == section.start and parts[-1][1] == section.end
        for start, end in parts:
            assert section.start <= start < end <= section.end <= len(text)
            assert all(end <= a or b <= start for a, b in skipped)
        for stance in section.stances:
            for mention in stance.mentions:
                assert text[mention.start : mention.end] == mention.text


def test_the_fixtures_through_the_served_model(stub: Stub) -> None:
    info = stub.GetModelInfo(pb.GetModelInfoRequest())
    result = score(served_reading(stub), tuple(info.languages))
    print(result.summary())
    assert result.f1 >= 0.95, result.problems
    assert result.leak_rate <= 0.01, result.problems
    assert result.titles == result.documents, result.problems
    assert result.primary_accuracy >= 0.9, result.problems
    assert result.unsupported_right == result.unsupported_total, result.problems


def test_languages_come_from_the_model_and_unknown_ones_get_no_guess(stub: Stub) -> None:
    info = stub.GetModelInfo(pb.GetModelInfoRequest())
    assert "en" in info.languages
    assert info.limits["max_html_chars"] > 0 and info.limits["max_html_depth"] > 0
    english = stub.ClassifyText(
        pb.ClassifyTextRequest(text="Russian drones hit the port of Odesa overnight.")
    ).result
    assert english.language == "en" and not english.unsupported_language
    short = stub.ClassifyText(pb.ClassifyTextRequest(text="Kyiv said so.")).result
    assert not short.unsupported_language and short.stances
    other = stub.ClassifyText(pb.ClassifyTextRequest(text=UKRAINIAN)).result
    assert other.language == "uk"
    if "uk" not in info.languages:
        assert other.unsupported_language
        assert other.primary_topic == info.none_topic and not other.topics
        assert not other.stances


def test_format_is_given_or_detected(stub: Stub) -> None:
    html = (
        "<html><body><article><h1>Drones over Odesa</h1><p>Russian drones hit the port "
        "of Odesa overnight, officials said.</p></article></body></html>"
    )
    detected = stub.ClassifyDocument(pb.ClassifyDocumentRequest(text=html))
    assert detected.title == "Drones over Odesa" and detected.text.startswith("# Drones")
    as_text = stub.ClassifyDocument(
        pb.ClassifyDocumentRequest(text=html, format=pb.DOCUMENT_FORMAT_PLAIN_TEXT)
    )
    assert as_text.text == html


@pytest.fixture(scope="module")
def html_limited(model_dir: Path) -> Iterator[ServerProcess]:
    running = start_server(model_dir, ["--workers", "1", "--max-html-chars", "2000000"])
    yield running
    assert running.stop() == 0


@pytest.fixture
def html_stub(html_limited: ServerProcess) -> Iterator[Stub]:
    with grpc.insecure_channel(html_limited.target) as channel:
        yield pb_grpc.TopicStanceServiceStub(channel)


def html_request(text: str) -> pb.ClassifyDocumentRequest:
    return pb.ClassifyDocumentRequest(text=text, format=pb.DOCUMENT_FORMAT_HTML)


BAD_HTML = [
    (
        "10 MB of HTML",
        "<html><body>" + "<p>Russian drones hit Odesa overnight.</p>" * 260_000 + "</body></html>",
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        ("characters of HTML", "the limit is 2000000 (max_html_chars)"),
    ),
    (
        "10,000 nested elements",
        "<html><body>" + "<div>" * 10_000 + "<p>Deep text.</p>" + "</div>" * 10_000,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        ("nests HTML elements 10000 deep", "the limit is 200 (max_html_depth)"),
    ),
    (
        "only scripts",
        "<html><head>" + "<script>var x = 'Kyiv';</script>" * 50 + "</head><body></body></html>",
        grpc.StatusCode.INVALID_ARGUMENT,
        ("holds no article body",),
    ),
    (
        "binary junk",
        "<html>" + "".join(chr(i % 32) for i in range(5000)) + "x</html>",
        grpc.StatusCode.INVALID_ARGUMENT,
        ("is not HTML", "control characters"),
    ),
    (
        "empty body",
        "<!doctype html><html><head><title>Nothing</title></head><body></body></html>",
        grpc.StatusCode.INVALID_ARGUMENT,
        ("holds no article body",),
    ),
]


@pytest.mark.parametrize("case", BAD_HTML, ids=[c[0] for c in BAD_HTML])
def test_bad_html_gets_a_named_error_and_the_server_keeps_serving(
    html_stub: Stub, case: tuple[str, str, grpc.StatusCode, tuple[str, ...]]
) -> None:
    _, page, code, parts = case
    expect_error(lambda: html_stub.ClassifyDocument(html_request(page), timeout=60), code,
                 "text", *parts)  # fmt: skip
    still_serving(html_stub)


def test_an_unknown_format_value_is_invalid(stub: Stub) -> None:
    request = pb.ClassifyDocumentRequest(text="Kyiv said so.")
    request.format = 9  # type: ignore[assignment]  # a value from a newer client
    expect_error(lambda: stub.ClassifyDocument(request), grpc.StatusCode.INVALID_ARGUMENT,
                 "format", "has no value 9")  # fmt: skip


PIECES = st.sampled_from(
    [
        "Russian drones hit the port of Odesa overnight, officials in Kyiv said.",
        "Advertisement",
        "Share",
        "Read more: Washington weighs new aid",
        "Grain and Power",
        "14:05",
        "## Talks in Geneva",
        "Photo: Oleh Marchenko/Meridian",
        "<p>A paragraph in HTML about Kharkiv.</p>",
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(PIECES, min_size=1, max_size=15), st.sampled_from(["\n", "\n\n"]))
def test_any_document_answers_with_consistent_offsets(
    stub: Stub, pieces: list[str], newline: str
) -> None:
    try:
        response = stub.ClassifyDocument(
            pb.ClassifyDocumentRequest(text=newline.join(pieces)), timeout=30
        )
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        return
    check_offsets(response)


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client.main", *args],
        cwd=REPO, input=stdin, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_cli_classifies_files_directories_and_json_lines(
    server: ServerProcess, tmp_path: Path
) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    documents = REPO / "tests" / "fixtures" / "documents"
    for name in (
        "01-wire-kharkiv.html",
        "19-wire-zaporizhzhia.txt",
        "45-telegram-kharkiv-monitor.md",
    ):
        (pages / name).write_bytes((documents / name).read_bytes())
    (pages / "cp1251.txt").write_bytes(
        "Російські дрони атакували Харків уночі, повідомила міська влада.".encode("cp1251")
    )
    (pages / "junk.txt").write_bytes(bytes(range(256)) * 20)
    lines = tmp_path / "input.jsonl"
    lines.write_text(
        json.dumps({"id": "a", "text": "Russian drones hit Odesa overnight, officials said."})
        + "\n"
        + json.dumps({"id": "b", "text": "<p>Kyiv</p>", "format": "html"})
        + "\n"
    )
    done = run_cli("classify", str(pages), "--jsonl", str(lines), "--target", server.target)
    assert done.returncode == 1, done.stderr  # the junk file and the empty page fail
    results = {r["id"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert results["a"]["result"]["sections"][0]["primary_topic"] == "strikes"
    assert results["b"]["error"]["code"] == "INVALID_ARGUMENT"
    html = results[str(pages / "01-wire-kharkiv.html")]["result"]
    assert html["title"].startswith("Glide bombs wreck Kharkiv tram depot")
    assert "Sign in" not in html["text"]
    assert results[str(pages / "cp1251.txt")]["result"]["sections"]
    assert "not text in UTF-8" in results[str(pages / "junk.txt")]["error"]["message"]
    assert "classified 5 of 7 inputs; 2 failed" in done.stderr
    single = run_cli("classify", str(pages / "01-wire-kharkiv.html"), "--target", server.target)
    assert single.returncode == 0, single.stderr
    assert single.stdout.startswith("title: Glide bombs wreck Kharkiv tram depot")
