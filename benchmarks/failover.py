"""`make failover-test`: replicas going away under load cost zero failed calls.

    python -m benchmarks.failover [--model models/default] [--seconds 60] [--concurrency 64]
        [--paths balancer,client] [--service-config FILE]

Three server replicas (two workers each) on loopback ports and haproxy in front
(deploy/balancer/haproxy.cfg). For each path, (a) through the balancer and (b)
client-side round robin over the replicas with deploy/client/service-config.json,
64 callers send ClassifyText for 60 s while one replica is killed with SIGKILL and
restarted, another gets SIGTERM (a rolling restart) and is restarted once it has
exited, and one worker process inside the third is killed with SIGKILL.

`--service-config FILE` loads the clients with another config (the published one
by default). Passes when: no call failed on either path; every replica served within ±15 % of
an even share in the windows when all were up (server-side counts, from each
replica's metrics endpoint); the killed worker was replaced within 2 s. Writes
benchmarks/results/failover.json and failover.md. Exit code 0 on a pass, 1 on a fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_channelz.v1 import channelz, channelz_pb2, channelz_pb2_grpc

from benchmarks.loadgen import percentile
from benchmarks.run import RESULTS, children
from tests.serving import REPO, wait_for_serving
from topicstance.bundle import resolve
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

SERVICE_CONFIG = REPO / "deploy" / "client" / "service-config.json"
HAPROXY_TEMPLATE = REPO / "deploy" / "balancer" / "haproxy.cfg"
TEXT = "Russian drones struck the power grid near Odesa overnight, and Kyiv asked for air defence."
SHARE_TOLERANCE = 0.15
WORKER_REPLACED_WITHIN_S = 2.0
DRAIN_DELAY_S = 2.0  # above the balancer's time to mark a server down (inter 500ms * fall 2)
# When each fault happens, as a share of the run: all replicas are up before the
# first and after the restored ones have rejoined (the share windows).
SCHEDULE = {"kill": 0.25, "sigterm": 0.45, "worker": 0.65}
WINDOWS = ((0.05, 0.25), (0.85, 1.0))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Replica:
    """One `topicstance-server` (a supervisor and its workers) in its own process group."""

    name: str
    model: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start it and wait until it is SERVING; the seconds that took."""
        started = time.monotonic()
        command = [
            sys.executable, "-m", "service.server", "--model", str(self.model),
            "--port", str(self.port), "--workers", "2", "--metrics-port", str(self.metrics_port),
            "--drain-delay-seconds", str(DRAIN_DELAY_S), "--log-level", "WARNING",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=REPO, start_new_session=True)
        wait_for_serving(self.target, 60)
        return time.monotonic() - started

    def workers(self) -> list[int]:
        return children(self.process.pid) if self.process else []

    def kill(self) -> None:
        """SIGKILL to the supervisor and every worker: the replica is gone at once."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> float:
        """SIGTERM (as a rolling restart sends it); the seconds until it exited."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        if code != 0:
            raise RuntimeError(f"{self.name} exited with {code} after SIGTERM")
        return time.monotonic() - started

    def answered(self) -> float:
        """ClassifyText calls answered OK so far (from the metrics endpoint)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        key = 'topicstance_requests_total{code="OK",method="ClassifyText"'
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if key in line)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)


def haproxy_binary() -> str:
    """haproxy from Debian's package; installed here when missing (CI runs as root)."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if found:
        return found
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "haproxy"]):
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=600)
    found = shutil.which("haproxy", path="/usr/sbin:/usr/bin")
    if not found:
        raise RuntimeError("haproxy is not installed and apt-get could not install it")
    return found


def render_haproxy(bind: str, stats: Path, replicas: list[Replica]) -> str:
    """The shipped config with this run's addresses in it."""
    servers = "\n".join(f"    server {r.name} {r.target}" for r in replicas)
    return (
        HAPROXY_TEMPLATE.read_text()
        .replace("@BIND@", bind)
        .replace("@STATS_SOCKET@", str(stats))
        .replace("@SERVERS@", servers)
    )


