import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DocumentFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOCUMENT_FORMAT_UNSPECIFIED: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_PLAIN_TEXT: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_MARKDOWN: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_HTML: _ClassVar[DocumentFormat]
DOCUMENT_FORMAT_UNSPECIFIED: DocumentFormat
DOCUMENT_FORMAT_PLAIN_TEXT: DocumentFormat
DOCUMENT_FORMAT_MARKDOWN: DocumentFormat
DOCUMENT_FORMAT_HTML: DocumentFormat

class ClassifyTextRequest(_message.Message):
    __slots__ = ("text", "heading", "explain")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    HEADING_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    text: str
    heading: str
    explain: bool
    def __init__(self, text: _Optional[str] = ..., heading: _Optional[str] = ..., explain: _Optional[bool] = ...) -> None: ...

class ClassifyTextResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: SectionResult
    def __init__(self, result: _Optional[_Union[SectionResult, _Mapping]] = ...) -> None: ...

class ClassifyDocumentRequest(_message.Message):
    __slots__ = ("text", "explain", "format")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    text: str
    explain: bool
    format: DocumentFormat
    def __init__(self, text: _Optional[str] = ..., explain: _Optional[bool] = ..., format: _Optional[_Union[DocumentFormat, str]] = ...) -> None: ...

class ClassifyDocumentResponse(_message.Message):
    __slots__ = ("sections", "title", "text", "skipped")
    SECTIONS_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    sections: _containers.RepeatedCompositeFieldContainer[SectionResult]
    title: str
    text: str
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedSpan]
    def __init__(self, sections: _Optional[_Iterable[_Union[SectionResult, _Mapping]]] = ..., title: _Optional[str] = ..., text: _Optional[str] = ..., skipped: _Optional[_Iterable[_Union[SkippedSpan, _Mapping]]] = ...) -> None: ...

class SkippedSpan(_message.Message):
    __slots__ = ("start", "end", "kind")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    kind: str
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ..., kind: _Optional[str] = ...) -> None: ...

class TextSpan(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class BatchClassifyTextsRequest(_message.Message):
    __slots__ = ("texts", "explain")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    explain: bool
    def __init__(self, texts: _Optional[_Iterable[str]] = ..., explain: _Optional[bool] = ...) -> None: ...

class BatchClassifyTextsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SectionResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SectionResult, _Mapping]]] = ...) -> None: ...

class StreamClassifyTextsRequest(_message.Message):
    __slots__ = ("request_id", "text", "heading", "explain")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    HEADING_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    text: str
    heading: str
    explain: bool
    def __init__(self, request_id: _Optional[str] = ..., text: _Optional[str] = ..., heading: _Optional[str] = ..., explain: _Optional[bool] = ...) -> None: ...

class StreamClassifyTextsResponse(_message.Message):
    __slots__ = ("request_id", "result")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    result: SectionResult
    def __init__(self, request_id: _Optional[str] = ..., result: _Optional[_Union[SectionResult, _Mapping]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("model_version", "create_time", "topics", "none_topic", "actors", "stances", "topic_thresholds", "metrics", "library_versions", "limits", "dataset_sha256", "languages")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class LibraryVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class LimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    NONE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    ACTORS_FIELD_NUMBER: _ClassVar[int]
    STANCES_FIELD_NUMBER: _ClassVar[int]
    TOPIC_THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    DATASET_SHA256_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    create_time: _timestamp_pb2.Timestamp
    topics: _containers.RepeatedScalarFieldContainer[str]
    none_topic: str
    actors: _containers.RepeatedScalarFieldContainer[str]
    stances: _containers.RepeatedScalarFieldContainer[str]
    topic_thresholds: _containers.RepeatedCompositeFieldContainer[LabelScore]
    metrics: _containers.ScalarMap[str, float]
    library_versions: _containers.ScalarMap[str, str]
    limits: _containers.ScalarMap[str, int]
    dataset_sha256: str
    languages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_version: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., topics: _Optional[_Iterable[str]] = ..., none_topic: _Optional[str] = ..., actors: _Optional[_Iterable[str]] = ..., stances: _Optional[_Iterable[str]] = ..., topic_thresholds: _Optional[_Iterable[_Union[LabelScore, _Mapping]]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., library_versions: _Optional[_Mapping[str, str]] = ..., limits: _Optional[_Mapping[str, int]] = ..., dataset_sha256: _Optional[str] = ..., languages: _Optional[_Iterable[str]] = ...) -> None: ...

class SectionResult(_message.Message):
    __slots__ = ("heading", "start", "end", "primary_topic", "topics", "topic_scores", "stances", "model_version", "topic_evidence", "language", "unsupported_language", "parts")
    HEADING_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_TOPIC_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    TOPIC_SCORES_FIELD_NUMBER: _ClassVar[int]
    STANCES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOPIC_EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    UNSUPPORTED_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    heading: str
    start: int
    end: int
    primary_topic: str
    topics: _containers.RepeatedScalarFieldContainer[str]
    topic_scores: _containers.RepeatedCompositeFieldContainer[LabelScore]
    stances: _containers.RepeatedCompositeFieldContainer[ActorStance]
    model_version: str
    topic_evidence: _containers.RepeatedCompositeFieldContainer[EvidenceTerm]
    language: str
    unsupported_language: bool
    parts: _containers.RepeatedCompositeFieldContainer[TextSpan]
    def __init__(self, heading: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., primary_topic: _Optional[str] = ..., topics: _Optional[_Iterable[str]] = ..., topic_scores: _Optional[_Iterable[_Union[LabelScore, _Mapping]]] = ..., stances: _Optional[_Iterable[_Union[ActorStance, _Mapping]]] = ..., model_version: _Optional[str] = ..., topic_evidence: _Optional[_Iterable[_Union[EvidenceTerm, _Mapping]]] = ..., language: _Optional[str] = ..., unsupported_language: _Optional[bool] = ..., parts: _Optional[_Iterable[_Union[TextSpan, _Mapping]]] = ...) -> None: ...

class EvidenceTerm(_message.Message):
    __slots__ = ("term", "weight")
    TERM_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    term: str
    weight: float
    def __init__(self, term: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class LabelScore(_message.Message):
    __slots__ = ("label", "score")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    label: str
    score: float
    def __init__(self, label: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class ActorStance(_message.Message):
    __slots__ = ("actor", "stance", "scores", "mentions", "evidence")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    STANCE_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    MENTIONS_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    actor: str
    stance: str
    scores: _containers.RepeatedCompositeFieldContainer[LabelScore]
    mentions: _containers.RepeatedCompositeFieldContainer[Mention]
    evidence: _containers.RepeatedCompositeFieldContainer[EvidenceTerm]
    def __init__(self, actor: _Optional[str] = ..., stance: _Optional[str] = ..., scores: _Optional[_Iterable[_Union[LabelScore, _Mapping]]] = ..., mentions: _Optional[_Iterable[_Union[Mention, _Mapping]]] = ..., evidence: _Optional[_Iterable[_Union[EvidenceTerm, _Mapping]]] = ...) -> None: ...

class Mention(_message.Message):
    __slots__ = ("start", "end", "text", "in_heading")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IN_HEADING_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    text: str
    in_heading: bool
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ..., text: _Optional[str] = ..., in_heading: _Optional[bool] = ...) -> None: ...

class ReloadModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadModelResponse(_message.Message):
    __slots__ = ("reloaded", "model_version", "error")
    RELOADED_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    reloaded: bool
    model_version: str
    error: str
    def __init__(self, reloaded: _Optional[bool] = ..., model_version: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...
