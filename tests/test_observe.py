"""A call's status as the observer records it, without a server: the cases a real
server reaches only by a race (tests/test_hardening.py covers the rest end to end)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from service.observe import CallObserver


class _Context:
    """The part of grpc's servicer context the observer reads; never cancelled."""

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    def time_remaining(self) -> None:
        return None

    def cancelled(self) -> bool:
        return False

    def code(self) -> None:
        return None

    def details(self) -> None:
        return None


async def _three(requests: Any, context: Any) -> AsyncIterator[int]:
    for number in range(3):
        yield number


def _observed_stream() -> Any:
    """The observed handler's response stream, as grpc would iterate it."""
    requests: Any = None
    context: Any = _Context()
    return CallObserver(None).stream("StreamClassifyTexts", _three)(requests, context)


def _logged_codes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [str(getattr(r, "code", "")) for r in caplog.records if r.getMessage() == "rpc"]


def test_a_stream_closed_before_its_end_counts_as_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def leave_after_one() -> None:
        stream = _observed_stream()
        assert await anext(stream) == 0
        await stream.aclose()

    with caplog.at_level(logging.DEBUG, logger="topicstance.calls"):
        asyncio.run(leave_after_one())
    assert _logged_codes(caplog) == [grpc.StatusCode.CANCELLED.name]


def test_a_stream_read_to_its_end_is_ok(caplog: pytest.LogCaptureFixture) -> None:
    async def read_all() -> list[int]:
        return [number async for number in _observed_stream()]

    with caplog.at_level(logging.DEBUG, logger="topicstance.calls"):
        assert asyncio.run(read_all()) == [0, 1, 2]
    assert _logged_codes(caplog) == [grpc.StatusCode.OK.name]