class Balancer:
    """haproxy on a loopback port, with its stats socket for the retry counters."""

    def __init__(self, replicas: list[Replica], workdir: Path) -> None:
        self.port = free_port()
        self.stats = workdir / "haproxy.sock"
        config = workdir / "haproxy.cfg"
        config.write_text(render_haproxy(f"127.0.0.1:{self.port}", self.stats, replicas))
        binary = haproxy_binary()
        subprocess.run([binary, "-c", "-q", "-f", str(config)], check=True)
        self.process = subprocess.Popen([binary, "-db", "-f", str(config)])
        wait_for_serving(self.target, 30)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def counters(self) -> dict[str, int]:
        """Requests retried on another server (wretr), redispatched, and 5xx sent back."""
        import socket

        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.stats))
            sock.sendall(b"show stat\n")
            data = b"".join(iter(lambda: sock.recv(65536), b""))
        rows = [line.split(",") for line in data.decode().splitlines() if line]
        header = rows[0]
        header[0] = header[0].lstrip("# ")
        backend = next(r for r in rows[1:] if r[0] == "topicstance" and r[1] == "BACKEND")
        frontend = next(r for r in rows[1:] if r[1] == "FRONTEND")
        value = dict(zip(header, backend, strict=False))
        return {
            "retried": int(value["wretr"] or 0),
            "redispatched": int(value["wredis"] or 0),
            "answered_5xx": int(dict(zip(header, frontend, strict=False))["hrsp_5xx"] or 0),
        }

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# The load: one process, many async callers on one channel.


def channel_options(balancer: bool, config: str) -> list[tuple[str, Any]]:
    """The published service config; behind a balancer, no client-side health checks
    (they would watch one backend through the proxy, not the proxy)."""
    options: list[tuple[str, Any]] = [("grpc.service_config", config)]
    if balancer:
        options.append(("grpc.inhibit_health_checking", 1))
    return options


async def _caller(stub: Any, stop: float, calls: list[tuple[float, float, str]]) -> None:
    while time.monotonic() < stop:
        started = time.monotonic()
        try:
            await stub.ClassifyText(pb.ClassifyTextRequest(text=TEXT), timeout=30)
            code = "OK"
        except grpc.aio.AioRpcError as error:
            code = f"{error.code().name}: {error.details()}"
        calls.append((started, time.monotonic() - started, code))


def attempts(channelz_target: str) -> dict[str, int]:
    """Calls started on the client's channels, and attempts started on their
    subchannels: retries (and transparent retries) are the difference."""
    with grpc.insecure_channel(channelz_target) as channel:
        stub = channelz_pb2_grpc.ChannelzStub(channel)
        top = stub.GetTopChannels(channelz_pb2.GetTopChannelsRequest(), timeout=10)
        logical = sum(c.data.calls_started for c in top.channel)
        started = 0
        for chan in top.channel:
            for ref in chan.subchannel_ref:
                sub = stub.GetSubchannel(
                    channelz_pb2.GetSubchannelRequest(subchannel_id=ref.subchannel_id), timeout=10
                )
                started += sub.subchannel.data.calls_started
    return {"calls": logical, "attempts": started}


def watch_failed_attempts(
    channelz_target: str, target: str, stop: threading.Event
) -> list[tuple[float, int]]:
    """Every 0.2 s, the attempts that have failed on the load channel's subchannels.

    Each one spends a token of the client's retry budget (`retryThrottling`): a burst
    of them is what the budget must outlast."""
    series: list[tuple[float, int]] = []
    with grpc.insecure_channel(channelz_target) as channel:
        stub = channelz_pb2_grpc.ChannelzStub(channel)
        while not stop.wait(0.2):
            top = stub.GetTopChannels(channelz_pb2.GetTopChannelsRequest(), timeout=10)
            failed = 0
            for chan in (c for c in top.channel if c.data.target == target):
                for ref in chan.subchannel_ref:
                    sub = stub.GetSubchannel(
                        channelz_pb2.GetSubchannelRequest(subchannel_id=ref.subchannel_id),
                        timeout=10,
                    )
                    failed += sub.subchannel.data.calls_failed
            series.append((time.monotonic(), failed))
    return series


