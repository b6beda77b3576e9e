"""The balancer's config: its raw HTTP/2 health check is a real grpc.health.v1 call,
and the Kubernetes ConfigMap carries the same config as deploy/balancer/haproxy.cfg.
(`make failover-test` runs haproxy with both: `haproxy -c` and real traffic.)"""

from __future__ import annotations

import struct

import yaml
from grpc_health.v1 import health_pb2

from benchmarks.failover import HAPROXY_TEMPLATE, render_haproxy
from tests.serving import REPO

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def check_lines(keyword: str) -> list[str]:
    return [
        line.split(keyword, 1)[1].strip()
        for line in HAPROXY_TEMPLATE.read_text().splitlines()
        if line.strip().startswith(keyword)
    ]


def frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """HTTP/2 frames: (type, flags, stream, payload)."""
    found = []
    while data:
        length = int.from_bytes(data[:3], "big")
        kind, flags, stream = data[3], data[4], struct.unpack(">I", data[5:9])[0]
        found.append((kind, flags, stream, data[9 : 9 + length]))
        data = data[9 + length :]
    return found


def literal_headers(block: bytes) -> dict[str, str]:
    """Decodes the few HPACK forms the check uses (static indexes, plain literals)."""
    static = {0x83: (":method", "POST"), 0x86: (":scheme", "http")}
    names = {0x44: ":path", 0x41: ":authority", 0x5F: "content-type"}
    headers, at = {}, 0
    while at < len(block):
        first = block[at]
        if first in static:
            name, value = static[first]
            at += 1
        else:
            at += 1
            if first == 0x00:
                name = block[at + 1 : at + 1 + block[at]].decode()
                at += 1 + block[at]
            else:
                name = names[first]
            value = block[at + 1 : at + 1 + block[at]].decode()
            at += 1 + block[at]
        headers[name] = value
    return headers


def test_the_active_check_is_a_grpc_health_check_that_wants_serving() -> None:
    sent = b"".join(bytes.fromhex(h) for h in check_lines("tcp-check send-binary"))
    assert sent.startswith(PREFACE)
    (settings, headers, body) = frames(sent[len(PREFACE) :])
    assert settings == (0x4, 0, 0, b"")
    assert headers[:3] == (0x1, 0x4, 1)  # HEADERS, END_HEADERS, stream 1
    assert literal_headers(headers[3]) == {
        ":method": "POST",
        ":scheme": "http",
        ":path": "/grpc.health.v1.Health/Check",
        ":authority": "haproxy",
        "content-type": "application/grpc",
        "te": "trailers",
    }
    assert body[:3] == (0x0, 0x1, 1)  # DATA, END_STREAM, stream 1
    message = body[3]
    assert message[0] == 0 and int.from_bytes(message[1:5], "big") == len(message) - 5
    request = health_pb2.HealthCheckRequest.FromString(message[5:])
    assert request.service == "topicstance.v1.TopicStanceService"
    (expected,) = check_lines("tcp-check expect binary")
    serving = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
    answer = serving.SerializeToString()
    assert bytes.fromhex(expected) == b"\x00" + struct.pack(">I", len(answer)) + answer


def test_the_kubernetes_config_is_the_shipped_one() -> None:
    manifest = yaml.safe_load((REPO / "deploy/kubernetes/balancer-config.yaml").read_text())
    shipped: str = manifest["data"]["haproxy.cfg"]
    head, _, tail = HAPROXY_TEMPLATE.read_text().partition("@SERVERS@\n")
    head = head.replace("@BIND@", ":50051").replace("@STATS_SOCKET@", "/tmp/haproxy.sock")
    assert shipped.startswith(head)
    servers = shipped[len(head) :]
    assert "server-template replica 10 topicstance-headless.default.svc.cluster.local:50051" in (
        servers
    )
    assert "resolvers cluster" in servers and tail == ""


def test_rendering_fills_every_placeholder() -> None:
    from benchmarks.failover import Replica

    replicas = [Replica(f"r{i}", REPO, port=5000 + i) for i in (1, 2)]
    rendered = render_haproxy("127.0.0.1:5000", REPO / "stats.sock", replicas)
    assert "@" not in rendered.replace("%[", "")
    assert "    server r1 127.0.0.1:5001\n    server r2 127.0.0.1:5002" in rendered
    deployment = yaml.safe_load((REPO / "deploy/kubernetes/balancer-deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert pod["volumes"][0]["configMap"]["name"] == "topicstance-balancer"
    assert pod["containers"][0]["ports"][0]["containerPort"] == 50051
