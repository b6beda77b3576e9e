"""Micro-batching: sections from concurrent calls in one worker share one predict call.

scikit-learn pays a fixed cost per call (validation, one pass per feature block),
so 32 single-text calls cost far more one by one than as one batch of 32. A
batch starts `max_wait` seconds after its first call arrives (or at once when
`max_batch` sections are waiting); while it is being predicted, new calls queue
up for the next one.
A call whose client has gone (deadline passed, cancelled) is dropped before it
costs anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

from topicstance.bundle import ModelBundle, SectionPrediction

ModelSource = Callable[[], ModelBundle]
T = TypeVar("T")


@dataclass
class _Job:
    texts: Sequence[str]
    explain: bool
    future: asyncio.Future[tuple[ModelBundle, list[SectionPrediction]]]


class Batcher:
    """Collects texts from concurrent calls and predicts them together.

    Predictions run on the model thread it is given, so the event loop stays free to
    accept calls, answer health checks and handle signals while a batch is computed.
    The model is looked up on that thread, so whatever else runs there (a reload)
    never overlaps a prediction.
    """

    def __init__(
        self, model: ModelSource, max_batch: int, max_wait: float, thread: Executor
    ) -> None:
        self._model = model
        self._max_batch = max(1, max_batch)
        self._max_wait = max_wait
        self._queue: list[_Job] = []
        self._waiting = 0
        self._timer: asyncio.TimerHandle | None = None
        self._running = False
        self._thread = thread

    async def predict(
        self, texts: Sequence[str], explain: bool
    ) -> tuple[ModelBundle, list[SectionPrediction]]:
        """The predictions for `texts`, and the model that made them."""
        loop = asyncio.get_running_loop()
        job = _Job(texts, explain, loop.create_future())
        self._queue.append(job)
        self._waiting += len(texts)
        if not self._running:
            full = self._waiting >= self._max_batch or self._max_batch == 1
            if full or self._timer is None:
                self._schedule(0.0 if full else self._max_wait)
        return await job.future

    async def with_model(self, use: Callable[[ModelBundle], T]) -> T:
        """`use(model)`, run on the model thread between batches."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: use(self._model()))

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, lambda: loop.create_task(self._run()))

    def _take(self) -> list[_Job]:
        """Waiting jobs up to the batch size (at least one), skipping abandoned ones."""
        taken: list[_Job] = []
        size = 0
        while self._queue:
            job = self._queue[0]
            if job.future.done():
                self._waiting -= len(self._queue.pop(0).texts)
                continue
            if taken and size + len(job.texts) > self._max_batch:
                break
            taken.append(self._queue.pop(0))
            size += len(job.texts)
        self._waiting -= size
        return taken

    async def _run(self) -> None:
        self._timer = None
        self._running = True
        try:
            jobs = self._take()
            for explain in (False, True):
                group = [job for job in jobs if job.explain is explain]
                if group:
                    await self._predict(group, explain)
        finally:
            self._running = False
            if self._queue:  # they waited while this batch ran
                self._schedule(0.0)

    async def _predict(self, jobs: list[_Job], explain: bool) -> None:
        texts = [text for job in jobs for text in job.texts]

        def predict(bundle: ModelBundle) -> tuple[ModelBundle, list[SectionPrediction]]:
            return bundle, bundle.predict(texts, explain=explain)

        try:
            bundle, predictions = await self.with_model(predict)
        except Exception as exc:  # no model yet, or a failure: each caller gets the reason
            _fail(jobs, exc)
            return
        start = 0
        for job in jobs:
            end = start + len(job.texts)
            if not job.future.done():
                job.future.set_result((bundle, predictions[start:end]))
            start = end


def _fail(jobs: Sequence[_Job], error: Exception) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(error)
