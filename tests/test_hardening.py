"""Hardening: bad input, deadlines, signals, reloads, integrity, TLS, metrics and logs.

Every case talks to a real server process over a real channel and checks the
status code and the message, then that the server still serves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from service.config import parse_settings
from tests.certs import make_pki
from tests.serving import REPO, ServerProcess, open_channel, start_server
from topicstance.bundle import MANIFEST_FILE, SIGNATURE_FILE, publish
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

PARAGRAPH = (
    "Russian drones struck the power grid near Odesa overnight, and Kyiv asked Washington "
    "for more air defence systems as repair crews worked through the morning."
)
LONG_TEXT = " ".join([PARAGRAPH] * 110)  # about 18,000 characters
Stub = Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    """Every sample of the metrics endpoint, keyed by name and sorted labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "pid")
            key = f"{sample.name}{{{labels}}}"
            samples[key] = samples.get(key, 0.0) + sample.value
    return samples


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def limited(model_dir: Path, metrics_port: int) -> Iterator[ServerProcess]:
    """A server with small limits, metrics and per-call logs."""
    args = [
        "--workers", "1", "--max-text-chars", "20000", "--max-batch-texts", "8",
        "--max-message-bytes", "100000", "--max-sections", "50", "--max-document-chars", "60000",
        "--max-batch-sections", "4", "--metrics-port", str(metrics_port), "--log-level", "DEBUG",
    ]  # fmt: skip
    running = start_server(model_dir, args)
    yield running
    assert running.stop() == 0


@pytest.fixture
def limited_stub(limited: ServerProcess) -> Iterator[Stub]:
    with grpc.insecure_channel(limited.target) as channel:
        yield pb_grpc.TopicStanceServiceStub(channel)


