"""Server settings: every setting is a flag and a TOPICSTANCE_* environment variable."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

ENV_PREFIX = "TOPICSTANCE_"


@dataclass(frozen=True)
class Settings:
    """What the server needs to start; defaults suit a developer machine."""

    host: str = "127.0.0.1"
    port: int = 50051
    model: Path = Path("models/default")
    workers: int = os.cpu_count() or 1
    log_level: str = "INFO"
    max_text_chars: int = 50_000
    max_document_chars: int = 500_000
    max_batch_texts: int = 256
    max_sections: int = 2_000
    max_message_bytes: int = 4 * 1024 * 1024
    grace_seconds: float = 10.0
    max_batch_sections: int = 64
    max_batch_wait_ms: float = 2.0

    def limits(self) -> dict[str, int]:
        """The request limits, as reported by GetModelInfo."""
        return {
            "max_text_chars": self.max_text_chars,
            "max_document_chars": self.max_document_chars,
            "max_batch_texts": self.max_batch_texts,
            "max_sections": self.max_sections,
            "max_message_bytes": self.max_message_bytes,
        }


_HELP = {
    "host": "address to listen on",
    "port": "port to listen on (0 picks a free one)",
    "model": "model artifact directory",
    "workers": "worker processes sharing the port",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "max_text_chars": "longest text accepted, in characters",
    "max_document_chars": "longest document accepted, in characters",
    "max_batch_texts": "most texts in one batch request",
    "max_sections": "most sections in one document",
    "max_message_bytes": "largest request message, in bytes",
    "grace_seconds": "how long in-flight calls may finish after SIGTERM",
    "max_batch_sections": "most sections predicted together (1 turns micro-batching off)",
    "max_batch_wait_ms": "how long a call may wait for others to share its batch",
}


def parse_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Flags win over environment variables, which win over defaults."""
    environ = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="topicstance-server",
        description="Serve topic and stance classification over gRPC.",
        epilog=f"Every flag can also be set as {ENV_PREFIX}<NAME>, e.g. {ENV_PREFIX}PORT=50051.",
    )
    defaults = Settings()
    for spec in fields(Settings):
        default = getattr(defaults, spec.name)
        env_name = ENV_PREFIX + spec.name.upper()
        kind = type(default)
        try:
            value = kind(environ[env_name]) if env_name in environ else default
        except ValueError:
            parser.error(f"{env_name}={environ[env_name]!r}: expected {kind.__name__}")
        parser.add_argument(
            "--" + spec.name.replace("_", "-"),
            type=kind,
            default=value,
            help=f"{_HELP[spec.name]} (env {env_name}; default {default})",
        )
    args = parser.parse_args(argv)
    settings = Settings(**vars(args))
    for name, limit in {**settings.limits(), "workers": settings.workers}.items():
        if limit < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {limit}")
    return settings
