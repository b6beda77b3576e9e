"""The client commands of `topicstance`: calls an analyst makes by hand over gRPC.

topicstance classify FILE|DIR|- ... [--format F] [--jsonl FILE] [--json] [--explain]
                     [--concurrency N] [--target HOST:PORT]
topicstance info [--json] [--target HOST:PORT]

Channels use the published service config (deploy/client/service-config.json:
round robin over every address the target resolves to, retries on UNAVAILABLE,
health checks); --service-config or TOPICSTANCE_SERVICE_CONFIG names another.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from charset_normalizer import from_bytes
from google.protobuf import json_format
from tqdm import tqdm

from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

DEFAULT_TARGET = os.environ.get("TOPICSTANCE_TARGET", "127.0.0.1:50051")
PUBLISHED_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "client" / "service-config.json"
DEFAULT_CONFIG = os.environ.get("TOPICSTANCE_SERVICE_CONFIG", str(PUBLISHED_CONFIG))
TIMEOUT_SECONDS = 30.0


class ReadError(Exception):
    """An input could not be read; the message names it and why."""


FORMATS = {
    "auto": pb.DOCUMENT_FORMAT_UNSPECIFIED,
    "plain_text": pb.DOCUMENT_FORMAT_PLAIN_TEXT,
    "markdown": pb.DOCUMENT_FORMAT_MARKDOWN,
    "html": pb.DOCUMENT_FORMAT_HTML,
}
EXTENSIONS = {
    ".txt": "plain_text",
    ".text": "plain_text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
}
DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class Input:
    """One document to classify: where it came from, its text and its format."""

    id: str
    text: str
    format: str = "auto"


def decode(data: bytes, name: str) -> str:
    """UTF-8, or the encoding charset-normalizer finds; binary data is refused."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None or "\x00" in str(best):
        raise ReadError(f"cannot read {name}: not text in UTF-8 or another encoding found")
    return str(best)


def read_input(path: str) -> str:
    try:
        if path == "-":
            return decode(sys.stdin.buffer.read(), "standard input")
        return decode(Path(path).read_bytes(), path)
    except OSError as error:
        raise ReadError(f"cannot read {path}: {error.strerror or error}") from error


def format_of(path: str, given: str) -> str:
    """The --format given, else the one the file's extension names, else auto."""
    if given != "auto":
        return given
    return EXTENSIONS.get(Path(path).suffix.lower(), "auto")


def expand(paths: Sequence[str]) -> list[str]:
    """Files as given; directories replaced by the documents in them (by extension)."""
    found: list[str] = []
    for path in paths:
        if path != "-" and Path(path).is_dir():
            found += sorted(str(p) for p in Path(path).rglob("*") if p.suffix.lower() in EXTENSIONS)
        else:
            found.append(path)
    return found


def jsonl_inputs(path: str) -> Iterator[Input]:
    """One {"id", "text", "format"?} object per line; a bad line is a ReadError."""
    text = read_input(path)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            item = Input(str(record["id"]), str(record["text"]), str(record.get("format", "auto")))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ReadError(
                f'{path}:{number}: expected {{"id", "text", "format"?}}: {error}'
            ) from error
        if item.format not in FORMATS:
            raise ReadError(f"{path}:{number}: format must be one of {', '.join(FORMATS)}")
        yield item


