"""Integration: a real server process on an ephemeral port, over a real channel."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from tests.conftest import FIXTURES
from tests.serving import ServerProcess
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

Stub = pb_grpc.TopicStanceServiceStub
ARTICLE = (FIXTURES / "article.txt").read_text(encoding="utf-8")


def test_classify_document_splits_and_labels(stub: Stub) -> None:
    response = stub.ClassifyDocument(pb.ClassifyDocumentRequest(text=ARTICLE))
    assert [s.primary_topic for s in response.sections] == [
        "territory",
        "strikes",
        "us_policy",
        "minerals",
    ]
    assert [s.heading for s in response.sections][1] == "Drones Hit the Power Grid in Odesa"
    for section in response.sections:
        assert ARTICLE[section.start : section.end].strip()
        assert section.topics[0] == section.primary_topic
        assert len(section.topic_scores) == 4
        for stance in section.stances:
            assert sum(s.score for s in stance.scores) == pytest.approx(1.0, abs=1e-4)
            for mention in stance.mentions:
                assert ARTICLE[mention.start : mention.end] == mention.text
                assert section.start <= mention.start < section.end
    first = response.sections[0]
    assert {s.actor for s in first.stances} == {"ukraine", "russia"}


def test_classify_text_with_heading_offsets(stub: Stub) -> None:
    text = "Russian glide bombs struck a school in Kharkiv, killing two teachers."
    heading = "Kyiv Mourns"
    result = stub.ClassifyText(pb.ClassifyTextRequest(text=text, heading=heading)).result
    assert result.primary_topic == "strikes"
    assert result.heading == heading
    mentions = [m for s in result.stances for m in s.mentions]
    for mention in mentions:
        source = heading if mention.in_heading else text
        assert source[mention.start : mention.end] == mention.text
    assert any(m.in_heading for m in mentions) and any(not m.in_heading for m in mentions)


def test_batch_keeps_order(stub: Stub) -> None:
    texts = [
        "Washington announced fresh sanctions on Russian oil traders and their banks.",
        "The football club sacked its coach after a fourth straight defeat at home.",
        "Ukraine offered US investors stakes in its lithium and graphite deposits.",
    ]
    results = stub.BatchClassifyTexts(pb.BatchClassifyTextsRequest(texts=texts)).results
    assert [r.primary_topic for r in results] == ["us_policy", "other", "minerals"]
    assert results[1].topics == [] and results[1].stances == []


def test_stream_answers_each_request_in_order(stub: Stub) -> None:
    texts = [
        f"Drones hit the port of Odesa for the {n} night in a row."
        for n in ("first", "second", "third")
    ]
    requests = (
        pb.StreamClassifyTextsRequest(request_id=f"r{i}", text=t) for i, t in enumerate(texts)
    )
    responses = list(stub.StreamClassifyTexts(requests))
    assert [r.request_id for r in responses] == ["r0", "r1", "r2"]
    assert all(r.result.primary_topic == "strikes" for r in responses)


def test_model_info(stub: Stub) -> None:
    info = stub.GetModelInfo(pb.GetModelInfoRequest())
    assert list(info.topics) == ["territory", "strikes", "us_policy", "minerals"]
    assert info.none_topic == "other"
    assert list(info.actors) == ["ukraine", "russia", "united_states"]
    assert list(info.stances) == ["cooperative", "confrontational", "neutral"]
    assert info.model_version and info.create_time.seconds > 0
    assert {t.label for t in info.topic_thresholds} == set(info.topics)
    for key in (
        "held_out.topics.macro_f1",
        "held_out.topics.primary_accuracy",
        "held_out.stances.macro_f1",
        "held_out.stances.f_avg",
        "cross_validation.topics.macro_f1.mean",
        "cross_validation.stances.macro_f1.std",
        "baselines.held_out.keywords.topics.macro_f1",
        "baselines.held_out.majority.stances.macro_f1",
        "training_seconds",
        "artifact_bytes",
    ):
        assert key in info.metrics, key
    assert info.metrics["artifact_bytes"] > 100_000
    assert "scikit-learn" in info.library_versions
    assert info.limits["max_text_chars"] > 0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.ClassifyText(pb.ClassifyTextRequest(text="")), "text"),
        (lambda s: s.ClassifyText(pb.ClassifyTextRequest(text="   \n\t ")), "text"),
        (lambda s: s.ClassifyDocument(pb.ClassifyDocumentRequest(text="")), "text"),
        (
            lambda s: s.BatchClassifyTexts(pb.BatchClassifyTextsRequest(texts=["ok text", " "])),
            "texts[1]",
        ),
        (lambda s: s.BatchClassifyTexts(pb.BatchClassifyTextsRequest(texts=[])), "texts"),
    ],
)
def test_empty_text_is_invalid_argument_with_field(stub: Stub, call: object, field: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call(stub)  # type: ignore[operator]
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}: ")
    status = rpc_status.from_call(error)
    assert status is not None
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    assert detail.field_violations[0].field == field
    assert stub.ClassifyText(
        pb.ClassifyTextRequest(text="Still serving after a bad request.")
    ).result


def test_health_is_serving(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "topicstance.v1.TopicStanceService"):
            response = stub.Check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_and_describes_the_service(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="topicstance.v1.TopicStanceService"
            ),
        ]
        listed, described = list(stub.ServerReflectionInfo(iter(requests)))
    names = {s.name for s in listed.list_services_response.service}
    assert {"topicstance.v1.TopicStanceService", "grpc.health.v1.Health"} <= names
    assert described.file_descriptor_response.file_descriptor_proto


def test_evidence_only_when_asked(stub: Stub) -> None:
    text = (
        "Russian drones struck a power plant near Odesa, "
        "and Ukraine thanked the US for new air defences."
    )
    plain = stub.ClassifyText(pb.ClassifyTextRequest(text=text)).result
    assert not plain.topic_evidence and not any(s.evidence for s in plain.stances)
    explained = stub.ClassifyText(pb.ClassifyTextRequest(text=text, explain=True)).result
    assert explained.primary_topic == plain.primary_topic == "strikes"
    terms = [e.term for e in explained.topic_evidence]
    assert 0 < len(terms) <= 5
    assert any(word in " ".join(terms) for word in ("drones", "struck", "power plant"))
    weights = [e.weight for e in explained.topic_evidence]
    assert weights == sorted(weights, reverse=True) and weights[-1] > 0
    for stance in explained.stances:
        assert stance.evidence, stance.actor
    by_actor = {s.actor: s for s in explained.stances}
    assert by_actor["russia"].stance == "confrontational"


def test_evidence_in_documents_and_batches(stub: Stub) -> None:
    document = stub.ClassifyDocument(pb.ClassifyDocumentRequest(text=ARTICLE, explain=True))
    assert all(s.topic_evidence for s in document.sections)
    batch = stub.BatchClassifyTexts(
        pb.BatchClassifyTextsRequest(texts=["Kyiv offered to freeze the front line."], explain=True)
    )
    assert batch.results[0].stances[0].evidence
