"""The gRPC servicer: validates requests, calls the model, translates the results.

It holds no ML logic: documents are read by the core (topicstance.documents, on
threads of their own), predictions come from the model bundle (through the
micro-batcher), and this module only checks limits, builds messages and wires the
methods to their safe request parsers.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime
from typing import Any, NoReturn

import grpc
from google.protobuf import timestamp_pb2

from service.batching import Batcher, ModelSource
from service.config import Settings
from service.observe import CallObserver
from service.validation import InvalidRequest, Limits, RequestError, parser
from topicstance.bundle import ModelBundle, SectionPrediction
from topicstance.documents import (
    Document,
    DocumentError,
    DocumentSection,
    HtmlLimits,
    LimitError,
    detect_format,
    read_document,
)
from topicstance.explain import Evidence
from topicstance.sections import Section, single_section
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["TopicStanceService"]
StreamItem = pb.StreamClassifyTextsRequest | InvalidRequest
FORMATS = {
    pb.DOCUMENT_FORMAT_UNSPECIFIED: "",
    pb.DOCUMENT_FORMAT_PLAIN_TEXT: "plain_text",
    pb.DOCUMENT_FORMAT_MARKDOWN: "markdown",
    pb.DOCUMENT_FORMAT_HTML: "html",
}
# Threads that extract and read documents, so a slow page never blocks the event loop.
DOCUMENT_THREADS = 2


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: RequestError) -> NoReturn:
    await context.abort_with_status(error.to_status(tuple(context.trailing_metadata() or ())))
    raise AssertionError("abort_with_status returns only by raising")


async def _valid(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """Answer a request that did not parse with its error."""
    if isinstance(request, InvalidRequest):
        await _abort(context, request.error)


class TopicStanceServicer(pb_grpc.TopicStanceServiceServicer):
    """Implements topicstance.v1.TopicStanceService on top of a model source."""

    def __init__(
        self,
        model: ModelSource,
        settings: Settings,
        observer: CallObserver | None,
        model_thread: Executor,
    ) -> None:
        self._settings = settings
        self._observer = observer
        self._limits = Limits(settings)
        self._model = model
        self._html = HtmlLimits(settings.max_html_chars, settings.max_html_depth)
        self._documents = ThreadPoolExecutor(DOCUMENT_THREADS, thread_name_prefix="documents")
        self._batcher = Batcher(
            model, settings.max_batch_sections, settings.max_batch_wait_ms / 1000, model_thread
        )

    async def ClassifyText(
        self, request: pb.ClassifyTextRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ClassifyTextResponse:
        await _valid(request, context)
        try:
            section = self._text_section(request.text, request.heading, "text", "heading")
        except RequestError as error:
            await _abort(context, error)
        results = await self._classify([section], in_heading=True, explain=request.explain)
        return pb.ClassifyTextResponse(result=results[0])

    async def ClassifyDocument(
        self, request: pb.ClassifyDocumentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ClassifyDocumentResponse:
        await _valid(request, context)
        try:
            document = await self._read(request)
            self._limits.sections("text", len(document.sections))
        except RequestError as error:
            await _abort(context, error)
        results = await self._classify(document.sections, in_heading=False, explain=request.explain)
        return pb.ClassifyDocumentResponse(
            sections=results,
            title=document.title,
            text=document.text,
            skipped=[
                pb.SkippedSpan(start=s.start, end=s.end, kind=s.kind) for s in document.skipped
            ],
        )

    async def _read(self, request: pb.ClassifyDocumentRequest) -> Document:
        """The document read as an article, on the document threads."""
        if request.format not in FORMATS:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, "format", f"has no value {request.format}"
            )
        text = request.text
        format = FORMATS[request.format] or detect_format(text)
        html = format == "html"
        limit = self._settings.max_html_chars if html else self._settings.max_document_chars
        if html and len(text) > limit:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "text",
                f"is {len(text)} characters of HTML; the limit is {limit} (max_html_chars)",
            )
        self._limits.text("text", text, limit)
        reader = self._model().reader
        loop = asyncio.get_running_loop()
        try:
            document = await loop.run_in_executor(
                self._documents, read_document, text, format, reader, self._html
            )
        except LimitError as error:
            raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, "text", str(error)) from error
        except DocumentError as error:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "text", str(error)) from error
        if html and len(document.text) > self._settings.max_document_chars:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "text",
                f"holds an article of {len(document.text)} characters; the limit is "
                f"{self._settings.max_document_chars} (max_document_chars)",
            )
        return document

    async def BatchClassifyTexts(
        self, request: pb.BatchClassifyTextsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.BatchClassifyTextsResponse:
        await _valid(request, context)
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
        requests: AsyncIterator[StreamItem],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncGenerator[pb.StreamClassifyTextsResponse, None]:
        """Requests that arrive while others are classified are classified together.

        Answers keep the order of the requests; a bad request is answered with an
        error status only after every request before it has its answer.
        """
        pending: asyncio.Queue[StreamItem | None] = asyncio.Queue()
        reader = asyncio.create_task(_read_all(requests, pending))
        try:
            while batch := await _drain(pending, self._settings.max_batch_sections):
                valid, sections, error = self._stream_sections(batch)
                for run in _runs_by_explain(valid):
                    results = await self._classify(
                        [sections[i] for i in run], in_heading=True, explain=valid[run[0]].explain
                    )
                    for index, result in zip(run, results, strict=True):
                        yield pb.StreamClassifyTextsResponse(
                            request_id=valid[index].request_id, result=result
                        )
                if error is not None:
                    await _abort(context, error)
        finally:
            reader.cancel()

    async def GetModelInfo(
        self, request: pb.GetModelInfoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetModelInfoResponse:
        await _valid(request, context)
        limits = self._settings.limits()
        return await self._batcher.with_model(lambda bundle: model_info(bundle, limits))

    def _stream_sections(
        self, batch: Sequence[StreamItem]
    ) -> tuple[list[pb.StreamClassifyTextsRequest], list[Section], RequestError | None]:
        """The valid requests before the first invalid one, their sections, and its error."""
        valid: list[pb.StreamClassifyTextsRequest] = []
        sections: list[Section] = []
        for request in batch:
            if isinstance(request, InvalidRequest):
                return valid, sections, request.error
            label = f"request_id {request.request_id!r}"
            try:
                section = self._text_section(
                    request.text, request.heading, f"text ({label})", f"heading ({label})"
                )
            except RequestError as error:
                return valid, sections, error
            valid.append(request)
            sections.append(section)
        return valid, sections, None

    def _text_section(
        self, text: str, heading: str, text_field: str, heading_field: str
    ) -> Section:
        self._limits.text(text_field, text)
        if heading:
            self._limits.heading(heading_field, heading)
        return single_section(text, heading)

    async def _classify(
        self, sections: Sequence[Section | DocumentSection], in_heading: bool, explain: bool
    ) -> list[pb.SectionResult]:
        """Classify in chunks of at most one batch: a call whose client has gone
        (deadline passed, cancelled) is cancelled at the next chunk, not at the end."""
        results = []
        size = self._settings.max_batch_sections
        for start in range(0, len(sections), size):
            chunk = sections[start : start + size]
            bundle, predictions = await self._batcher.predict(
                [s.model_text for s in chunk], explain=explain
            )
            if self._observer is not None:
                self._observer.predicted(predictions)
            results += [
                section_result(section, prediction, bundle.version, in_heading)
                for section, prediction in zip(chunk, predictions, strict=True)
            ]
        return results


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
    requests: AsyncIterator[StreamItem],
    pending: asyncio.Queue[StreamItem | None],
) -> None:
    try:
        async for request in requests:
            pending.put_nowait(request)
    finally:
        pending.put_nowait(None)


async def _drain(pending: asyncio.Queue[StreamItem | None], limit: int) -> list[StreamItem]:
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


class AdminServicer(pb_grpc.TopicStanceAdminServiceServicer):
    """ReloadModel: verify and swap the model here, then have every other worker follow."""

    def __init__(
        self,
        reload: Callable[[], Awaitable[str | None]],
        version: Callable[[], str],
        reload_others: Callable[[], None],
    ) -> None:
        self._reload, self._version, self._reload_others = reload, version, reload_others

    async def ReloadModel(
        self, request: pb.ReloadModelRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ReloadModelResponse:
        error = await self._reload()
        if error is None:
            self._reload_others()
        return pb.ReloadModelResponse(
            reloaded=error is None, model_version=self._version(), error=error or ""
        )


def section_result(
    section: Section | DocumentSection,
    prediction: SectionPrediction,
    version: str,
    in_heading: bool,
) -> pb.SectionResult:
    """The message for one section; mention offsets mapped back to the request."""
    parts = section.parts if isinstance(section, DocumentSection) else ()
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
        language=prediction.language,
        unsupported_language=prediction.unsupported_language,
        parts=[pb.TextSpan(start=start, end=end) for start, end in parts],
    )


def _evidence(terms: Iterable[Evidence]) -> list[pb.EvidenceTerm]:
    return [pb.EvidenceTerm(term=e.term, weight=e.weight) for e in terms]


def _mention(
    section: Section | DocumentSection, start: int, end: int, text: str, in_heading: bool
) -> pb.Mention:
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
        languages=bundle.languages,
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


def rpc_handlers(
    servicer: TopicStanceServicer, settings: Settings, observer: CallObserver
) -> grpc.GenericRpcHandler:
    """The service's methods with parsers that never raise and calls that are observed.

    gRPC's own limit is set well above `max_message_bytes` (see server wiring), so a
    request over the limit still reaches the parser and gets a named error.
    """
    handlers = {}
    for method in SERVICE.methods:
        request_type = pb.DESCRIPTOR.message_types_by_name[method.input_type.name]
        response_type = pb.DESCRIPTOR.message_types_by_name[method.output_type.name]
        request_class = getattr(pb, request_type.name)
        response_class = getattr(pb, response_type.name)
        parse = parser(request_class, settings.max_message_bytes)
        implementation = getattr(servicer, method.name)
        if method.client_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                observer.stream(method.name, implementation),
                request_deserializer=parse,
                response_serializer=response_class.SerializeToString,
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                observer.unary(method.name, implementation),
                request_deserializer=parse,
                response_serializer=response_class.SerializeToString,
            )
    return grpc.method_handlers_generic_handler(SERVICE.full_name, handlers)