def largest_burst(series: list[tuple[float, int]], span: float = 1.0) -> int:
    """The most attempts that failed within `span` seconds of each other."""
    return max(
        (b - a for i, (t0, a) in enumerate(series) for t1, b in series[i:] if t1 - t0 <= span),
        default=0,
    )


@dataclass(frozen=True)
class Load:
    """What the load process sends, and where."""

    target: str
    balancer: bool
    concurrency: int
    seconds: float
    service_config: str  # the JSON text


def run_load(spec: Load, out: Any) -> None:
    """In a child process: the callers, then what they saw and what channelz counted."""
    target = spec.target
    introspection = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    channelz.add_channelz_servicer(introspection)
    port = introspection.add_insecure_port("127.0.0.1:0")
    introspection.start()
    stop_watching = threading.Event()
    watched: list[tuple[float, int]] = []
    watcher = threading.Thread(
        target=lambda: watched.extend(
            watch_failed_attempts(f"127.0.0.1:{port}", target, stop_watching)
        )
    )
    watcher.start()

    async def load() -> list[tuple[float, float, str]]:
        calls: list[tuple[float, float, str]] = []
        options = channel_options(spec.balancer, spec.service_config)
        async with grpc.aio.insecure_channel(target, options=options) as chan:
            stub = pb_grpc.TopicStanceServiceStub(chan)
            stop = time.monotonic() + spec.seconds
            await asyncio.gather(*(_caller(stub, stop, calls) for _ in range(spec.concurrency)))
            stop_watching.set()
            watcher.join()
            out.put(
                {
                    "calls": calls,
                    "channelz": attempts(f"127.0.0.1:{port}"),
                    "failed_attempts": watched,
                }
            )
        return calls

    asyncio.run(load())
    introspection.stop(None)


# One path: the load, the faults, the measurements.


@dataclass
class Faults:
    """What each fault cost, measured from this side."""

    events: dict[str, float] = field(default_factory=dict)  # when (monotonic)
    seconds: dict[str, float] = field(default_factory=dict)  # how long
    restored: threading.Event = field(default_factory=threading.Event)  # all up again


def inject(replicas: list[Replica], start: float, seconds: float, faults: Faults) -> None:
    """The three faults at their times in the run; restarts wait for SERVING.

    A fault whose time has passed (the restart before it ran long) starts at once."""
    killed, drained, third = replicas

    def at(share: float) -> None:
        time.sleep(max(0.0, start + share * seconds - time.monotonic()))

    at(SCHEDULE["kill"])
    faults.events["kill"] = time.monotonic()
    killed.kill()
    time.sleep(1.0)
    faults.seconds[f"{killed.name}: SIGKILL, restart to SERVING"] = killed.start()
    at(SCHEDULE["sigterm"])
    faults.events["sigterm"] = time.monotonic()
    faults.seconds[f"{drained.name}: SIGTERM to exit (drain)"] = drained.terminate()
    faults.seconds[f"{drained.name}: restart to SERVING"] = drained.start()
    at(SCHEDULE["worker"])
    faults.events["worker"] = time.monotonic()
    faults.seconds[f"{third.name}: worker SIGKILL to replaced"] = replace_worker(third)
    faults.events["end"] = time.monotonic()
    faults.restored.set()


def replace_worker(replica: Replica) -> float:
    """SIGKILL one worker; the seconds until the supervisor's new worker answers."""
    before = set(replica.workers())
    victim = sorted(before)[0]
    started = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    deadline = started + 10
    while time.monotonic() < deadline:
        fresh = set(replica.workers()) - before
        if fresh and listening(fresh.pop(), replica.port):
            return time.monotonic() - started
        time.sleep(0.01)
    return float("inf")


def listening(pid: int, port: int) -> bool:
    """The process holds a socket listening on `port`: the kernel hands it connections."""
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return False
    inodes = {link[8:-1] for link in links if link.startswith("socket:[")}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port and inode in inodes:
                return True
    return False


