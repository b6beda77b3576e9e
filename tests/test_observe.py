"""A call's status as the observer records it, without a server: the cases a real
server reaches only by a race (tests/test_hardening.py covers the rest end to end)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from service.metrics import Metrics
from service.observe import CallObserver


class _Context:
    """The part of grpc's servicer context the observer reads."""

    def __init__(self, time_remaining: float | None = None, cancelled: bool = False) -> None:
        self._remaining = time_remaining
        self._cancelled = cancelled

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    def time_remaining(self) -> float | None:
        return self._remaining

    def cancelled(self) -> bool:
        return self._cancelled

    def code(self) -> None:
        return None

    def details(self) -> None:
        return None


class _Handler:
    """A streaming handler that yields 0, 1, 2 and notes whether it was closed."""

    def __init__(self) -> None:
        self.closed = False

    async def __call__(self, requests: Any, context: Any) -> AsyncGenerator[int, None]:
        try:
            for number in range(3):
                yield number
        finally:
            self.closed = True


def _observed_stream(
    handler: _Handler | None = None, metrics: Metrics | None = None, context: Any = None
) -> Any:
    """The observed handler's response stream, as grpc would iterate it."""
    requests: Any = None
    observer = CallObserver(metrics)
    chosen: Any = context or _Context()
    return observer.stream("StreamClassifyTexts", handler or _Handler())(requests, chosen)


async def _leave_after_one(stream: Any) -> None:
    assert await anext(stream) == 0
    await stream.aclose()


def _logged_codes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [str(getattr(r, "code", "")) for r in caplog.records if r.getMessage() == "rpc"]


def test_a_stream_closed_before_its_end_counts_as_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="topicstance.calls"):
        asyncio.run(_leave_after_one(_observed_stream()))
    assert _logged_codes(caplog) == [grpc.StatusCode.CANCELLED.name]


def test_a_stream_closed_early_is_counted_once_and_closes_its_handler() -> None:
    registry = CollectorRegistry()
    handler, metrics = _Handler(), Metrics(registry)
    # The context reports the cancel too, as it may by the time the call is logged.
    stream = _observed_stream(handler, metrics, _Context(cancelled=True))

    async def leave() -> bool:
        await _leave_after_one(stream)
        return handler.closed  # now, not once the event loop collects the generator

    assert asyncio.run(leave())
    assert registry.get_sample_value("topicstance_cancelled_total") == 1.0
    labels = {"method": "StreamClassifyTexts", "code": "CANCELLED"}
    assert registry.get_sample_value("topicstance_requests_total", labels) == 1.0
    latency = {"method": "StreamClassifyTexts"}
    assert registry.get_sample_value("topicstance_request_seconds_count", latency) == 1.0


def test_a_stream_closed_past_its_deadline_counts_as_deadline_exceeded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = _observed_stream(context=_Context(time_remaining=0.0))
    with caplog.at_level(logging.DEBUG, logger="topicstance.calls"):
        asyncio.run(_leave_after_one(stream))
    assert _logged_codes(caplog) == [grpc.StatusCode.DEADLINE_EXCEEDED.name]


def test_a_stream_read_to_its_end_is_ok(caplog: pytest.LogCaptureFixture) -> None:
    async def read_all() -> list[int]:
        return [number async for number in _observed_stream()]

    with caplog.at_level(logging.DEBUG, logger="topicstance.calls"):
        assert asyncio.run(read_all()) == [0, 1, 2]
    assert _logged_codes(caplog) == [grpc.StatusCode.OK.name]