def to_json(message: Any) -> str:
    """The message as JSON with every field, zero values included (offset 0 is an offset)."""
    return json_format.MessageToJson(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def format_section(index: int, section: pb.SectionResult) -> str:
    """One readable row: heading, primary topic, topics with scores, stances (or why
    the section was not read)."""
    scores = {s.label: s.score for s in section.topic_scores}
    topics = ", ".join(f"{t} {scores[t]:.2f}" for t in section.topics) or "-"
    stances = ", ".join(
        f"{s.actor}: {s.stance} ({max(x.score for x in s.scores):.2f})" for s in section.stances
    )
    if section.unsupported_language:
        stances = f"not read: the model has no {section.language} data"
    heading = (section.heading or "(no heading)")[:48]
    return f"{index:>2}  {heading:<48}  {section.primary_topic:<10}  {topics:<28}  {stances or '-'}"


def format_evidence(section: pb.SectionResult) -> list[str]:
    """Indented lines: the terms behind the primary topic and each stance."""

    def terms(evidence: Sequence[pb.EvidenceTerm]) -> str:
        return ", ".join(f"{e.term} ({e.weight:.2f})" for e in evidence) or "-"

    lines = []
    if section.topic_evidence:
        lines.append(f"      why {section.primary_topic}: {terms(section.topic_evidence)}")
    for stance in section.stances:
        lines.append(f"      why {stance.actor} {stance.stance}: {terms(stance.evidence)}")
    return lines


def service_config(path: str) -> list[tuple[str, str]]:
    """The channel option that carries the service config; none if the published file
    is not there (an installed package without the repository), an error if a named
    one is missing or not JSON."""
    if not path or (path == str(PUBLISHED_CONFIG) and not PUBLISHED_CONFIG.exists()):
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
        json.loads(text)
    except (OSError, ValueError) as error:
        raise ReadError(f"cannot use the service config {path}: {error}") from error
    return [("grpc.service_config", text)]


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """Plaintext, TLS (--tls-ca), or mutual TLS (--tls-ca with --tls-cert and --tls-key)."""
    options = service_config(args.service_config)
    if not args.tls_ca:
        return grpc.insecure_channel(args.target, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(args.tls_ca).read_bytes(),
        private_key=Path(args.tls_key).read_bytes() if args.tls_key else None,
        certificate_chain=Path(args.tls_cert).read_bytes() if args.tls_cert else None,
    )
    return grpc.secure_channel(args.target, credentials, options=options)


def request_for(item: Input, explain: bool) -> pb.ClassifyDocumentRequest:
    return pb.ClassifyDocumentRequest(text=item.text, explain=explain, format=FORMATS[item.format])


def print_table(response: pb.ClassifyDocumentResponse, explain: bool) -> None:
    if response.title:
        print(f"title: {response.title}")
    print(f"{'#':>2}  {'heading':<48}  {'primary':<10}  {'topics':<28}  stances")
    for index, section in enumerate(response.sections, start=1):
        print(format_section(index, section))
        if explain:
            print("\n".join(format_evidence(section)))


def classify(args: argparse.Namespace) -> int:
    """One input: a table (or its JSON). Several, or --jsonl: JSON Lines of results."""
    paths = expand(args.files)
    if args.jsonl is None and not paths:
        raise ReadError("nothing to classify: give files, directories, - or --jsonl FILE")
    if args.jsonl is None and len(paths) == 1:
        item = Input(paths[0], read_input(paths[0]), format_of(paths[0], args.format))
        with open_channel(args) as channel:
            response = pb_grpc.TopicStanceServiceStub(channel).ClassifyDocument(
                request_for(item, args.explain),
                timeout=TIMEOUT_SECONDS,
                wait_for_ready=False,  # a person is waiting: say at once that nothing answers
            )
        if args.json:
            print(to_json(response))
        else:
            print_table(response, args.explain)
        return 0
    return classify_many(args, paths)


@dataclass(frozen=True)
class Unreadable:
    """An input file that could not be read: it is reported as that input's error."""

    id: str
    message: str


def _inputs(args: argparse.Namespace, paths: Sequence[str]) -> Iterator[Input | Unreadable]:
    if args.jsonl is not None:
        yield from jsonl_inputs(args.jsonl)
    for path in paths:
        try:
            yield Input(path, read_input(path), format_of(path, args.format))
        except ReadError as error:
            yield Unreadable(path, str(error))


def classify_many(args: argparse.Namespace, paths: Sequence[str]) -> int:
    """Every input with at most --concurrency calls in flight; one JSON line each, in
    input order, a progress bar and a summary on stderr; status 1 if any failed."""
    items = list(_inputs(args, paths))
    failed = 0
    with open_channel(args) as channel:
        stub = pb_grpc.TopicStanceServiceStub(channel)

        def run(item: Input | Unreadable) -> dict[str, Any]:
            if isinstance(item, Unreadable):
                return {"id": item.id, "error": {"code": "READ_ERROR", "message": item.message}}
            try:
                response = stub.ClassifyDocument(
                    request_for(item, args.explain), timeout=TIMEOUT_SECONDS
                )
            except grpc.RpcError as error:
                return {
                    "id": item.id,
                    "error": {"code": error.code().name, "message": error.details()},
                }
            return {"id": item.id, "result": json.loads(to_json(response))}

        with ThreadPoolExecutor(max(1, args.concurrency)) as pool:
            bar = tqdm(total=len(items), unit="doc", file=sys.stderr, disable=len(items) < 2)
            for line in pool.map(run, items):
                failed += "error" in line
                print(json.dumps(line, ensure_ascii=False))
                bar.update()
            bar.close()
    print(
        f"topicstance: classified {len(items) - failed} of {len(items)} inputs; {failed} failed",
        file=sys.stderr,
    )
    return 1 if failed else 0


def info(args: argparse.Namespace) -> int:
    """The model a server is using: version, labels and held-out scores."""
    with open_channel(args) as channel:
        response = pb_grpc.TopicStanceServiceStub(channel).GetModelInfo(
            pb.GetModelInfoRequest(), timeout=TIMEOUT_SECONDS, wait_for_ready=False
        )
    if args.json:
        print(to_json(response))
        return 0
    held_out = [
        f"{name.removeprefix('held_out.')} {value:.3f}"
        for name, value in sorted(response.metrics.items())
        if name.startswith("held_out.") and name.endswith(("f1", "accuracy", "f_avg"))
    ]
    print(f"model     {response.model_version}  (created {response.create_time.ToJsonString()})")
    print(f"topics    {', '.join(response.topics)}  (none: {response.none_topic})")
    print(f"actors    {', '.join(response.actors)}")
    print(f"stances   {', '.join(response.stances)}")
    print(f"held-out  {', '.join(held_out) or '-'}")
    return 0


def add_connection_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--target",
        default=DEFAULT_TARGET,
        help=f"server address (default {DEFAULT_TARGET}; env TOPICSTANCE_TARGET)",
    )
    command.add_argument("--tls-ca", help="CA bundle (PEM) to verify the server: turns TLS on")
    command.add_argument("--tls-cert", help="client certificate (PEM), for mutual TLS")
    command.add_argument("--tls-key", help="client private key (PEM), for mutual TLS")
    command.add_argument(
        "--service-config",
        default=DEFAULT_CONFIG,
        help="gRPC service config (JSON) for the channel; '' for none "
        "(default: deploy/client/service-config.json; env TOPICSTANCE_SERVICE_CONFIG)",
    )


