"""The gRPC servicer: validates requests, calls the model, translates the results.

It holds no ML logic: sections come from service.sections, predictions from the
model bundle, and this module only checks limits and builds messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from service.batching import Batcher, ModelSource
from service.bundle import Evidence, ModelBundle, SectionPrediction
from service.config import Settings
from service.sections import Section, single_section, split_sections
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc


class RequestError(Exception):
    """A request that breaks a rule; becomes a status with a BadRequest detail."""

    def __init__(self, code: grpc.StatusCode, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.code, self.field, self.description = code, field, description

    def to_status(self) -> grpc.Status:
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=self.field, description=self.description
                )
            ]
        )
        status = status_pb2.Status(code=getattr(code_pb2, self.code.name), message=str(self))
        status.details.add().Pack(detail)
        converted: grpc.Status = rpc_status.to_status(status)
        return converted


class Limits:
    """The request rules, each failing with the field and the limit named."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def text(self, field: str, text: str, limit: int | None = None) -> None:
        limit = limit or self.settings.max_text_chars
        if len(text) > limit:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                field,
                f"is {len(text)} characters; the limit is {limit}",
            )
        if not any(ch.isalnum() for ch in text):
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, field, "must contain at least one letter or digit"
            )

    def heading(self, field: str, heading: str) -> None:
        if len(heading) > self.settings.max_text_chars:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                field,
                f"is {len(heading)} characters; the limit is {self.settings.max_text_chars}",
            )
        if "\n" in heading or "\r" in heading:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, field, "must be a single line")

    def batch(self, field: str, count: int) -> None:
        if count == 0:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, field, "must hold at least one text"
            )
        if count > self.settings.max_batch_texts:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                field,
                f"holds {count} texts; the limit is {self.settings.max_batch_texts}",
            )

    def sections(self, field: str, count: int) -> None:
        if count > self.settings.max_sections:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                field,
                f"splits into {count} sections; the limit is {self.settings.max_sections}",
            )


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: RequestError) -> NoReturn:
    await context.abort_with_status(error.to_status())
    raise AssertionError("abort_with_status returns only by raising")


