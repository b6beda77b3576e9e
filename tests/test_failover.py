"""Replicas going away: a drain never answers CANCELLED, a killed worker is replaced at
once, the client config skips a NOT_SERVING replica and retries every call that a dead
one drops at once, and the clients that ship use it. (`make failover-test` does the
same under load, through haproxy and round robin.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from benchmarks.failover import SERVICE_CONFIG, listening
from benchmarks.run import children
from service import memory
from tests.serving import REPO, ServerProcess, start_server
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

ARTICLE = REPO / "tests" / "fixtures" / "article.txt"
TEXT = "Russian drones struck the power grid near Odesa overnight."


@pytest.fixture(scope="module")
def two_replicas(model_dir: Path) -> Iterator[list[ServerProcess]]:
    replicas = [start_server(model_dir, ["--workers", "1"]) for _ in range(2)]
    yield replicas
    for replica in replicas:
        assert replica.stop() == 0


def everywhere(replicas: list[ServerProcess]) -> str:
    return "ipv4:" + ",".join(r.target for r in replicas)


def test_sigterm_under_load_answers_ok_or_unavailable_never_cancelled(model_dir: Path) -> None:
    """The operator's trial in small: callers that do not watch health keep sending
    through the drain. gRPC core's Server.stop would cancel the calls it had received
    but not handed over (CANCELLED, which no client retries); the drain answers them
    or lets them fail as UNAVAILABLE."""
    server = start_server(model_dir, ["--workers", "2", "--drain-delay-seconds", "0.5"])
    codes: Counter[str] = Counter()

    async def caller(stub: pb_grpc.TopicStanceServiceStub, stop: float) -> None:
        while time.monotonic() < stop and server.process.poll() is None:
            try:
                await stub.ClassifyText(pb.ClassifyTextRequest(text=TEXT), timeout=10)
                codes["OK"] += 1
            except grpc.aio.AioRpcError as error:
                codes[error.code().name] += 1

    async def hammer() -> None:
        channels = [
            grpc.aio.insecure_channel(server.target, options=[("grpc.channel_id", i)])
            for i in range(8)
        ]
        stop = time.monotonic() + 15
        callers = [caller(pb_grpc.TopicStanceServiceStub(channels[i % 8]), stop) for i in range(48)]
        tasks = [asyncio.ensure_future(c) for c in callers]
        await asyncio.sleep(2)
        server.process.send_signal(signal.SIGTERM)
        await asyncio.gather(*tasks)
        for channel in channels:
            await channel.close()

    asyncio.run(hammer())
    assert server.process.wait(timeout=30) == 0
    assert codes["OK"] > 100
    assert set(codes) <= {"OK", "UNAVAILABLE"}, codes


def test_a_killed_worker_is_replaced_within_two_seconds(model_dir: Path) -> None:
    server = start_server(model_dir, ["--workers", "2"])
    try:
        before = set(children(server.process.pid))
        assert len(before) == 2
        killed = time.monotonic()
        os.kill(min(before), signal.SIGKILL)
        replaced = None
        while time.monotonic() - killed < 5 and replaced is None:
            fresh = set(children(server.process.pid)) - before
            if fresh and listening(fresh.pop(), server.port):
                replaced = time.monotonic() - killed
            time.sleep(0.01)
        assert replaced is not None and replaced < 2.0, replaced
    finally:
        assert server.stop() == 1  # a worker died: the supervisor says so on exit


def with_config(**changes: object) -> str:
    config = json.loads(SERVICE_CONFIG.read_text())
    config.update(changes)
    return json.dumps(config)


def test_client_health_checks_skip_a_not_serving_replica(
    model_dir: Path, tmp_path: Path, two_replicas: list[ServerProcess]
) -> None:
    """A replica without a model is up but NOT_SERVING (its calls get UNAVAILABLE).
    With retries off, every call still succeeds: the health check kept the client
    away from it. With health checking inhibited, some calls land there and fail."""
    waiting = start_server(tmp_path, ["--workers", "1", "--wait-for-model"], wait=False)
    try:
        target = everywhere([two_replicas[0], waiting])
        methods = json.loads(SERVICE_CONFIG.read_text())["methodConfig"]
        no_retries = with_config(
            methodConfig=[{k: v for k, v in m.items() if k != "retryPolicy"} for m in methods]
        )
        results = {}
        for inhibit in (0, 1):
            options: list[tuple[str, object]] = [
                ("grpc.service_config", no_retries),
                ("grpc.inhibit_health_checking", inhibit),
            ]
            with grpc.insecure_channel(target, options=options) as channel:
                stub = pb_grpc.TopicStanceServiceStub(channel)
                codes: Counter[str] = Counter()
                for _ in range(20):
                    try:
                        stub.ClassifyText(pb.ClassifyTextRequest(text=TEXT), timeout=10)
                        codes["OK"] += 1
                    except grpc.RpcError as error:
                        codes[error.code().name] += 1
                results[inhibit] = codes
        assert results[0] == {"OK": 20}
        assert results[1]["UNAVAILABLE"] > 0
    finally:
        assert waiting.stop() == 0


BURST_CALLS = 128


def burst(replica: ServerProcess, config: str) -> tuple[int, Counter[str]]:
    """BURST_CALLS calls over round robin across `replica` and a stalled one; once the
    live replica has answered its share, SIGKILL the stalled one. The calls it held,
    and how every call ended."""
    stalled = subprocess.Popen(
        [sys.executable, "-m", "tests.stalled"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert stalled.stdout is not None
        target = f"ipv4:127.0.0.1:{int(stalled.stdout.readline())},{replica.target}"
        with grpc.insecure_channel(target, options=[("grpc.service_config", config)]) as channel:
            stub = pb_grpc.TopicStanceServiceStub(channel)
            seen: set[bool] = set()  # both replicas READY, so round robin splits the calls
            for _ in range(100):
                info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
                seen.add(info.model_version == "stalled")
                if len(seen) == 2:
                    break
                time.sleep(0.05)
            assert len(seen) == 2, "the channel never reached both replicas"
            request = pb.ClassifyTextRequest(text=TEXT)
            calls = [stub.ClassifyText.future(request, timeout=30) for _ in range(BURST_CALLS)]
            answered, deadline = -1, time.monotonic() + 20
            while time.monotonic() < deadline:
                time.sleep(0.5)
                now = sum(call.done() for call in calls)
                if now == answered:
                    break
                answered = now
            held = BURST_CALLS - answered
            stalled.kill()
            return held, Counter(call.code().name for call in calls)
    finally:
        stalled.kill()
        stalled.wait()


def test_the_retry_budget_outlasts_every_call_in_flight_failing_at_once(
    two_replicas: list[ServerProcess],
) -> None:
    """Why `retryThrottling` allows 1000 tokens. A replica that stops answering keeps
    getting its share of the calls until the kernel resets its connection; then every
    call it held fails at once with UNAVAILABLE. gRPC stops retrying when failures have
    spent half the budget, so 100 tokens retry 49 of such a burst and fail the rest
    (the failures `make failover-test` saw); the published budget retries them all."""
    published = SERVICE_CONFIG.read_text()
    throttling = json.loads(published)["retryThrottling"]
    held, codes = burst(two_replicas[0], published)
    assert held > 50, held  # more than 100 tokens could retry: the burst is real
    assert codes == {"OK": BURST_CALLS}, (held, codes)
    small = with_config(retryThrottling={**throttling, "maxTokens": 100})
    held, codes = burst(two_replicas[0], small)
    assert held > 50 and codes["UNAVAILABLE"] > 0, (held, codes)
    assert set(codes) == {"OK", "UNAVAILABLE"}, codes


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_the_cli_balances_over_replicas_with_the_service_config(
    two_replicas: list[ServerProcess], tmp_path: Path
) -> None:
    cli = [sys.executable, "-m", "client.main", "classify", str(ARTICLE)]
    done = run([*cli, "--target", everywhere(two_replicas)])
    assert done.returncode == 0, done.stderr
    assert [row.split()[0] for row in done.stdout.splitlines()[1:]] == ["1", "2", "3", "4"]
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    env = {"TOPICSTANCE_SERVICE_CONFIG": str(broken)}
    refused = run([*cli, "--target", two_replicas[0].target], env)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"topicstance: cannot use the service config {broken}")


def test_the_python_and_node_examples_use_every_replica(
    two_replicas: list[ServerProcess],
) -> None:
    target = everywhere(two_replicas)
    python = run([sys.executable, "examples/python/classify_replicas.py", str(ARTICLE), target])
    assert python.returncode == 0, python.stderr
    assert python.stdout.splitlines()[0] == "(lede) territory"
    if not (REPO / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("node_modules is missing: run `make test`, which installs it")
    node = run(["node", "examples/node/classify_document.js", str(ARTICLE), target])
    assert node.returncode == 0, node.stderr
    assert len(json.loads(node.stdout)["sections"]) == 4


def test_too_many_workers_for_the_memory_limit_is_said_at_start(tmp_path: Path) -> None:
    """The cgroup files of a container with --memory=512m (v2) and of a pod (v1)."""
    v2 = tmp_path / "v2"
    (v2 / "ctr").mkdir(parents=True)
    (v2 / "ctr" / "memory.max").write_text(f"{512 * memory.MIB}\n")
    (v2 / "memory.max").write_text("max\n")
    membership = tmp_path / "cgroup-v2"
    membership.write_text("0::/ctr\n")
    assert memory.cgroup_limit(v2, membership) == 512 * memory.MIB
    v1 = tmp_path / "v1"
    (v1 / "memory" / "pod").mkdir(parents=True)
    (v1 / "memory" / "pod" / "memory.limit_in_bytes").write_text(f"{memory.MIB << 10}\n")
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    membership.write_text("4:memory:/pod\n0::/\n")
    assert memory.cgroup_limit(v1, membership) == 1024 * memory.MIB
    membership.write_text("0::/\n")
    assert memory.cgroup_limit(tmp_path / "none", membership) is None
    loaded = 200 * memory.MIB
    assert memory.Budget(1024 * memory.MIB, loaded, 2).problem() is None
    problem = memory.Budget(512 * memory.MIB, loaded, 4).problem()
    assert problem is not None
    assert "too low for 4 workers" in problem and "at most 1" in problem
    # One worker serves in the process itself: 200 MiB + 48 MiB fits in 256 MiB.
    assert memory.Budget(256 * memory.MIB, loaded, 1).problem() is None
    assert memory.Budget(256 * memory.MIB, loaded, 2).fits() == 1
    problem = memory.Budget(200 * memory.MIB, loaded, 1).problem()
    assert problem is not None and "raise the limit to at least 249 MiB" in problem
