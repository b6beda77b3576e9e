"""The client commands of `topicstance`: calls an analyst makes by hand over gRPC.

topicstance classify FILE|- [--json] [--explain] [--target HOST:PORT]
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

DEFAULT_TARGET = os.environ.get("TOPICSTANCE_TARGET", "127.0.0.1:50051")
PUBLISHED_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "client" / "service-config.json"
DEFAULT_CONFIG = os.environ.get("TOPICSTANCE_SERVICE_CONFIG", str(PUBLISHED_CONFIG))
TIMEOUT_SECONDS = 30.0


class ReadError(Exception):
    """An input could not be read; the message names it and why."""


def read_input(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ReadError(f"cannot read {path}: {reason}") from error


def to_json(message: Any) -> str:
    """The message as JSON with every field, zero values included (offset 0 is an offset)."""
    return json_format.MessageToJson(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def format_section(index: int, section: pb.SectionResult) -> str:
    """One readable row: heading, primary topic, topics with scores, stances."""
    scores = {s.label: s.score for s in section.topic_scores}
    topics = ", ".join(f"{t} {scores[t]:.2f}" for t in section.topics) or "-"
    stances = ", ".join(
        f"{s.actor}: {s.stance} ({max(x.score for x in s.scores):.2f})" for s in section.stances
    )
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


def classify(args: argparse.Namespace) -> int:
    text = read_input(args.file)
    with open_channel(args) as channel:
        stub = pb_grpc.TopicStanceServiceStub(channel)
        response = stub.ClassifyDocument(
            pb.ClassifyDocumentRequest(text=text, explain=args.explain),
            timeout=TIMEOUT_SECONDS,
            wait_for_ready=False,  # a person is waiting: say at once that nothing answers
        )
    if args.json:
        print(to_json(response))
        return 0
    print(f"{'#':>2}  {'heading':<48}  {'primary':<10}  {'topics':<28}  stances")
    for index, section in enumerate(response.sections, start=1):
        print(format_section(index, section))
        if args.explain:
            print("\n".join(format_evidence(section)))
    return 0


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
    classify_cmd.add_argument("file", help="a UTF-8 text file, or - for standard input")
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
