"""Classify a document through several replicas with the published service config.

    python examples/python/classify_replicas.py FILE TARGET

TARGET is what the client resolves to every replica: `dns:///topicstance-headless.
NAMESPACE.svc.cluster.local:50051` in Kubernetes, or `ipv4:HOST:PORT,HOST:PORT` here.
The config (deploy/client/service-config.json) balances calls round robin, skips a
replica whose health check says NOT_SERVING, and retries UNAVAILABLE elsewhere.
"""

import sys
from pathlib import Path

import grpc

from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "client" / "service-config.json"

file, target = sys.argv[1], sys.argv[2]
options = [("grpc.service_config", CONFIG.read_text())]
with grpc.insecure_channel(target, options=options) as channel:
    stub = pb_grpc.TopicStanceServiceStub(channel)
    text = Path(file).read_text(encoding="utf-8")
    for section in stub.ClassifyDocument(pb.ClassifyDocumentRequest(text=text)).sections:
        print(section.heading or "(lede)", section.primary_topic)
