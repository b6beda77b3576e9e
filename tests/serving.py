"""Start a real server process on an ephemeral port, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[1]


@dataclass
class ServerProcess:
    """A running `topicstance-server` and what it logged so far."""

    process: subprocess.Popen[str]
    port: int
    logs: list[dict[str, object]] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def events(self, name: str) -> list[dict[str, object]]:
        return [entry for entry in list(self.logs) if entry.get("event") == name]


def _read_logs(server: ServerProcess) -> None:
    assert server.process.stderr is not None
    for line in server.process.stderr:
        try:
            server.logs.append(json.loads(line))
        except json.JSONDecodeError:
            server.logs.append({"event": "raw", "line": line.rstrip()})


def start_server(
    model: Path,
    args: Sequence[str] = (),
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    credentials: grpc.ChannelCredentials | None = None,
    wait: bool = True,
) -> ServerProcess:
    """Start the server on port 0 and wait until its health check says SERVING."""
    command = [sys.executable, "-m", "service.server", "--model", str(model), "--port", "0", *args]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    server = ServerProcess(process=process, port=0)
    threading.Thread(target=_read_logs, args=(server,), daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        serving = server.events("serving")
        if serving:
            server.port = int(str(serving[0]["port"]))
            break
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {server.logs}")
        time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError(f"server did not report its port: {server.logs}")
    if wait:
        wait_for_serving(server.target, deadline - time.monotonic(), credentials)
    return server


def open_channel(target: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
    if credentials is None:
        return grpc.insecure_channel(target)
    return grpc.secure_channel(
        target, credentials, options=[("grpc.ssl_target_name_override", "localhost")]
    )


def wait_for_serving(
    target: str, timeout: float, credentials: grpc.ChannelCredentials | None = None
) -> None:
    deadline = time.monotonic() + timeout
    with open_channel(target, credentials) as opened:
        stub = health_pb2_grpc.HealthStub(opened)
        while time.monotonic() < deadline:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"{target} did not become SERVING within {timeout:.0f} s")