def shares(
    replicas: list[Replica],
    window: tuple[float, float],
    start: float,
    seconds: float,
    after: threading.Event | None = None,
) -> Any:
    """Each replica's share of the calls answered between two moments of the run
    (the first not before `after` is set and a second has passed: all are up)."""
    time.sleep(max(0.0, start + window[0] * seconds - time.monotonic()))
    if after is not None:
        after.wait(timeout=start + seconds - time.monotonic())
        time.sleep(1.0)
    try:
        before = [r.answered() for r in replicas]
        time.sleep(max(0.0, start + window[1] * seconds - time.monotonic() - 0.5))
        after_counts = [r.answered() for r in replicas]
    except OSError as error:  # a replica was not up in the window: no share, a failure
        return {r.name: 0.0 for r in replicas} | {"error": str(error)}
    counts = [a - b for a, b in zip(after_counts, before, strict=True)]
    total = sum(counts) or 1.0
    return {r.name: round(c / total, 4) for r, c in zip(replicas, counts, strict=True)}


def attribute(calls: list[tuple[float, float, str]], events: dict[str, float], start: float) -> Any:
    """Each failed call, by the last fault that began before it ended (or the start of
    the run), with the seconds between the two."""
    marks = sorted([(start, "start"), *((w, n) for n, w in events.items() if n != "end")])
    found: dict[str, list[float]] = {name: [] for _, name in marks}
    for at, latency, code in calls:
        ended = at + latency
        if code != "OK":
            when, name = ([(w, n) for w, n in marks if w <= ended] or marks)[-1]
            found[name].append(round(ended - when, 2))
    return {name: sorted(delays) for name, delays in found.items()}


def run_path(name: str, target: str, replicas: list[Replica], args: argparse.Namespace) -> Any:
    """One path under load with the faults; everything it measured."""
    results: Any = multiprocessing.get_context("spawn").Queue()
    load = multiprocessing.get_context("spawn").Process(
        target=run_load,
        args=(
            Load(
                target,
                name == "balancer",
                args.concurrency,
                args.seconds,
                args.service_config.read_text(),
            ),
            results,
        ),
    )
    load.start()
    start = time.monotonic()
    faults = Faults()
    measured: list[Any] = []
    window_thread = threading.Thread(
        target=lambda: measured.extend(
            [
                shares(replicas, WINDOWS[0], start, args.seconds),
                shares(replicas, WINDOWS[1], start, args.seconds, faults.restored),
            ]
        )
    )
    window_thread.start()
    inject(replicas, start, args.seconds, faults)
    record = results.get(timeout=args.seconds + 120)
    load.join(timeout=30)
    window_thread.join(timeout=30)
    calls: list[tuple[float, float, str]] = record["calls"]
    failed = Counter(code for _, _, code in calls if code != "OK")
    attempted = record["channelz"]
    first, last = faults.events["kill"], faults.events["end"]
    during = [lat * 1000 for at, lat, _ in calls if first <= at < last]
    every = [lat * 1000 for _, lat, _ in calls]
    failed_attempts: list[tuple[float, int]] = record["failed_attempts"]
    return {
        "path": name,
        "target": target,
        "calls": len(calls),
        "failed": sum(failed.values()),
        "failures": dict(failed),
        "faults_at_s": {k: round(v - start, 1) for k, v in faults.events.items()},
        "failed_after": attribute(calls, faults.events, start),
        "client_attempts_beyond_first": attempted["attempts"] - attempted["calls"],
        "client_attempts_failed": failed_attempts[-1][1] if failed_attempts else 0,
        "client_largest_burst_1s": largest_burst(failed_attempts),
        "p99_ms": round(percentile(every, 0.99), 1),
        "p99_during_faults_ms": round(percentile(during, 0.99), 1),
        "shares_while_all_up": measured,
        "fault_seconds": {k: round(v, 2) for k, v in faults.seconds.items()},
    }


