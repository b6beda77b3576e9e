"""Micro-batching: sections from concurrent calls in one worker share one predict call.

scikit-learn pays a fixed cost per call (validation, one pass per feature block),
so 32 single-text calls cost far more one by one than as one batch of 32. The
batcher runs on the event loop: a batch starts `max_wait` seconds after its
first call arrives (or at once when `max_batch` sections are waiting); while it
is being predicted, new calls queue up for the next one.
A call whose client has gone (deadline passed, cancelled) is dropped before it
costs anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.bundle import ModelBundle, SectionPrediction

ModelSource = Callable[[], ModelBundle]


@dataclass
class _Job:
    texts: Sequence[str]
    explain: bool
    future: asyncio.Future[tuple[ModelBundle, list[SectionPrediction]]]


class Batcher:
    """Collects texts from concurrent calls and predicts them together."""

    def __init__(self, model: ModelSource, max_batch: int, max_wait: float) -> None:
        self._model = model
        self._max_batch = max(1, max_batch)
        self._max_wait = max_wait
        self._queue: list[_Job] = []
        self._waiting = 0
        self._timer: asyncio.TimerHandle | None = None

    async def predict(
        self, texts: Sequence[str], explain: bool
    ) -> tuple[ModelBundle, list[SectionPrediction]]:
        """The predictions for `texts`, and the model that made them."""
        if self._max_batch == 1 or len(texts) >= self._max_batch:
            bundle = self._model()
            return bundle, bundle.predict(texts, explain=explain)
        loop = asyncio.get_running_loop()
        job = _Job(texts, explain, loop.create_future())
        self._queue.append(job)
        self._waiting += len(texts)
        if self._waiting >= self._max_batch:
            self._schedule(0.0)
        elif self._timer is None:
            self._schedule(self._max_wait)
        return await job.future

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._run)

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

    def _run(self) -> None:
        self._timer = None
        jobs = self._take()
        try:
            bundle = self._model()
            for explain in (False, True):
                group = [job for job in jobs if job.explain is explain]
                if group:
                    self._predict(bundle, group, explain)
        finally:
            if self._queue:  # they waited while this batch ran
                self._schedule(0.0)

    @staticmethod
    def _predict(bundle: ModelBundle, jobs: list[_Job], explain: bool) -> None:
        texts = [text for job in jobs for text in job.texts]
        try:
            predictions = bundle.predict(texts, explain=explain)
        except Exception as exc:  # handed to each caller, who turns it into a status
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        start = 0
        for job in jobs:
            end = start + len(job.texts)
            if not job.future.done():
                job.future.set_result((bundle, predictions[start:end]))
            start = end
