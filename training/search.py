"""`train.py --search`: compare features and linear model families by cross-validation.

Everything is scored on the training split only (group k-fold by document); the
held-out split stays unseen. The winner of each head is what `train.py` then fits.
"""

from __future__ import annotations

from collections.abc import Sequence

from topicstance.model import QuoteHead
from training.dataset import Section, Taxonomy
from training.heads import cross_validate_stances, cross_validate_topics, summarize
from training.pipelines import (
    STANCE_PARTS,
    ClassifierConfig,
    StanceConfig,
    TopicConfig,
)

SEARCH_FOLDS = 3
# The stance blocks the naive Bayes candidates are compared on (all but the cue counts).
BAYES_PARTS = ("context", "section", "window", "facts", "actor_context", "quote")

TOPIC_CANDIDATES = [
    TopicConfig(char_ngrams=None, classifier=ClassifierConfig("logreg", 10.0)),
    TopicConfig(classifier=ClassifierConfig("logreg", 3.0)),
    TopicConfig(classifier=ClassifierConfig("logreg", 10.0)),
    TopicConfig(word_ngrams=(1, 3), classifier=ClassifierConfig("logreg", 10.0)),
    TopicConfig(classifier=ClassifierConfig("logreg", 30.0)),
    TopicConfig(classifier=ClassifierConfig("logreg", 10.0, None)),
    TopicConfig(classifier=ClassifierConfig("svc", 10.0)),
    TopicConfig(classifier=ClassifierConfig("sgd", 10.0)),
]

STANCE_CANDIDATES = [
    StanceConfig(parts=("context",)),
    StanceConfig(parts=("context", "window")),
    StanceConfig(parts=("context", "window", "facts")),
    StanceConfig(parts=("context", "window", "facts", "cues")),
    StanceConfig(parts=("context", "section", "window", "facts", "cues")),
    StanceConfig(parts=STANCE_PARTS, classifier=ClassifierConfig("logreg", 3.0)),
    StanceConfig(parts=STANCE_PARTS),
    StanceConfig(parts=STANCE_PARTS, classifier=ClassifierConfig("logreg", 30.0)),
    StanceConfig(parts=STANCE_PARTS, classifier=ClassifierConfig("logreg", 10.0, None)),
    StanceConfig(parts=STANCE_PARTS, window=1),
    StanceConfig(parts=STANCE_PARTS, classifier=ClassifierConfig("svc", 10.0)),
    StanceConfig(parts=STANCE_PARTS, classifier=ClassifierConfig("sgd", 10.0)),
    *(
        StanceConfig(parts=BAYES_PARTS, classifier=ClassifierConfig("logreg", 30.0), bayes_alpha=a)
        for a in (None, 0.01, 0.03, 0.1)
    ),
]


def _describe_topic(config: TopicConfig) -> str:
    word = f"word {config.word_ngrams}"
    char = f"{word} + char_wb {config.char_ngrams}" if config.char_ngrams else word
    c = config.classifier
    return f"{char}; {c.family} C={c.C:g}; class_weight={c.class_weight}"


def _describe_stance(config: StanceConfig) -> str:
    c = config.classifier
    parts = "+".join(config.parts)
    bayes = "" if config.bayes_alpha is None else f" + naive Bayes alpha={config.bayes_alpha:g}"
    return (
        f"{parts}; window={config.window}; {c.family} C={c.C:g}; class_weight={c.class_weight}"
        f"{bayes}"
    )


def search(
    train: Sequence[Section], taxonomy: Taxonomy, seed: int, quote_head: QuoteHead | None = None
) -> tuple[TopicConfig, StanceConfig, list[str]]:
    """The best topic and stance configurations, and a Markdown table of all results
    (stances scored with the quote head, as `train.py` fits them)."""
    lines = [
        f"{SEARCH_FOLDS}-fold cross-validation on the training split; the winner is in bold.",
        "",
        "| head | configuration | macro-F1 | primary accuracy / F_avg |",
        "|---|---|---|---|",
    ]
    topic_rows = []
    for config in TOPIC_CANDIDATES:
        _, folds = cross_validate_topics(train, taxonomy, config, seed, SEARCH_FOLDS)
        scores = summarize(folds, ["macro_f1", "primary_accuracy"])
        topic_rows.append((config, scores["macro_f1"]["mean"], scores["primary_accuracy"]["mean"]))
    best_topic = max(topic_rows, key=lambda row: row[1] + row[2])[0]
    stance_rows = []
    for stance_config in STANCE_CANDIDATES:
        _, folds = cross_validate_stances(
            train, taxonomy, stance_config, seed, SEARCH_FOLDS, quote_head=quote_head
        )
        scores = summarize(folds, ["macro_f1", "f_avg"])
        stance_rows.append((stance_config, scores["macro_f1"]["mean"], scores["f_avg"]["mean"]))
    best_stance = max(stance_rows, key=lambda row: row[1])[0]
    for config, macro, primary in topic_rows:
        mark = "**" if config == best_topic else ""
        lines.append(
            f"| topics | {mark}{_describe_topic(config)}{mark} | {macro:.3f} | {primary:.3f} |"
        )
    for stance_config, macro, f_avg in stance_rows:
        mark = "**" if stance_config == best_stance else ""
        described = f"{mark}{_describe_stance(stance_config)}{mark}"
        lines.append(f"| stances | {described} | {macro:.3f} | {f_avg:.3f} |")
    return best_topic, best_stance, lines
