"""The data card is generated from the corpus and is up to date."""

from __future__ import annotations

from tests.conftest import DATA
from training import datacard
from training.dataset import load_corpus


def test_committed_card_matches_the_corpus() -> None:
    card = datacard.render(load_corpus(DATA), DATA)
    committed = (DATA / datacard.CARD).read_text(encoding="utf-8")
    assert committed == card, (
        "training/data/README.md is stale: run python -m training.datacard training/data"
    )


def test_card_has_the_figures_and_the_rules() -> None:
    card = (DATA / datacard.CARD).read_text(encoding="utf-8")
    for heading in (
        "## What this corpus is",
        "no quote in this corpus is a\n  real statement of the person it names",
        "### What the sections retell (`basis`)",
        "### Languages",
        "## The label rules",
        "### Topics",
        "### Actor-stance pairs",
        "### Length of the text, in words",
        "## How to add data",
        "## How the held-out split works",
    ):
        assert heading in card
