"""Server wiring: load the model, pre-fork workers that share the port, handle signals.

The parent loads and verifies the model (failing fast with a clear message), then
forks the workers before any gRPC object exists. Each worker runs its own
grpc.aio server on the same port (SO_REUSEPORT), so the kernel spreads
connections over the cores. SIGTERM drains and exits 0; SIGHUP reloads the model.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service import logs
from service.bundle import ArtifactError, ModelBundle, load_bundle
from service.config import Settings, parse_settings
from service.servicer import TopicStanceServicer
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

log = logging.getLogger("topicstance.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["TopicStanceService"].full_name
SMOKE_TEXT = "A short text to check that a freshly loaded model can predict."


class ModelHolder:
    """The model in use; a reload swaps it only after the new one proved itself."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bundle = self._load()

    def __call__(self) -> ModelBundle:
        return self.bundle

    def _load(self) -> ModelBundle:
        started = time.perf_counter()
        bundle = load_bundle(self.path)
        bundle.predict([SMOKE_TEXT])
        log.info(
            "model loaded",
            extra={
                "model_version": bundle.version,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
        return bundle

    def reload(self) -> bool:
        """Load, verify and smoke-test the artifact at `path`; keep the old one on failure."""
        try:
            bundle = self._load()
        except ArtifactError as exc:
            log.error(
                "reload refused; the previous model keeps serving", extra={"reason": str(exc)}
            )
            return False
        self.bundle = bundle
        return True


def server_options(settings: Settings) -> list[tuple[str, int]]:
    return [
        ("grpc.so_reuseport", 1),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", 4 * settings.max_message_bytes),
    ]


async def serve(settings: Settings, holder: ModelHolder, port: int) -> None:
    """Run one gRPC server until SIGTERM or SIGINT; then drain within the grace period."""
    server = grpc.aio.server(options=server_options(settings))
    pb_grpc.add_TopicStanceServiceServicer_to_server(TopicStanceServicer(holder, settings), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    bound = server.add_insecure_port(f"{settings.host}:{port}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("worker serving", extra={"port": bound, "model_version": holder().version})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload(holder)))
    await stop.wait()
    log.info("draining", extra={"grace_seconds": settings.grace_seconds})
    await health_servicer.enter_graceful_shutdown()
    await server.stop(settings.grace_seconds)
    log.info("worker stopped")


async def _reload(holder: ModelHolder) -> None:
    await asyncio.to_thread(holder.reload)


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (not listen) the port with SO_REUSEPORT so workers can share it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_worker(settings: Settings, holder: ModelHolder, port: int) -> int:
    asyncio.run(serve(settings, holder, port))
    return 0


def supervise(settings: Settings, holder: ModelHolder, port: int) -> int:
    """Fork the workers, pass signals on, restart a worker that dies unexpectedly."""
    children: dict[int, int] = {}
    stopping = False

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            code = 1
            try:
                code = run_worker(settings, holder, port)
            finally:
                os._exit(code)
        children[pid] = slot

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for pid in children:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if signum == signal.SIGINT else signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    for slot in range(settings.workers):
        spawn(slot)
    failures = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        slot = children.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            failures += 1
        if not stopping:
            log.error("worker exited; restarting it", extra={"worker_pid": pid, "exit_code": code})
            time.sleep(min(5.0, 0.2 * failures))
            spawn(slot)
    return 0 if failures == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(argv)
    logs.configure(settings.log_level)
    try:
        holder = ModelHolder(settings.model)
    except ArtifactError as exc:
        log.error("cannot start: no usable model", extra={"reason": str(exc)})
        print(f"topicstance-server: {exc}", file=sys.stderr)
        return 2
    reservation = reserve_port(settings.host, settings.port)
    port = reservation.getsockname()[1]
    log.info(
        "serving",
        extra={
            "host": settings.host,
            "port": port,
            "workers": settings.workers,
            "model_version": holder().version,
        },
    )
    try:
        if settings.workers == 1:
            return run_worker(settings, holder, port)
        return supervise(settings, holder, port)
    finally:
        reservation.close()


if __name__ == "__main__":
    raise SystemExit(main())
