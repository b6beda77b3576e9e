"""The corpus is ours: no real-event section opens like an agency lead, and the
candidate finder flags what it should."""

from __future__ import annotations

from tests.conftest import DATA
from training.dataset import Section, load_corpus
from training.provenance import PATTERNS_FILE, Patterns, candidates, has_agency_lead, leads

PATTERNS = Patterns.load(DATA / PATTERNS_FILE)


def section(text: str, basis: str = "real_event") -> Section:
    return Section(id="x", text=text, heading="", topics=(), stances={}, basis=basis)


def test_no_real_event_section_opens_like_an_agency_lead() -> None:
    corpus = load_corpus(DATA)
    assert leads(corpus.sections, PATTERNS) == []
    assert {s.basis for s in corpus.sections} == {"invented", "real_event"}


def test_an_agency_lead_is_recognised() -> None:
    lead = "The defence secretary has ordered a halt to shipments, two officials said on Tuesday."
    assert has_agency_lead(section(lead), PATTERNS)
    assert leads([section(lead, basis="invented")], PATTERNS) == []
    assert not has_agency_lead(section("Two officials met on Tuesday in Kyiv."), PATTERNS)


def test_candidates_need_a_real_name_first_and_a_date() -> None:
    named = section("Rubio met Yermak in Geneva. The talks resumed on Friday.")
    undated = section("Rubio met Yermak in Geneva. The talks resumed later.")
    late = section("The talks resumed on Friday. Rubio met Yermak in Geneva.")
    assert candidates([named, undated, late], PATTERNS) == [named]