class TopicStanceServicer(pb_grpc.TopicStanceServiceServicer):
    """Implements topicstance.v1.TopicStanceService on top of a model source."""

    def __init__(self, model: ModelSource, settings: Settings) -> None:
        self._model = model
        self._settings = settings
        self._limits = Limits(settings)
        self._batcher = Batcher(
            model, settings.max_batch_sections, settings.max_batch_wait_ms / 1000
        )

    async def ClassifyText(
        self, request: pb.ClassifyTextRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ClassifyTextResponse:
        try:
            section = self._text_section(request.text, request.heading, "text", "heading")
        except RequestError as error:
            await _abort(context, error)
        results = await self._classify([section], in_heading=True, explain=request.explain)
        return pb.ClassifyTextResponse(result=results[0])

    async def ClassifyDocument(
        self, request: pb.ClassifyDocumentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ClassifyDocumentResponse:
        try:
            self._limits.text("text", request.text, self._settings.max_document_chars)
            sections = split_sections(request.text)
            self._limits.sections("text", len(sections))
        except RequestError as error:
            await _abort(context, error)
        results = await self._classify(sections, in_heading=False, explain=request.explain)
        return pb.ClassifyDocumentResponse(sections=results)

    async def BatchClassifyTexts(
        self, request: pb.BatchClassifyTextsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.BatchClassifyTextsResponse:
        try:
            self._limits.batch("texts", len(request.texts))
            sections = [
                self._text_section(text, "", f"texts[{index}]", "")
                for index, text in enumerate(request.texts)
            ]
        except RequestError as error:
            await _abort(context, error)
        results = await self._classify(sections, in_heading=False, explain=request.explain)
        return pb.BatchClassifyTextsResponse(results=results)

    async def StreamClassifyTexts(
        self,
        requests: AsyncIterator[pb.StreamClassifyTextsRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[pb.StreamClassifyTextsResponse]:
        """Requests that arrive while others are classified are classified together.

        Answers keep the order of the requests; a bad request is answered with an
        error status only after every request before it has its answer.
        """
        pending: asyncio.Queue[pb.StreamClassifyTextsRequest | None] = asyncio.Queue()
        reader = asyncio.create_task(_read_all(requests, pending))
        try:
            while batch := await _drain(pending, self._settings.max_batch_sections):
                sections, error = self._stream_sections(batch)
                for run in _runs_by_explain(batch[: len(sections)]):
                    results = await self._classify(
                        [sections[i] for i in run], in_heading=True, explain=batch[run[0]].explain
                    )
                    for index, result in zip(run, results, strict=True):
                        yield pb.StreamClassifyTextsResponse(
                            request_id=batch[index].request_id, result=result
                        )
                if error is not None:
                    await _abort(context, error)
        finally:
            reader.cancel()

    async def GetModelInfo(
        self, request: pb.GetModelInfoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetModelInfoResponse:
        return model_info(self._model(), self._settings.limits())

    def _stream_sections(
        self, batch: Sequence[pb.StreamClassifyTextsRequest]
    ) -> tuple[list[Section], RequestError | None]:
        """The sections of the valid requests before the first invalid one, and its error."""
        sections = []
        for request in batch:
            label = f"request_id {request.request_id!r}"
            try:
                sections.append(
                    self._text_section(
                        request.text, request.heading, f"text ({label})", f"heading ({label})"
                    )
                )
            except RequestError as error:
                return sections, error
        return sections, None

    def _text_section(
        self, text: str, heading: str, text_field: str, heading_field: str
    ) -> Section:
        self._limits.text(text_field, text)
        if heading:
            self._limits.heading(heading_field, heading)
        return single_section(text, heading)

    async def _classify(
        self, sections: Sequence[Section], in_heading: bool, explain: bool
    ) -> list[pb.SectionResult]:
        bundle, predictions = await self._batcher.predict(
            [s.model_text for s in sections], explain=explain
        )
        return [
            section_result(section, prediction, bundle.version, in_heading)
            for section, prediction in zip(sections, predictions, strict=True)
        ]


def _runs_by_explain(batch: Sequence[pb.StreamClassifyTextsRequest]) -> list[list[int]]:
    """Consecutive requests with the same `explain` flag, as runs of indexes."""
    runs: list[list[int]] = []
    for index, request in enumerate(batch):
        if runs and batch[runs[-1][0]].explain == request.explain:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


async def _read_all(
    requests: AsyncIterator[pb.StreamClassifyTextsRequest],
    pending: asyncio.Queue[pb.StreamClassifyTextsRequest | None],
) -> None:
    try:
        async for request in requests:
            pending.put_nowait(request)
    finally:
        pending.put_nowait(None)


async def _drain(
    pending: asyncio.Queue[pb.StreamClassifyTextsRequest | None], limit: int
) -> list[pb.StreamClassifyTextsRequest]:
    """Wait for one request, then take whatever else is waiting (up to `limit`).

    An empty list means the client closed its side of the stream.
    """
    first = await pending.get()
    if first is None:
        return []
    batch = [first]
    while len(batch) < limit and not pending.empty():
        item = pending.get_nowait()
        if item is None:
            pending.put_nowait(None)
            break
        batch.append(item)
    return batch


def section_result(
    section: Section, prediction: SectionPrediction, version: str, in_heading: bool
) -> pb.SectionResult:
    """The message for one section; mention offsets mapped back to the request."""
    return pb.SectionResult(
        heading=section.heading,
        start=section.start,
        end=section.end,
        primary_topic=prediction.primary_topic,
        topics=prediction.topics,
        topic_scores=_scores(prediction.topic_scores),
        stances=[
            pb.ActorStance(
                actor=stance.actor,
                stance=stance.stance,
                scores=_scores(stance.scores),
                mentions=[
                    _mention(section, m.start, m.end, m.text, in_heading) for m in stance.mentions
                ],
                evidence=_evidence(stance.evidence),
            )
            for stance in prediction.stances
        ],
        model_version=version,
        topic_evidence=_evidence(prediction.topic_evidence),
    )


def _evidence(terms: Iterable[Evidence]) -> list[pb.EvidenceTerm]:
    return [pb.EvidenceTerm(term=e.term, weight=e.weight) for e in terms]


def _mention(section: Section, start: int, end: int, text: str, in_heading: bool) -> pb.Mention:
    return pb.Mention(
        start=section.source_offset(start),
        end=section.source_offset(end),
        text=text,
        in_heading=in_heading and section.in_heading(start),
    )


def _scores(pairs: Iterable[tuple[str, float]]) -> list[pb.LabelScore]:
    return [pb.LabelScore(label=label, score=score) for label, score in pairs]


def model_info(bundle: ModelBundle, limits: Mapping[str, int]) -> pb.GetModelInfoResponse:
    manifest = bundle.manifest
    created = timestamp_pb2.Timestamp()
    created.FromDatetime(datetime.fromisoformat(manifest["created"].replace("Z", "+00:00")))
    return pb.GetModelInfoResponse(
        model_version=bundle.version,
        create_time=created,
        topics=bundle.topics,
        none_topic=bundle.none_topic,
        actors=bundle.actors,
        stances=bundle.stances,
        topic_thresholds=_scores(
            (t, float(v)) for t, v in zip(bundle.topics, bundle.thresholds, strict=True)
        ),
        metrics={
            **flatten_numbers(manifest.get("metrics", {})),
            "artifact_bytes": float(manifest.get("artifact_bytes", 0)),
        },
        library_versions=manifest.get("library_versions", {}),
        limits=dict(limits),
        dataset_sha256=manifest.get("dataset_sha256", ""),
    )


def flatten_numbers(tree: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested dictionaries, keyed by their dotted path."""
    flat: dict[str, float] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_numbers(value, path + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[path] = float(value)
    return flat
