"""Request validation: limits, and parsing that turns bad bytes into clear errors.

Every rule fails with a status code and a message that names the field and the
limit, carried as a `google.rpc.BadRequest` detail. Bytes that do not parse
(invalid UTF-8 in a string field, a message over the size limit) become an
`InvalidRequest` that the handler answers with INVALID_ARGUMENT or
RESOURCE_EXHAUSTED, instead of gRPC's default INTERNAL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from service.config import Settings


class RequestError(Exception):
    """A request that breaks a rule; becomes a status with a BadRequest detail."""

    def __init__(self, code: grpc.StatusCode, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.code, self.field, self.description = code, field, description

    def to_status(self, trailing: Sequence[tuple[str, str | bytes]] = ()) -> grpc.Status:
        """The status, its BadRequest detail, and `trailing` metadata the call already
        set (the request id): aborting replaces whatever was set before."""
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=self.field, description=self.description
                )
            ]
        )
        status = status_pb2.Status(code=getattr(code_pb2, self.code.name), message=str(self))
        status.details.add().Pack(detail)
        converted = rpc_status.to_status(status)
        return _Status(converted.code, converted.details, (*trailing, *converted.trailing_metadata))


@dataclass(frozen=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


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


class InvalidRequest:
    """Stands in for a request message that could not be parsed."""

    def __init__(self, error: RequestError) -> None:
        self.error = error


def parser(message_type: type[Message], max_bytes: int) -> Callable[[bytes], Any]:
    """A request deserializer that never raises: bad bytes give an InvalidRequest."""

    def parse(data: bytes) -> Any:
        if len(data) > max_bytes:
            return InvalidRequest(
                RequestError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "request",
                    f"is {len(data)} bytes; the limit is {max_bytes} (max_message_bytes)",
                )
            )
        try:
            return message_type.FromString(data)
        except DecodeError:
            field = invalid_utf8_field(message_type.DESCRIPTOR, data)
            if field is not None:
                return InvalidRequest(
                    RequestError(grpc.StatusCode.INVALID_ARGUMENT, field, "is not valid UTF-8")
                )
            return InvalidRequest(
                RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "request",
                    f"is not a valid {message_type.DESCRIPTOR.full_name} message",
                )
            )

    return parse


def invalid_utf8_field(message: Any, data: bytes) -> str | None:
    """The top-level string field (with its index if repeated) whose bytes are not UTF-8."""
    seen: dict[int, int] = {}
    position = 0
    try:
        while position < len(data):
            key, position = _varint(data, position)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                _, position = _varint(data, position)
            elif wire_type == 1:
                position += 8
            elif wire_type == 5:
                position += 4
            elif wire_type == 2:
                length, position = _varint(data, position)
                value = data[position : position + length]
                position += length
                field = message.fields_by_number.get(number)
                index = seen.get(number, 0)
                seen[number] = index + 1
                if field is not None and field.type == descriptor.FieldDescriptor.TYPE_STRING:
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError:
                        repeated = field.is_repeated
                        return f"{field.name}[{index}]" if repeated else field.name
            else:
                return None
    except IndexError:
        return None
    return None


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
