"""Every call observed: metrics, one log line, a request id, and no stack traces out.

A handler that fails unexpectedly answers INTERNAL with the request id and logs
the error; the client never sees a traceback. A call whose client left counts as
cancelled (or as past its deadline) and stops at its next await.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import Any

import grpc

from service.metrics import Metrics
from topicstance.bundle import ModelUnavailableError, SectionPrediction

log = logging.getLogger("topicstance.calls")
REQUEST_ID = "x-request-id"

Context = grpc.aio.ServicerContext[Any, Any]
Unary = Callable[[Any, Context], Awaitable[Any]]
Streaming = Callable[[AsyncIterator[Any], Context], AsyncGenerator[Any, None]]


def request_id(context: Context) -> str:
    """The client's x-request-id, or a new one; echoed back in trailing metadata."""
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID and isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return uuid.uuid4().hex[:16]


class CallObserver:
    """Wraps handlers with metrics and logging; `metrics` may be off."""

    def __init__(self, metrics: Metrics | None, log_text: bool = False) -> None:
        self._metrics = metrics
        self._log_text = log_text

    def predicted(self, predictions: Sequence[SectionPrediction]) -> None:
        if self._metrics is not None:
            self._metrics.predicted(
                (p.primary_topic for p in predictions),
                ((s.actor, s.stance) for p in predictions for s in p.stances),
            )

    def unary(self, method: str, handler: Unary) -> Unary:
        async def observed(request: Any, context: Context) -> Any:
            async with _Call(self, method, request, context):
                return await handler(request, context)

        return observed

    def stream(self, method: str, handler: Streaming) -> Streaming:
        async def observed(
            requests: AsyncIterator[Any], context: Context
        ) -> AsyncGenerator[Any, None]:
            # aclosing: a stream closed early closes the handler too, so its cleanup (its
            # finally blocks: the stream's reader task) runs now, not when it is collected.
            # An error in that cleanup replaces the GeneratorExit (the call ends INTERNAL).
            async with (
                _Call(self, method, None, context),
                aclosing(handler(requests, context)) as responses,
            ):
                async for response in responses:
                    yield response

        return observed


class _Call:
    """One call's timing, status and log line: entered around the handler, it sees
    how the call ends (an error, a cancel, a deadline) and records it on exit."""

    def __init__(self, observer: CallObserver, method: str, request: Any, context: Context) -> None:
        self.observer, self.method, self.request, self.context = observer, method, request, context
        self.started = time.perf_counter()
        self.id = request_id(context)
        self.code = grpc.StatusCode.OK
        context.set_trailing_metadata(((REQUEST_ID, self.id),))

    async def __aenter__(self) -> _Call:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any
    ) -> None:
        try:
            if error is not None:
                await self.failed(error)
        finally:
            self.finish()

    async def failed(self, error: BaseException) -> None:
        """Record why the call ended; turn unexpected errors into a clean status.

        A response stream closed before its end (GeneratorExit) was left by its client:
        nothing else closes it early. Counting it does not wait for the context to
        report the cancel, which it may not yet do (our reading of a CI failure).
        """
        if isinstance(error, asyncio.CancelledError | GeneratorExit):
            remaining = self.context.time_remaining()
            past_deadline = remaining is not None and remaining <= 0
            self.code = (
                grpc.StatusCode.DEADLINE_EXCEEDED if past_deadline else grpc.StatusCode.CANCELLED
            )
            if self.observer._metrics is not None:
                self.observer._metrics.cancelled.inc()
        elif isinstance(error, grpc.aio.AbortError):
            self.code = self.context.code() or grpc.StatusCode.UNKNOWN
        elif isinstance(error, ModelUnavailableError):
            self.code = grpc.StatusCode.UNAVAILABLE
            await self.context.abort(self.code, str(error))
        elif isinstance(error, Exception):
            self.code = grpc.StatusCode.INTERNAL
            log.error(
                "unexpected error",
                exc_info=error,
                extra={"request_id": self.id, "method": self.method},
            )
            await self.context.abort(
                self.code, f"internal error (request id {self.id}); the server logged the details"
            )

    def finish(self) -> None:
        seconds = time.perf_counter() - self.started
        metrics = self.observer._metrics
        if self.code is grpc.StatusCode.OK and self.context.cancelled():
            self.code = grpc.StatusCode.CANCELLED  # a stream the client cancelled ends quietly
            if metrics is not None:
                metrics.cancelled.inc()
        if metrics is not None:
            metrics.requests.labels(method=self.method, code=self.code.name).inc()
            metrics.latency.labels(method=self.method).observe(seconds)
        level = logging.DEBUG if self.code in _QUIET else logging.WARNING
        if log.isEnabledFor(level):
            entry: dict[str, Any] = {
                "method": self.method,
                "code": self.code.name,
                "ms": round(seconds * 1000, 2),
                "request_id": self.id,
            }
            details = self.context.details() if self.code is not grpc.StatusCode.OK else None
            if details:
                entry["details"] = details
            if self.observer._log_text and self.request is not None:
                entry["request"] = str(self.request)[:2000]
            log.log(level, "rpc", extra=entry)


_QUIET = (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED)
