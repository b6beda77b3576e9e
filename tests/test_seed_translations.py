"""Our own Ukrainian and Russian translations of the article the service was designed
around find the four topics of the original, section by section.

The model is known to put `us_policy` first in the fourth section of the Ukrainian
translation (the minerals deal, where Washington drives the talks); docs/model.md lists it
among the known misses, so the primary topic is held to three sections of four.
"""

from __future__ import annotations

import pytest

from tests.conftest import FIXTURES
from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

PRIMARIES = ["territory", "strikes", "us_policy", "minerals"]


@pytest.mark.parametrize(("name", "language"), [("seed_uk.txt", "uk"), ("seed_ru.txt", "ru")])
def test_a_translation_of_the_seed_article_finds_the_topics_of_the_original(
    stub: pb_grpc.TopicStanceServiceStub, name: str, language: str
) -> None:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    reply = stub.ClassifyDocument(pb.ClassifyDocumentRequest(text=text), timeout=30)
    assert len(reply.sections) == len(PRIMARIES)
    for section, expected in zip(reply.sections, PRIMARIES, strict=True):
        assert expected in section.topics
    assert sum(s.primary_topic == p for s, p in zip(reply.sections, PRIMARIES, strict=True)) >= 3
    assert {s.language for s in reply.sections} == {language}
    assert not any(s.unsupported_language for s in reply.sections)
