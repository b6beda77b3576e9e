"""Server settings: every setting is a flag and a TOPICSTANCE_* environment variable.

Secrets are never flags (they would show in `ps`): the manifest signing key is read
from TOPICSTANCE_SIGNING_KEY only.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from topicstance.bundle import SIGNING_KEY_ENV

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
    max_html_chars: int = 5_000_000
    max_html_depth: int = 200
    # Above the HTML limit, so a page too large gets our message naming that limit.
    max_message_bytes: int = 16 * 1024 * 1024
    grace_seconds: float = 10.0
    drain_delay_seconds: float = 2.0
    max_batch_sections: int = 64
    max_batch_wait_ms: float = 2.0
    metrics_port: int = 0
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    insecure: bool = False
    wait_for_model: bool = False
    admin: bool = False
    log_request_text: bool = False

    def limits(self) -> dict[str, int]:
        """The request limits, as reported by GetModelInfo."""
        return {
            "max_text_chars": self.max_text_chars,
            "max_document_chars": self.max_document_chars,
            "max_batch_texts": self.max_batch_texts,
            "max_sections": self.max_sections,
            "max_html_chars": self.max_html_chars,
            "max_html_depth": self.max_html_depth,
            "max_message_bytes": self.max_message_bytes,
        }

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)


_HELP = {
    "host": "address to listen on",
    "port": "port to listen on (0 picks a free one)",
    "model": "model directory (an artifact, or a CURRENT pointer to one)",
    "workers": "worker processes sharing the port",
    "log_level": "DEBUG (one line per call), INFO, WARNING or ERROR",
    "max_text_chars": "longest text accepted, in characters",
    "max_document_chars": "longest document accepted, in characters",
    "max_batch_texts": "most texts in one batch request",
    "max_sections": "most sections in one document",
    "max_html_chars": "longest HTML page accepted, in characters",
    "max_html_depth": "deepest nesting of HTML elements accepted",
    "max_message_bytes": "largest request message, in bytes",
    "grace_seconds": "how long in-flight calls may finish after SIGTERM",
    "drain_delay_seconds": "after SIGTERM, how long to keep answering while NOT_SERVING",
    "max_batch_sections": "most sections predicted together (1 turns micro-batching off)",
    "max_batch_wait_ms": "how long a call may wait for others to share its batch",
    "metrics_port": "Prometheus metrics HTTP port (0: off)",
    "tls_cert": "server certificate (PEM); turns TLS on",
    "tls_key": "server private key (PEM)",
    "tls_client_ca": "CA bundle (PEM) that client certificates must chain to (mutual TLS)",
    "insecure": "allow plaintext on an address other than loopback",
    "wait_for_model": "start without a model, NOT_SERVING, until one appears",
    "admin": "serve the admin RPC (ReloadModel)",
    "log_request_text": "put request text in logs (off: never)",
}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Flags win over environment variables, which win over defaults."""
    environ = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="topicstance-server",
        description="Serve topic and stance classification over gRPC.",
        epilog=f"Every flag can also be set as {ENV_PREFIX}<NAME>, e.g. {ENV_PREFIX}PORT=50051. "
        f"The manifest signing key is read from {SIGNING_KEY_ENV} only.",
    )
    defaults = Settings()
    for spec in fields(Settings):
        default = getattr(defaults, spec.name)
        env_name = ENV_PREFIX + spec.name.upper()
        kind = type(default)
        raw = environ.get(env_name)
        try:
            if raw is None:
                value = default
            elif kind is bool:
                value = _boolean(raw)
            else:
                value = kind(raw)
        except ValueError:
            parser.error(f"{env_name}={raw!r}: expected {kind.__name__}")
        flag = "--" + spec.name.replace("_", "-")
        text = f"{_HELP[spec.name]} (env {env_name}; default {default})"
        if kind is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=value, help=text
            )
        else:
            parser.add_argument(flag, type=kind, default=value, help=text)
    settings = Settings(**vars(parser.parse_args(argv)))
    _check(parser, settings)
    return settings


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)


def _check(parser: argparse.ArgumentParser, settings: Settings) -> None:
    for name, limit in {**settings.limits(), "workers": settings.workers}.items():
        if limit < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {limit}")
    if bool(settings.tls_cert) != bool(settings.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if settings.tls_client_ca and not settings.tls:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    if not settings.tls and not settings.insecure and not _is_loopback(settings.host):
        parser.error(
            f"refusing plaintext on {settings.host}: give --tls-cert/--tls-key, "
            "or --insecure if a trusted network or proxy protects the port"
        )