def verdict(path: Any) -> list[str]:
    """Why this path failed, if it did."""
    problems = []
    if path["failed"]:
        problems.append(f"{path['path']}: {path['failed']} calls failed: {path['failures']}")
    for window in path["shares_while_all_up"]:
        for replica, share in window.items():
            if replica == "error" or abs(share * 3 - 1) > SHARE_TOLERANCE:
                problems.append(f"{path['path']}: {replica} served {share:.1%} (even: 33.3%)")
    for what, seconds in path["fault_seconds"].items():
        if "worker" in what and seconds > WORKER_REPLACED_WITHIN_S:
            problems.append(f"{path['path']}: {what} took {seconds} s")
    return problems


def retry_budget(config: Path) -> float:
    """Failed attempts in a row after which the client config stops retrying: gRPC
    throttles retries once the token count is at or below half of maxTokens."""
    throttling = json.loads(config.read_text())["retryThrottling"]
    return float(throttling["maxTokens"]) / 2


def markdown(report: Any) -> str:
    lines = [
        f"Failover {report['when']}: 3 replicas x 2 workers, ClassifyText at concurrency "
        f"{report['concurrency']} for {report['seconds']:.0f} s per path; SIGKILL of r1 "
        f"(restarted), SIGTERM of r2 (restarted after its drain), SIGKILL of a worker of r3.",
        "",
        "| path | calls | failed | attempts retried (client) | attempts failed (largest "
        "burst in 1 s) | retried by haproxy | p99 ms (all) | p99 ms (during faults) "
        "| shares while all up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for path in report["paths"]:
        windows = " then ".join(
            "/".join(f"{s:.0%}" for k, s in w.items() if k != "error")
            for w in path["shares_while_all_up"]
        )
        lines.append(
            f"| {path['path']} | {path['calls']} | {path['failed']} "
            f"| {path['client_attempts_beyond_first']} "
            f"| {path['client_attempts_failed']} ({path['client_largest_burst_1s']}) "
            f"| {path.get('haproxy', {}).get('retried', '-')} "
            f"| {path['p99_ms']} | {path['p99_during_faults_ms']} | {windows} |"
        )
    lines += [
        "",
        f"The client stops retrying after {report['retry_budget']:.0f} failed attempts in a "
        "burst (`retryThrottling`: half of maxTokens; each success earns back 0.1).",
        "",
        "| path | fault | seconds |",
        "|---|---|---|",
    ]
    for path in report["paths"]:
        lines += [f"| {path['path']} | {k} | {v} |" for k, v in path["fault_seconds"].items()]
        began = ", ".join(f"{k} {v} s" for k, v in path["faults_at_s"].items())
        lines += [f"| {path['path']} | faults began (s into the run) | {began} |"]
    lines += ["", f"Verdict: {'pass' if not report['problems'] else 'FAIL'}."]
    lines += [f"- {problem}" for problem in report["problems"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--paths", default="balancer,client", help="balancer, client or both")
    parser.add_argument(
        "--service-config", type=Path, default=SERVICE_CONFIG, help="the clients' service config"
    )
    args = parser.parse_args()
    model = resolve(args.model)
    replicas = [Replica(f"r{i}", model) for i in (1, 2, 3)]
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "service_config": str(args.service_config),
        "retry_budget": retry_budget(args.service_config),
        "paths": [],
    }
    balancer: Balancer | None = None
    with tempfile.TemporaryDirectory() as workdir:
        try:
            report["first_start_s"] = [round(r.start(), 2) for r in replicas]
            for name in args.paths.split(","):
                if name == "balancer":
                    balancer = balancer or Balancer(replicas, Path(workdir))
                    path = run_path(name, balancer.target, replicas, args)
                    path["haproxy"] = balancer.counters()
                else:
                    target = "ipv4:" + ",".join(r.target for r in replicas)
                    path = run_path(name, target, replicas, args)
                report["paths"].append(path)
        finally:
            if balancer is not None:
                balancer.stop()
            for replica in replicas:
                replica.stop()
    report["problems"] = [p for path in report["paths"] for p in verdict(path)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "failover.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (RESULTS / "failover.md").write_text(text)
    print(text)
    return 0 if not report["problems"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