def add_commands(commands: Any) -> None:
    """`classify FILE|-` and `info`: the calls an analyst makes by hand."""
    classify_cmd = commands.add_parser(
        "classify", help="split a document into sections and classify them"
    )
    classify_cmd.add_argument(
        "files",
        nargs="*",
        default=[],
        help="text, Markdown or HTML files, directories of them, or - for standard input",
    )
    classify_cmd.add_argument(
        "--format",
        choices=list(FORMATS),
        default="auto",
        help="how the inputs are written (default: from the extension, else detected)",
    )
    classify_cmd.add_argument(
        "--jsonl",
        metavar="FILE",
        help='a JSON Lines file of {"id", "text", "format"?} objects to classify as well',
    )
    classify_cmd.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"most calls in flight at once (default {DEFAULT_CONCURRENCY})",
    )
    classify_cmd.add_argument("--json", action="store_true", help="print the response as JSON")
    classify_cmd.add_argument(
        "--explain", action="store_true", help="show the terms behind each prediction"
    )
    add_connection_options(classify_cmd)
    classify_cmd.set_defaults(run=reporting(classify))
    info_cmd = commands.add_parser("info", help="the model a server is using")
    info_cmd.add_argument("--json", action="store_true", help="print the response as JSON")
    add_connection_options(info_cmd)
    info_cmd.set_defaults(run=reporting(info))


def reporting(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The command, with its failures as one line on stderr and exit status 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except grpc.RpcError as error:
            print(f"topicstance: {error.code().name}: {error.details()}", file=sys.stderr)
        except ReadError as error:
            print(f"topicstance: {error}", file=sys.stderr)
        return 1

    return run
