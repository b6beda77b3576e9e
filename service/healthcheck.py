"""The container's HEALTHCHECK: exit 0 when the local server reports SERVING.

    python -m service.healthcheck

Reads the same TOPICSTANCE_* settings as the server (port, TLS). Under TLS it
trusts TOPICSTANCE_HEALTH_CA, or else the server's own certificate file; with a
client CA configured (mutual TLS) it presents TOPICSTANCE_HEALTH_CERT and
TOPICSTANCE_HEALTH_KEY.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT_SECONDS = 3.0


def _read(name: str) -> bytes | None:
    path = os.environ.get(name)
    return Path(path).read_bytes() if path else None


def channel(port: str) -> grpc.Channel:
    target = f"127.0.0.1:{port}"
    if not os.environ.get("TOPICSTANCE_TLS_CERT"):
        return grpc.insecure_channel(target)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read("TOPICSTANCE_HEALTH_CA") or _read("TOPICSTANCE_TLS_CERT"),
        private_key=_read("TOPICSTANCE_HEALTH_KEY"),
        certificate_chain=_read("TOPICSTANCE_HEALTH_CERT"),
    )
    options = [
        ("grpc.ssl_target_name_override", os.environ.get("TOPICSTANCE_HEALTH_NAME", "localhost"))
    ]
    return grpc.secure_channel(target, credentials, options=options)


def main() -> int:
    port = os.environ.get("TOPICSTANCE_PORT", "50051")
    try:
        with channel(port) as opened:
            response = health_pb2_grpc.HealthStub(opened).Check(
                health_pb2.HealthCheckRequest(), timeout=TIMEOUT_SECONDS
            )
    except (grpc.RpcError, OSError) as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1
    serving = response.status == health_pb2.HealthCheckResponse.SERVING
    print("serving" if serving else f"not serving ({response.status})")
    return 0 if serving else 1


if __name__ == "__main__":
    raise SystemExit(main())
