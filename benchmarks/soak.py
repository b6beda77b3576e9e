"""A soak run: minutes of mixed traffic, one model reload midway, SIGTERM at the end.

    python -m benchmarks.soak [--model models/default] [--minutes 5] [--concurrency 48]
    python -m benchmarks.soak --image topicstance:test --memory 1g   # in a container

With --image, the server runs in a container (podman) under a memory limit, with
the two model versions mounted over its default model; the report adds the
container's peak memory and whether it was OOM-killed.

Every RPC is called, with some deliberately bad requests (each must get its own
status code) and some calls cancelled by the client. Reports calls sent,
succeeded and failed, latency percentiles, and the workers' RSS at start and end.
Writes benchmarks/results/soak.json and soak.md. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from benchmarks.loadgen import percentile
from benchmarks.run import RESULTS, children, rss_mb, workload
from service.memory import cgroup_limit
from tests.serving import ServerProcess, start_server, wait_for_serving
from topicstance.bundle import MANIFEST_FILE, publish, resolve
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

Expected = grpc.StatusCode | None
WARM_UP_SHARE = 0.2  # RSS growth is measured from the end of the first fifth
RSS_EVERY_SECONDS = 10.0


@dataclass
class Tally:
    """Per kind of call: how many were sent, answered as expected, and failed."""

    sent: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


def invalid_utf8(text: bytes) -> bytes:
    return bytes([1 << 3 | 2, len(text)]) + text


class Traffic:
    """The mix of calls, each with the status code it must end with."""

    def __init__(self, channel: grpc.aio.Channel, texts: list[str]) -> None:
        self.stub = pb_grpc.TopicStanceServiceStub(channel)
        self.raw = channel.unary_unary(
            "/topicstance.v1.TopicStanceService/ClassifyText",
            request_serializer=lambda data: data,
            response_deserializer=pb.ClassifyTextResponse.FromString,
        )
        self.texts = texts
        self.mix: list[tuple[str, int, Callable[[], Awaitable[Any]], Expected]] = [
            ("ClassifyText", 40, self.text, None),
            ("ClassifyDocument", 12, self.document, None),
            ("BatchClassifyTexts", 12, self.batch, None),
            ("StreamClassifyTexts", 8, self.stream, None),
            ("GetModelInfo", 5, self.info, None),
            ("bad: empty text", 6, self.empty, grpc.StatusCode.INVALID_ARGUMENT),
            ("bad: batch over the limit", 4, self.too_many, grpc.StatusCode.RESOURCE_EXHAUSTED),
            ("bad: invalid UTF-8", 4, self.bad_bytes, grpc.StatusCode.INVALID_ARGUMENT),
            ("cancelled by the client", 5, self.cancelled, grpc.StatusCode.CANCELLED),
        ]

    def pick(self) -> tuple[str, Callable[[], Awaitable[Any]], Expected]:
        name, _, call, expected = random.choices(self.mix, weights=[m[1] for m in self.mix])[0]
        return name, call, expected

    async def text(self) -> Any:
        return await self.stub.ClassifyText(
            pb.ClassifyTextRequest(text=random.choice(self.texts)), timeout=30
        )

    async def document(self) -> Any:
        parts = random.sample(self.texts, 4)
        text = "\n".join(f"Part {i}\n{part}" for i, part in enumerate(parts))
        return await self.stub.ClassifyDocument(pb.ClassifyDocumentRequest(text=text), timeout=30)

    async def batch(self) -> Any:
        texts = random.sample(self.texts, random.randint(8, 32))
        return await self.stub.BatchClassifyTexts(
            pb.BatchClassifyTextsRequest(texts=texts), timeout=30
        )

    async def stream(self) -> Any:
        requests = [
            pb.StreamClassifyTextsRequest(request_id=str(i), text=random.choice(self.texts))
            for i in range(random.randint(5, 20))
        ]
        answers = [r async for r in self.stub.StreamClassifyTexts(iter(requests), timeout=30)]
        assert [a.request_id for a in answers] == [r.request_id for r in requests]
        return answers

    async def info(self) -> Any:
        return await self.stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)

    async def empty(self) -> Any:
        return await self.stub.ClassifyText(pb.ClassifyTextRequest(text="  "), timeout=10)

    async def too_many(self) -> Any:
        texts = [self.texts[0]] * 300
        return await self.stub.BatchClassifyTexts(
            pb.BatchClassifyTextsRequest(texts=texts), timeout=10
        )

    async def bad_bytes(self) -> Any:
        return await self.raw(invalid_utf8(b"Kyiv \xff\xfe"), timeout=10)

    async def cancelled(self) -> Any:
        call = self.stub.BatchClassifyTexts(
            pb.BatchClassifyTextsRequest(texts=random.sample(self.texts, 32)), timeout=30
        )
        await asyncio.sleep(0.005)
        call.cancel()
        return await call


async def caller(traffic: Traffic, tally: Tally, stop: float) -> None:
    while time.monotonic() < stop:
        name, call, expected = traffic.pick()
        tally.sent[name] += 1
        started = time.monotonic()
        try:
            await call()
            code = grpc.StatusCode.OK
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
        except grpc.aio.AioRpcError as error:
            code = error.code()
        if code == (expected or grpc.StatusCode.OK):
            tally.expected[name] += 1
            if expected is None:
                tally.latencies.append((time.monotonic() - started) * 1000)
        else:
            tally.failed[f"{name}: {code.name}"] += 1


def workers_rss(pid: int) -> float:
    return sum(rss_mb(child) for child in children(pid))


def sample_rss(pid: int, samples: list[tuple[float, float]], seconds: float) -> None:
    """The workers' RSS every few seconds: caches fill during warm-up; a leak keeps growing."""
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        samples.append((round(elapsed, 1), round(workers_rss(pid), 1)))
        time.sleep(RSS_EVERY_SECONDS)