def expect_error(call: Callable[[], object], code: grpc.StatusCode, field: str, *parts: str) -> str:
    """The call fails with `code`; its message and BadRequest detail name the field."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    assert error.code() == code, error.details()
    assert error.details().startswith(f"{field}: "), error.details()
    for part in parts:
        assert part in error.details()
    assert "Traceback" not in error.details()
    status = rpc_status.from_call(error)
    assert status is not None
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    assert detail.field_violations[0].field == field
    return str(error.details())


def still_serving(stub: Stub) -> None:
    result = stub.ClassifyText(pb.ClassifyTextRequest(text=PARAGRAPH), timeout=30).result
    assert result.primary_topic == "strikes"


BadCase = tuple[str, Callable[[Stub], object], grpc.StatusCode, str, tuple[str, ...]]
BAD_INPUT: list[BadCase] = [
    (
        "text over the size limit",
        lambda s: s.ClassifyText(pb.ClassifyTextRequest(text="word " * 4001)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "text",
        ("20005 characters", "limit is 20000"),
    ),
    (
        "heading over the size limit",
        lambda s: s.ClassifyText(pb.ClassifyTextRequest(text=PARAGRAPH, heading="h" * 20001)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "heading",
        ("limit is 20000",),
    ),
    (
        "heading on two lines",
        lambda s: s.ClassifyText(pb.ClassifyTextRequest(text=PARAGRAPH, heading="a\nb")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "heading",
        ("single line",),
    ),
    (
        "batch over the count limit",
        lambda s: s.BatchClassifyTexts(pb.BatchClassifyTextsRequest(texts=[PARAGRAPH] * 9)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "texts",
        ("holds 9 texts", "limit is 8"),
    ),
    (
        "empty text inside a batch",
        lambda s: s.BatchClassifyTexts(
            pb.BatchClassifyTextsRequest(texts=[PARAGRAPH, "", PARAGRAPH])
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "texts[1]",
        ("at least one letter or digit",),
    ),
    (
        "whitespace-only text",
        lambda s: s.ClassifyText(pb.ClassifyTextRequest(text=" \t\n\u2003 ")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "text",
        ("at least one letter or digit",),
    ),
    (
        "text with no letters",
        lambda s: s.ClassifyText(pb.ClassifyTextRequest(text="!!! ... ??? — ***")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "text",
        ("at least one letter or digit",),
    ),
    (
        "document over the size limit",
        lambda s: s.ClassifyDocument(pb.ClassifyDocumentRequest(text="word " * 12001)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "text",
        ("limit is 60000",),
    ),
    (
        "document with too many headings",
        lambda s: s.ClassifyDocument(
            pb.ClassifyDocumentRequest(
                text="".join(f"## Part {i}\nSome text {i}.\n" for i in range(60))
            )
        ),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "text",
        ("splits into 60 sections", "limit is 50"),
    ),
    (
        "request over the message-size limit",
        lambda s: s.BatchClassifyTexts(pb.BatchClassifyTextsRequest(texts=[LONG_TEXT[:19000]] * 6)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "request",
        ("limit is 100000 (max_message_bytes)",),
    ),
]


@pytest.mark.parametrize("case", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_gets_a_named_error_and_the_server_keeps_serving(
    limited_stub: Stub,
    case: tuple[str, Callable[[Stub], object], grpc.StatusCode, str, tuple[str, ...]],
) -> None:
    _, call, code, field, parts = case
    expect_error(lambda: call(limited_stub), code, field, *parts)
    still_serving(limited_stub)


def raw_call(target: str, method: str, payload: bytes, response: Any) -> Any:
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            f"/topicstance.v1.TopicStanceService/{method}",
            request_serializer=lambda data: data,
            response_deserializer=response.FromString,
        )
        return call(payload, timeout=10)


def string_field(number: int, value: bytes) -> bytes:
    return bytes([number << 3 | 2, len(value)]) + value


def test_invalid_utf8_on_the_wire_is_invalid_argument(
    limited: ServerProcess, limited_stub: Stub
) -> None:
    bad = b"Kyiv \xff\xfe said"
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    single = string_field(1, bad)
    expect_error(
        lambda: raw_call(limited.target, "ClassifyText", single, pb.ClassifyTextResponse),
        invalid,
        "text",
        "not valid UTF-8",
    )
    batch = string_field(1, b"A fine text about Kyiv.") + string_field(1, bad)
    expect_error(
        lambda: raw_call(
            limited.target, "BatchClassifyTexts", batch, pb.BatchClassifyTextsResponse
        ),
        invalid,
        "texts[1]",
        "not valid UTF-8",
    )
    still_serving(limited_stub)


def test_grossly_oversized_message_is_resource_exhausted(limited_stub: Stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        limited_stub.ClassifyDocument(pb.ClassifyDocumentRequest(text="x" * 400_000))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    still_serving(limited_stub)


ODD_BUT_VALID = [
    "Control\x00characters\x07in\x1b the text: Russian drones hit Kharkiv.\x0c",
    "Emoji 🚀🇺🇦 and right-to-left: مرحبا בעולם — Kyiv thanked Washington 🙏.",
    LONG_TEXT[:19000],
    "2024 2025 123 456",
    "Zelenskyy\u200b met Trump\u00a0in Washington; Putin was not there.",
]


@pytest.mark.parametrize(
    "text", ODD_BUT_VALID, ids=["control", "emoji-rtl", "long-line", "digits", "zero-width"]
)
def test_odd_but_valid_text_gets_a_correct_result(limited_stub: Stub, text: str) -> None:
    result = limited_stub.ClassifyText(pb.ClassifyTextRequest(text=text), timeout=30).result
    assert result.primary_topic in {"territory", "strikes", "us_policy", "minerals", "other"}
    assert (result.start, result.end) == (0, len(text))
    for stance in result.stances:
        for mention in stance.mentions:
            assert text[mention.start : mention.end] == mention.text


def test_ten_thousand_headings_are_refused_by_the_section_limit(stub: Stub) -> None:
    document = "".join(f"## Heading {i}\nA line under it.\n" for i in range(10_000))
    expect_error(
        lambda: stub.ClassifyDocument(pb.ClassifyDocumentRequest(text=document)),
        grpc.StatusCode.RESOURCE_EXHAUSTED, "text", "10000 sections", "limit is 2000",
    )  # fmt: skip
    still_serving(stub)


UNICODE = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=400)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=UNICODE)
def test_any_unicode_document_gets_a_result_or_invalid_argument(
    limited_stub: Stub, text: str
) -> None:
    try:
        response = limited_stub.ClassifyDocument(pb.ClassifyDocumentRequest(text=text), timeout=30)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert not any(ch.isalnum() for ch in text)
        return
    for section in response.sections:
        assert 0 <= section.start <= section.end <= len(text)
        for stance in section.stances:
            for mention in stance.mentions:
                assert text[mention.start : mention.end] == mention.text


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=UNICODE,
    heading=st.text(
        alphabet=st.characters(blacklist_categories=["Cs", "Zl", "Zp", "Cc"]), max_size=40
    ),
)
def test_any_unicode_text_and_heading(limited_stub: Stub, text: str, heading: str) -> None:
    try:
        result = limited_stub.ClassifyText(
            pb.ClassifyTextRequest(text=text, heading=heading), timeout=30
        ).result
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        return
    for stance in result.stances:
        for mention in stance.mentions:
            source = heading if mention.in_heading else text
            assert source[mention.start : mention.end] == mention.text


def test_deadline_stops_the_work(
    limited: ServerProcess, limited_stub: Stub, metrics_port: int
) -> None:
    before = scrape(metrics_port)
    texts = [LONG_TEXT[:15000]] * 8  # two chunks of four (--max-batch-sections 4)
    with pytest.raises(grpc.RpcError) as caught:
        limited_stub.BatchClassifyTexts(pb.BatchClassifyTextsRequest(texts=texts[:6]), timeout=0.05)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    key = "topicstance_requests_total{code=DEADLINE_EXCEEDED,method=BatchClassifyTexts}"
    assert wait_until(lambda: scrape(metrics_port).get(key, 0) > before.get(key, 0))
    after = scrape(metrics_port)
    assert after["topicstance_cancelled_total{}"] > before.get("topicstance_cancelled_total{}", 0)
    classified = after["topicstance_sections_total{}"] - before.get(
        "topicstance_sections_total{}", 0
    )
    assert classified <= 4, "the second chunk ran after the deadline had passed"
    still_serving(limited_stub)


def test_cancelled_stream_stops_promptly(
    limited: ServerProcess, limited_stub: Stub, metrics_port: int
) -> None:
    before = scrape(metrics_port).get("topicstance_cancelled_total{}", 0)
    requests = (
        pb.StreamClassifyTextsRequest(request_id=str(i), text=LONG_TEXT[:15000]) for i in range(50)
    )
    call = limited_stub.StreamClassifyTexts(requests)
    next(call)
    call.cancel()
    assert wait_until(
        lambda: scrape(metrics_port).get("topicstance_cancelled_total{}", 0) > before, 5
    ), f"no cancel counted in 5 s; the server's last log lines: {limited.logs[-5:]}"
    still_serving(limited_stub)


def test_metrics_count_calls_sections_and_predictions(
    limited_stub: Stub, metrics_port: int
) -> None:
    limited_stub.ClassifyText(pb.ClassifyTextRequest(text=PARAGRAPH))
    with pytest.raises(grpc.RpcError):
        limited_stub.ClassifyText(pb.ClassifyTextRequest(text=""))
    samples = scrape(metrics_port)
    assert samples["topicstance_requests_total{code=OK,method=ClassifyText}"] >= 1
    assert samples["topicstance_requests_total{code=INVALID_ARGUMENT,method=ClassifyText}"] >= 1
    assert samples["topicstance_request_seconds_count{method=ClassifyText}"] >= 2
    assert samples["topicstance_sections_total{}"] >= 1
    assert samples["topicstance_predicted_topics_total{topic=strikes}"] >= 1
    assert samples["topicstance_predicted_stances_total{actor=russia,stance=confrontational}"] >= 1
    assert any(
        k.startswith("topicstance_model_info{version=") and v == 1 for k, v in samples.items()
    )
    assert samples["topicstance_model_load_seconds{}"] >= 0


def rejected_call(stub: Any, request: Any, request_id: str) -> grpc.Call:
    """The call object of a request the server rejects."""
    try:
        stub.ClassifyText(request, metadata=(("x-request-id", request_id),))
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error
    raise AssertionError("the request was not rejected")


def test_logs_one_json_line_per_call_with_the_request_id_and_no_text(
    limited: ServerProcess,
) -> None:
    with grpc.insecure_channel(limited.target) as channel:
        stub = pb_grpc.TopicStanceServiceStub(channel)
        _, call = stub.ClassifyText.with_call(
            pb.ClassifyTextRequest(text="A secret sentence about Kyiv and its drones."),
            metadata=(("x-request-id", "req-42"),),
        )
        rejected = rejected_call(stub, pb.ClassifyTextRequest(text=""), "req-43")
    assert ("x-request-id", "req-42") in call.trailing_metadata()
    # A rejected call keeps its request id too, beside the error details.
    assert rejected.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("x-request-id", "req-43") in [(k, v) for k, v in rejected.trailing_metadata()]
    assert wait_until(lambda: any(e.get("request_id") == "req-42" for e in limited.events("rpc")))
    entry = next(e for e in limited.events("rpc") if e.get("request_id") == "req-42")
    assert (entry["method"], entry["code"], entry["level"]) == ("ClassifyText", "OK", "debug")
    assert all("secret sentence" not in json.dumps(e) for e in list(limited.logs))


def versioned(tmp_path: Path, model_dir: Path, *names: str) -> Path:
    """A model root holding copies of the artifact under `names`, CURRENT at the first."""
    root = tmp_path / "models"
    for name in names:
        shutil.copytree(model_dir, root / name)
        manifest = json.loads((root / name / MANIFEST_FILE).read_text())
        manifest["version"] = name
        (root / name / MANIFEST_FILE).write_text(json.dumps(manifest))
    publish(root, names[0])
    return root


def versions_seen(target: str, calls: int = 12) -> set[str]:
    """Model versions answered over several connections (to reach every worker)."""
    seen = set()
    for index in range(calls):
        with grpc.insecure_channel(target, options=[("grpc.channel_id", index)]) as channel:
            stub = pb_grpc.TopicStanceServiceStub(channel)
            seen.add(stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10).model_version)
    return seen


class Load:
    """Calls in a background thread until stopped; counts successes and failures."""

    def __init__(self, target: str) -> None:
        self.target, self.ok = target, 0
        self.failed: list[grpc.StatusCode] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.TopicStanceServiceStub(channel)
            while not self._stop.is_set():
                try:
                    stub.ClassifyText(pb.ClassifyTextRequest(text=PARAGRAPH), timeout=30)
                    self.ok += 1
                except grpc.RpcError as error:
                    self.failed.append(error.code())

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def unloadable(directory: Path) -> None:
    """An artifact whose manifest vouches for it, but which is not a model."""
    artifact = directory / "model.joblib"
    artifact.write_bytes(b"not a pickle")
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    manifest["artifact_sha256"] = hashlib.sha256(artifact.read_bytes()).hexdigest()
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))


def has_events(server: ServerProcess, message: str, count: int) -> bool:
    return len(server.events(message)) == count


def test_sighup_reloads_under_load_and_refuses_bad_artifacts(
    model_dir: Path, tmp_path: Path
) -> None:
    """v3 fails the hash check; v4 passes it but cannot be loaded, so v2 comes back."""
    root = versioned(tmp_path, model_dir, "v1", "v2", "v3", "v4")
    artifact = root / "v3" / "model.joblib"
    artifact.write_bytes(artifact.read_bytes()[:5000])
    unloadable(root / "v4")
    server = start_server(root, ["--workers", "2"])
    refusals = "reload refused; the previous model keeps serving"
    try:
        assert versions_seen(server.target) == {"v1"}
        with Load(server.target) as load:
            publish(root, "v2")
            server.process.send_signal(signal.SIGHUP)
            assert wait_until(lambda: versions_seen(server.target) == {"v2"})
            for bad, refused_so_far in (("v3", 2), ("v4", 4)):
                publish(root, bad)
                server.process.send_signal(signal.SIGHUP)
                assert wait_until(partial(has_events, server, refusals, refused_so_far))
            time.sleep(0.5)
            assert versions_seen(server.target) == {"v2"}
        assert load.failed == [] and load.ok > 0
        reasons = [str(event["reason"]) for event in server.events(refusals)]
        assert all("does not match its manifest" in reason for reason in reasons[:2])
        assert all("could not be loaded" in reason for reason in reasons[2:])
    finally:
        assert server.stop() == 0


def test_admin_reload_is_off_by_default_and_reloads_every_worker(
    model_dir: Path, tmp_path: Path
) -> None:
    root = versioned(tmp_path, model_dir, "v1", "v2")
    plain = start_server(root, ["--workers", "1"])
    try:
        with grpc.insecure_channel(plain.target) as channel, pytest.raises(grpc.RpcError) as caught:
            pb_grpc.TopicStanceAdminServiceStub(channel).ReloadModel(pb.ReloadModelRequest())
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        plain.stop()
    admin = start_server(root, ["--workers", "2", "--admin"])
    try:
        publish(root, "v2")
        with grpc.insecure_channel(admin.target) as channel:
            response = pb_grpc.TopicStanceAdminServiceStub(channel).ReloadModel(
                pb.ReloadModelRequest()
            )
        assert (response.reloaded, response.model_version, response.error) == (True, "v2", "")
        assert wait_until(lambda: versions_seen(admin.target) == {"v2"})
    finally:
        assert admin.stop() == 0


def test_sigterm_drains_in_flight_calls_and_exits_zero(model_dir: Path) -> None:
    """NOT_SERVING at once, calls answered for the drain delay, then new calls refused
    with UNAVAILABLE while a call in flight (an open stream) goes on to its end."""
    args = ["--workers", "1", "--grace-seconds", "20", "--drain-delay-seconds", "1"]
    server = start_server(model_dir, args)
    proceed = threading.Event()

    def requests() -> Iterator[pb.StreamClassifyTextsRequest]:
        yield pb.StreamClassifyTextsRequest(request_id="before", text=PARAGRAPH)
        proceed.wait(timeout=30)
        yield pb.StreamClassifyTextsRequest(request_id="after", text=PARAGRAPH)

    with open_channel(server.target) as channel:
        stub = pb_grpc.TopicStanceServiceStub(channel)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        stream = stub.StreamClassifyTexts(requests(), timeout=60)
        assert next(stream).request_id == "before"
        server.process.send_signal(signal.SIGTERM)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        still_serving(stub)  # within the drain delay
        time.sleep(1.5)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ClassifyText(pb.ClassifyTextRequest(text=PARAGRAPH), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in str(refused.value.details())
        proceed.set()
        assert [answer.request_id for answer in stream] == ["after"]
    assert server.process.wait(timeout=30) == 0
    assert [e["in_flight"] for e in server.events("draining")] == [1]


def sign(directory: Path, key: bytes) -> None:
    digest = hmac.new(key, (directory / MANIFEST_FILE).read_bytes(), hashlib.sha256).hexdigest()
    (directory / SIGNATURE_FILE).write_text(digest)


def refused_start(model: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "service.server", "--model", str(model), "--port", "0"]
    return subprocess.run(
        command,
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_signed_manifests(model_dir: Path, tmp_path: Path) -> None:
    signed = tmp_path / "signed"
    shutil.copytree(model_dir, signed)
    sign(signed, b"right key")
    server = start_server(signed, ["--workers", "1"], env={"TOPICSTANCE_SIGNING_KEY": "right key"})
    assert server.stop() == 0
    wrong = refused_start(signed, {"TOPICSTANCE_SIGNING_KEY": "wrong key"})
    assert wrong.returncode == 2 and "signature does not match" in wrong.stderr
    unsigned = refused_start(model_dir, {"TOPICSTANCE_SIGNING_KEY": "right key"})
    assert unsigned.returncode == 2 and "not signed" in unsigned.stderr
    manifest = json.loads((signed / MANIFEST_FILE).read_text())
    manifest["version"] = "forged"
    (signed / MANIFEST_FILE).write_text(json.dumps(manifest))
    forged = refused_start(signed, {"TOPICSTANCE_SIGNING_KEY": "right key"})
    assert forged.returncode == 2 and "signature does not match" in forged.stderr


def test_wait_for_model_is_not_serving_until_one_appears(model_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "later"
    root.mkdir()
    server = start_server(root, ["--workers", "1", "--wait-for-model"], wait=False)
    try:
        assert wait_until(lambda: bool(server.port))
        with grpc.insecure_channel(server.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert wait_until(lambda: _health(health) == health_pb2.HealthCheckResponse.NOT_SERVING)
            stub = pb_grpc.TopicStanceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.ClassifyText(pb.ClassifyTextRequest(text=PARAGRAPH), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "no model is loaded yet" in str(caught.value.details())
            shutil.copytree(model_dir, root / "v1")
            publish(root, "v1")
            assert wait_until(lambda: _health(health) == health_pb2.HealthCheckResponse.SERVING, 15)
            still_serving(stub)
    finally:
        assert server.stop() == 0


def _health(stub: Any) -> int:
    try:
        return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status)
    except grpc.RpcError:
        return -1


def test_tls_and_mutual_tls(model_dir: Path, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    root = pki.ca.read_bytes()
    server_tls = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    only_server = grpc.ssl_channel_credentials(root_certificates=root)
    with_client = grpc.ssl_channel_credentials(
        root_certificates=root,
        private_key=pki.client_key.read_bytes(),
        certificate_chain=pki.client_cert.read_bytes(),
    )
    tls = start_server(model_dir, ["--workers", "1", *server_tls], credentials=only_server)
    try:
        with open_channel(tls.target, only_server) as channel:
            still_serving(pb_grpc.TopicStanceServiceStub(channel))
        with grpc.insecure_channel(tls.target) as plaintext, pytest.raises(grpc.RpcError):
            pb_grpc.TopicStanceServiceStub(plaintext).ClassifyText(
                pb.ClassifyTextRequest(text=PARAGRAPH), timeout=5
            )
    finally:
        assert tls.stop() == 0
    mutual = start_server(
        model_dir,
        ["--workers", "1", *server_tls, "--tls-client-ca", str(pki.ca)],
        credentials=with_client,
    )
    try:
        with open_channel(mutual.target, with_client) as channel:
            still_serving(pb_grpc.TopicStanceServiceStub(channel))
        tls_flags = ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert)]
        target = f"localhost:{mutual.port}"
        cli = subprocess.run(
            [sys.executable, "-m", "client.main", "classify", "-", "--target", target,
             *tls_flags, "--tls-key", str(pki.client_key)],
            input=PARAGRAPH, capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert "strikes" in cli.stdout
        with open_channel(mutual.target, only_server) as channel:
            with pytest.raises(grpc.RpcError) as caught:
                pb_grpc.TopicStanceServiceStub(channel).ClassifyText(
                    pb.ClassifyTextRequest(text=PARAGRAPH), timeout=5
                )
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        assert mutual.stop() == 0


def test_plaintext_is_refused_off_loopback_unless_insecure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse_settings(["--host", "0.0.0.0"], {})
    assert "refusing plaintext on 0.0.0.0" in capsys.readouterr().err
    assert parse_settings(["--host", "0.0.0.0", "--insecure"], {}).insecure
    assert parse_settings(["--host", "::1"], {}).host == "::1"
    with pytest.raises(SystemExit):
        parse_settings(["--tls-cert", "x.pem"], {})
