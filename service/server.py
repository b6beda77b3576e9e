"""Server wiring: load the model, pre-fork workers that share the port, handle signals.

The parent loads and verifies the model (failing fast with a clear message), then
forks the workers before any gRPC object exists. Each worker runs its own
grpc.aio server on the same port (SO_REUSEPORT), so the kernel spreads
connections over the cores. SIGTERM drains and exits 0 (see `drain`); SIGHUP reloads
the model.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing, suppress
from pathlib import Path
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service import logs, memory, metrics
from service.config import Settings, parse_settings
from service.observe import CallObserver
from service.servicer import SERVICE, AdminServicer, TopicStanceServicer, rpc_handlers
from topicstance.bundle import (
    ArtifactError,
    ModelBundle,
    ModelUnavailableError,
    load_bundle,
    resolve,
    signing_key,
    verify_artifact,
)
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

log = logging.getLogger("topicstance.server")
ADMIN_SERVICE = pb.DESCRIPTOR.services_by_name["TopicStanceAdminService"].full_name
SMOKE_TEXT = "A short text to check that a freshly loaded model can predict."
WAIT_POLL_SECONDS = 2.0
CRASH_LOOP_SECONDS = 10.0


class ModelHolder:
    """The model in use, and the one thread that predicts with it and swaps it."""

    def __init__(self, path: Path, signing_key: bytes | None, required: bool = True) -> None:
        self.path = path
        self.signing_key = signing_key
        self.bundle: ModelBundle | None = None
        self.directory: Path | None = None
        self.metrics: metrics.Metrics | None = None
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        if required:
            self.bundle = self._load(resolve(path), None)

    def __call__(self) -> ModelBundle:
        if self.bundle is None:
            raise ModelUnavailableError(f"no model is loaded yet (waiting for one at {self.path})")
        return self.bundle

    def _load(self, directory: Path, previous: str | None) -> ModelBundle:
        started = time.perf_counter()
        bundle = load_bundle(directory, self.signing_key)
        bundle.predict([SMOKE_TEXT])
        seconds = time.perf_counter() - started
        self.directory = directory
        log.info(
            "model loaded", extra={"model_version": bundle.version, "seconds": round(seconds, 3)}
        )
        if self.metrics is not None:
            self.metrics.model_loaded(bundle.version, seconds, previous)
        return bundle

    def load_when_ready(self) -> None:
        """For a server started before its model: one attempt to load it."""
        self.bundle = self._load(resolve(self.path), None)

    def version(self) -> str:
        return self.bundle.version if self.bundle is not None else ""

    async def reload_async(self) -> str | None:
        return await asyncio.get_running_loop().run_in_executor(self.thread, self.reload)

    def reload(self) -> str | None:
        """Swap in the artifact at `path`; None on success, else why it was refused.

        Runs on the model thread, so no prediction is in flight and new ones wait
        for the swap (about the load time, ~0.6 s). The old model is let go before
        the new one loads: loading beside it would leave the worker ~15 % larger for
        good. Cheap checks (hash, signature, versions) refuse a bad artifact with no
        pause; one that fails to load or predict is refused and the old one reloaded.
        """
        previous, fallback = self.version(), self.directory
        try:
            directory = resolve(self.path)
            verify_artifact(directory, self.signing_key)
            self.bundle = None
            release_memory()
            self.bundle = self._load(directory, previous)
        except ArtifactError as exc:
            self._refused(exc, fallback)
            return str(exc)
        release_memory()
        if self.metrics is not None:
            self.metrics.reloads.labels(outcome="loaded").inc()
        return None

    def _refused(self, error: ArtifactError, fallback: Path | None) -> None:
        log.error("reload refused; the previous model keeps serving", extra={"reason": str(error)})
        if self.metrics is not None:
            self.metrics.reloads.labels(outcome="refused").inc()
        if self.bundle is None and fallback is not None:
            try:
                self.bundle = self._load(fallback, None)
            except ArtifactError as exc:
                log.error("the previous model could not be loaded back", extra={"reason": str(exc)})


def release_memory() -> None:
    """Hand freed model memory back to the system: the C allocator keeps it otherwise."""
    gc.collect()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def server_options(settings: Settings) -> list[tuple[str, int]]:
    """gRPC's own size limit sits above ours, so our parser can name the limit."""
    return [
        ("grpc.so_reuseport", 1),
        ("grpc.max_receive_message_length", 2 * settings.max_message_bytes),
        ("grpc.max_send_message_length", 8 * settings.max_message_bytes),
    ]


def credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS from PEM files; with a client CA, clients must present a certificate."""
    if not settings.tls:
        return None
    pair = (Path(settings.tls_key).read_bytes(), Path(settings.tls_cert).read_bytes())
    client_ca = Path(settings.tls_client_ca).read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


async def serve(
    settings: Settings,
    holder: ModelHolder,
    port: int,
    supervised: bool,
    on_exit: Callable[[], None],
) -> NoReturn:
    """Run one gRPC server until SIGTERM or SIGINT, drain, and exit the process."""
    if settings.metrics_port:
        holder.metrics = metrics.Metrics()
        if holder.bundle is not None:
            holder.metrics.model_loaded(holder.bundle.version, 0.0, None)
    observer = CallObserver(holder.metrics, settings.log_request_text)
    gate = Gate()
    server = grpc.aio.server(options=server_options(settings), interceptors=[gate])
    servicer = TopicStanceServicer(holder, settings, observer, holder.thread)
    server.add_generic_rpc_handlers((rpc_handlers(servicer, settings, observer),))
    health_servicer = health.aio.HealthServicer()
    for name in ("", SERVICE.full_name):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [SERVICE.full_name, health.SERVICE_NAME, reflection.SERVICE_NAME]
    if settings.admin:
        admin = AdminServicer(holder.reload_async, holder.version, _reload_others(supervised))
        pb_grpc.add_TopicStanceAdminServiceServicer_to_server(admin, server)
        names.append(ADMIN_SERVICE)
    reflection.enable_server_reflection(names, server)
    address = f"{settings.host}:{port}"
    tls = credentials(settings)
    bound = server.add_secure_port(address, tls) if tls else server.add_insecure_port(address)
    await server.start()
    loop = asyncio.get_running_loop()
    stopping: asyncio.Future[int] = loop.create_future()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_signal, _first_signal, stopping, stop_signal)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(holder.reload_async()))
    waiter = loop.create_task(_serving_when_loaded(holder, health_servicer))
    log.info("worker listening", extra={"port": bound, "tls": bool(tls)})
    signum = await stopping
    waiter.cancel()
    delay = settings.drain_delay_seconds if signum == signal.SIGTERM else 0.0
    await drain(health_servicer, gate, delay, settings.grace_seconds)
    on_exit()
    logging.shutdown()
    os._exit(0)


def _first_signal(stopping: asyncio.Future[int], signum: int) -> None:
    if not stopping.done():
        stopping.set_result(signum)


async def drain(health_servicer: Any, gate: Gate, delay: float, grace: float) -> None:
    """Leave the rotation without failing a call anyone could not safely retry.

    1. Health turns NOT_SERVING: balancers and clients that check health move away.
    2. For `delay` seconds calls are still answered (a kubelet's preStop sleep).
    3. The gate closes: a new call gets UNAVAILABLE, which clients retry elsewhere;
       calls in flight finish within `grace` seconds.
    4. The process exits with the gRPC server still running. Stopping it
       (grpc.aio Server.stop) would make gRPC core kill every call it has received
       but not yet handed to the application, and every call that crosses its
       GOAWAY, with CANCELLED, which no client may retry; a closed connection is
       UNAVAILABLE to the client instead, and those calls never ran.
    """
    await health_servicer.enter_graceful_shutdown()
    log.info("not serving", extra={"drain_delay_seconds": delay})
    await asyncio.sleep(delay)
    gate.close()
    log.info("draining", extra={"grace_seconds": grace, "in_flight": gate.in_flight})
    if not await gate.idle(grace):
        log.warning("grace period over; calls still in flight", extra={"in_flight": gate.in_flight})
    await asyncio.sleep(FLUSH_SECONDS)
    log.info("worker stopped")


class Gate(grpc.aio.ServerInterceptor):
    """Counts the calls in flight and, once closed, refuses new ones with UNAVAILABLE.

    Health checks always pass (they report NOT_SERVING while draining).
    """

    def __init__(self) -> None:
        self.closed = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def close(self) -> None:
        self.closed = True

    async def idle(self, timeout: float) -> bool:
        """Wait until no call is in flight; False if `timeout` ran out first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(HEALTH_PREFIX):
            return handler
        if self.closed:
            return _REFUSED[(handler.request_streaming, handler.response_streaming)]
        kind = _KINDS[(handler.request_streaming, handler.response_streaming)]
        wrap = self._counted_stream if handler.response_streaming else self._counted_unary
        return handler._replace(**{kind: wrap(getattr(handler, kind))})

    def _enter(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.in_flight += 1
        self._idle.clear()
        context.add_done_callback(self._leave)  # type: ignore[arg-type]  # stub: a class, not a Protocol

    def _leave(self, _context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    def _counted_unary(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        async def counted(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            self._enter(context)
            return await inner(request, context)

        return counted

    def _counted_stream(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        async def counted(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            self._enter(context)
            async with aclosing(inner(request, context)) as responses:
                async for response in responses:
                    yield response

        return counted


REFUSAL = "the server is shutting down: retry on another replica"
HEALTH_PREFIX = f"/{health.SERVICE_NAME}/"
FLUSH_SECONDS = 0.1  # for the last answers to leave the process before it exits
_KINDS = {
    (False, False): "unary_unary",
    (False, True): "unary_stream",
    (True, False): "stream_unary",
    (True, True): "stream_stream",
}


async def _refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNAVAILABLE, REFUSAL)


_REFUSED: dict[tuple[bool, bool], grpc.RpcMethodHandler[Any, Any]] = {
    (False, False): grpc.unary_unary_rpc_method_handler(_refuse),
    (False, True): grpc.unary_stream_rpc_method_handler(_refuse),
    (True, False): grpc.stream_unary_rpc_method_handler(_refuse),
    (True, True): grpc.stream_stream_rpc_method_handler(_refuse),
}


async def _serving_when_loaded(holder: ModelHolder, health_servicer: Any) -> None:
    """SERVING once a model is in use; without one, keep trying to load it."""
    loop = asyncio.get_running_loop()
    while holder.bundle is None:
        await asyncio.sleep(WAIT_POLL_SECONDS)
        try:
            await loop.run_in_executor(holder.thread, holder.load_when_ready)
        except ArtifactError as exc:
            log.info("still waiting for a model", extra={"reason": str(exc)})
    for name in ("", SERVICE.full_name):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("worker serving", extra={"model_version": holder().version})


def _reload_others(supervised: bool) -> Callable[[], None]:
    """After an admin reload in one worker, ask the supervisor to reload them all."""

    def signal_supervisor() -> None:
        if supervised:
            os.kill(os.getppid(), signal.SIGUSR1)

    return signal_supervisor


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (not listen) the port with SO_REUSEPORT so workers can share it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_worker(
    settings: Settings,
    holder: ModelHolder,
    port: int,
    supervised: bool,
    on_exit: Callable[[], None] = lambda: None,
) -> NoReturn:
    """Serve until drained; the process exits from inside (see `drain`)."""
    asyncio.run(serve(settings, holder, port, supervised, on_exit))
    raise AssertionError("serve exits the process")


class Supervisor:
    """Forks the workers, passes signals on, restarts a worker that dies unexpectedly."""

    def __init__(self, settings: Settings, holder: ModelHolder, port: int) -> None:
        self.settings, self.holder, self.port = settings, holder, port
        self.children: dict[int, int] = {}
        self.started: dict[int, float] = {}
        self.stopping = False

    def spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
                signal.signal(sig, signal.SIG_DFL)
            try:
                run_worker(self.settings, self.holder, self.port, supervised=True)
            finally:
                os._exit(1)
        self.children[pid] = slot
        self.started[pid] = time.monotonic()

    def forward(self, signum: int, _frame: object) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True
        passed = signal.SIGHUP if signum == signal.SIGUSR1 else signum
        for pid in self.children:
            with suppress(ProcessLookupError):
                os.kill(pid, passed)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, self.forward)
        for slot in range(self.settings.workers):
            self.spawn(slot)
        failures = crashes = 0
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            slot = self.children.pop(pid)
            lived = time.monotonic() - self.started.pop(pid)
            if self.settings.metrics_port:
                metrics.worker_exited(pid)
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                failures += 1
            if not self.stopping:
                log.error(
                    "worker exited; restarting it", extra={"worker_pid": pid, "exit_code": code}
                )
                # A worker that dies soon after it started is crash-looping: back off.
                # One that had been serving is replaced at once (it forks in ms).
                crashes = crashes + 1 if lived < CRASH_LOOP_SECONDS else 0
                time.sleep(min(5.0, 0.2 * crashes))
                self.spawn(slot)
        return 0 if failures == 0 else 1


def memory_problem(workers: int) -> str | None:
    """Too many workers for the cgroup's memory limit? Said now, not by the OOM killer."""
    limit = memory.cgroup_limit()
    if limit is None:
        return None
    return memory.Budget(limit, memory.resident_bytes(), workers).problem()


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(argv)
    logs.configure(settings.log_level)
    key = signing_key()
    metrics_dir = metrics.prepare() if settings.metrics_port else None
    try:
        holder = ModelHolder(settings.model, key, required=not settings.wait_for_model)
    except ArtifactError as exc:
        log.error("cannot start: no usable model", extra={"reason": str(exc)})
        print(f"topicstance-server: {exc}", file=sys.stderr)
        return 2
    problem = memory_problem(settings.workers) if holder.bundle is not None else None
    if problem:
        log.error("cannot start: not enough memory", extra={"reason": problem})
        print(f"topicstance-server: {problem}", file=sys.stderr)
        return 2
    try:
        reservation = reserve_port(settings.host, settings.port)
    except OSError as exc:
        print(
            f"topicstance-server: cannot listen on {settings.host}:{settings.port}: {exc}",
            file=sys.stderr,
        )
        return 2
    port = reservation.getsockname()[1]
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings.host)
    version = holder.bundle.version if holder.bundle is not None else None
    log.info(
        "serving",
        extra={
            "host": settings.host,
            "port": port,
            "workers": settings.workers,
            "model_version": version,
            "metrics_port": settings.metrics_port or None,
        },
    )

    def finish() -> None:
        reservation.close()
        if metrics_dir is not None:
            metrics.cleanup(metrics_dir)

    try:
        if settings.workers == 1:
            run_worker(settings, holder, port, supervised=False, on_exit=finish)
        return Supervisor(settings, holder, port).run()
    finally:
        finish()


if __name__ == "__main__":
    raise SystemExit(main())