async def soak(
    target: str, texts: list[str], seconds: float, concurrency: int, midway: Callable[[], None]
) -> Tally:
    tally = Tally()
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.channel_id", i)]) for i in range(8)
    ]
    stop = time.monotonic() + seconds
    callers = [
        asyncio.create_task(caller(Traffic(channels[i % len(channels)], texts), tally, stop))
        for i in range(concurrency)
    ]
    await asyncio.sleep(seconds / 2)
    midway()
    await asyncio.gather(*callers)
    for channel in channels:
        await channel.close()
    return tally


class Local:
    """The server as a process of ours."""

    def __init__(self, root: Path) -> None:
        self.server: ServerProcess = start_server(root, ["--workers", "2"])
        self.pid, self.target = self.server.process.pid, self.server.target

    def signal(self, signum: signal.Signals) -> None:
        self.server.process.send_signal(signum)

    def wait(self) -> int:
        return self.server.process.wait(timeout=60)

    def extra(self) -> dict[str, Any]:
        return {}


class Container:
    """The image under podman with a memory limit, the model root mounted over its
    default model (so the reload midway works as it does locally)."""

    def __init__(self, image: str, memory: str, root: Path) -> None:
        self.name = f"topicstance-soak-{os.getpid()}"
        self.memory = memory
        port = free_port()
        subprocess.run(["chmod", "-R", "a+rX", str(root.parent)], check=True)
        subprocess.run(
            ["podman", "run", "-d", "--name", self.name, "--memory", memory,
             "-p", f"127.0.0.1:{port}:50051", "-v", f"{root}:/models/default:ro",
             "-e", "TOPICSTANCE_WORKERS=2", image],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.target = f"127.0.0.1:{port}"
        wait_for_serving(self.target, 120)
        self.pid = int(self._inspect("{{.State.Pid}}"))

    def _inspect(self, template: str) -> str:
        done = subprocess.run(
            ["podman", "inspect", self.name, "--format", template],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return done.stdout.strip()

    def signal(self, signum: signal.Signals) -> None:
        subprocess.run(["podman", "kill", "--signal", signum.name, self.name], check=True)

    def wait(self) -> int:
        done = subprocess.run(
            ["podman", "wait", self.name], check=True, capture_output=True, text=True, timeout=90
        )
        return int(done.stdout.strip())

    def extra(self) -> dict[str, Any]:
        """The limit the server saw, the container's peak memory, and any OOM kill."""
        membership = Path(f"/proc/{self.pid}/cgroup")
        limit = cgroup_limit(membership=membership)
        return {
            "memory_limit_mb": round((limit or 0) / 2**20, 1),
            "peak_mb": round(cgroup_peak(membership) / 2**20, 1),
            "oom_killed": self._inspect("{{.State.OOMKilled}}") == "true",
        }

    def remove(self) -> None:
        subprocess.run(["podman", "rm", "-f", self.name], check=False, capture_output=True)


def cgroup_peak(membership: Path) -> int:
    """The highest memory use the process's cgroup has seen (cgroup v1 or v2)."""
    for line in membership.read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            peak = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.max_usage_in_bytes"
        elif hierarchy == "0" and not controllers:
            peak = Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.peak"
        else:
            continue
        if peak.exists():
            return int(peak.read_text())
    return 0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_soak(
    server: Local | Container, root: Path, texts: list[str], args: argparse.Namespace
) -> tuple[Tally, list[tuple[float, float]], float, float, str, int, dict[str, Any]]:
    """The traffic, the reload midway, SIGTERM at the end; what was measured."""
    samples: list[tuple[float, float]] = []
    sampler = threading.Thread(
        target=sample_rss, args=(server.pid, samples, args.minutes * 60), daemon=True
    )

    def reload() -> None:
        publish(root, "soak-v2")
        server.signal(signal.SIGHUP)

    started = time.monotonic()
    sampler.start()
    tally = asyncio.run(soak(server.target, texts, args.minutes * 60, args.concurrency, reload))
    elapsed = time.monotonic() - started
    sampler.join()
    rss_end = workers_rss(server.pid)
    with grpc.insecure_channel(server.target) as channel:
        version = (
            pb_grpc.TopicStanceServiceStub(channel)
            .GetModelInfo(pb.GetModelInfoRequest())
            .model_version
        )
    extra = server.extra()
    server.signal(signal.SIGTERM)
    return tally, samples, elapsed, rss_end, version, server.wait(), extra


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--data", type=Path, default=Path("training/data"))
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--image", help="run this image under podman instead of a local server")
    parser.add_argument("--memory", default="1g", help="the container's memory limit")
    args = parser.parse_args()
    random.seed(11)
    texts = workload(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        for version in ("soak-v1", "soak-v2"):
            shutil.copytree(resolve(args.model), root / version)
            manifest = json.loads((root / version / MANIFEST_FILE).read_text())
            (root / version / MANIFEST_FILE).write_text(
                json.dumps({**manifest, "version": version})
            )
        publish(root, "soak-v1")
        server = Container(args.image, args.memory, root) if args.image else Local(root)
        try:
            tally, samples, elapsed, rss_end, version, exit_code, extra = run_soak(
                server, root, texts, args
            )
        finally:
            if isinstance(server, Container):
                server.remove()
    warm = [rss for at, rss in samples if at >= WARM_UP_SHARE * args.minutes * 60]
    rss_start = warm[0] if warm else samples[0][1]
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": round(elapsed, 1),
        "concurrency": args.concurrency,
        "sent": sum(tally.sent.values()),
        "answered_as_expected": sum(tally.expected.values()),
        "unexpected_failures": dict(tally.failed),
        "by_kind": {
            name: {"sent": n, "as_expected": tally.expected[name]} for name, n in tally.sent.items()
        },
        "latency_ms": {
            q: round(percentile(tally.latencies, s), 1)
            for q, s in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
        },
        "rss_mb": {
            "after_warm_up": round(rss_start, 1),
            "end": round(rss_end, 1),
            "growth": round(rss_end / rss_start - 1, 4),
            "samples": samples,
        },
        "model_after_reload": version,
        "exit_code": exit_code,
        **({"container": {"image": args.image, **extra}} if args.image else {}),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    lines = [
        f"Soak {report['when']}: {report['seconds']:.0f} s at concurrency {args.concurrency}, "
        f"reload to `{version}` midway, SIGTERM at the end (exit code {exit_code}).",
        "",
        "| calls | sent | answered as expected |",
        "|---|---|---|",
        *[
            f"| {name} | {v['sent']} | {v['as_expected']} |"
            for name, v in sorted(report["by_kind"].items())
        ],
        f"| **all** | **{report['sent']}** | **{report['answered_as_expected']}** |",
        "",
        f"Unexpected failures: {sum(tally.failed.values())}"
        f"{f' {dict(tally.failed)}' if tally.failed else ''}. "
        f"Latency of successful calls: p50 {report['latency_ms']['p50']} ms, "
        f"p90 {report['latency_ms']['p90']} ms, p99 {report['latency_ms']['p99']} ms. "
        f"Worker RSS (both workers): {samples[0][1]:.0f} MB at start, {rss_start:.0f} MB after "
        f"the first fifth (warm caches), {rss_end:.0f} MB at the end "
        f"({report['rss_mb']['growth']:+.1%} after warm-up).",
    ]
    if args.image:
        lines.append(
            f"In the container `{args.image}` under a {extra['memory_limit_mb']:.0f} MB limit: "
            f"peak memory {extra['peak_mb']:.0f} MB "
            f"({extra['peak_mb'] / extra['memory_limit_mb']:.0%} of the limit), "
            f"OOM-killed: {'yes' if extra['oom_killed'] else 'no'}."
        )
    name = "soak-container" if args.image else "soak"
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    healthy = not extra.get("oom_killed", False)
    return 0 if not tally.failed and exit_code == 0 and version == "soak-v2" and healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
