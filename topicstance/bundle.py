"""The model bundle: save, verify and load the artifact, and predict with it.

An artifact is a directory with `model.joblib` (the fitted heads, label sets and
alias lists) and `manifest.json` (version, hashes, label sets, metrics, library
versions). The SHA-256 in the manifest is checked before anything is unpickled:
unpickling runs code, so artifacts must come from a trusted source. With a
signing key, the manifest also carries an HMAC-SHA256 (`manifest.sig`) that is
checked first.

A model directory is either an artifact, or a directory of artifacts with a
`CURRENT` file naming the one in use: retraining writes a new artifact next to
the old one and then replaces `CURRENT` atomically, so a server reloading at any
moment sees one complete artifact or the other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.pipeline import FeatureUnion, Pipeline

from topicstance import inference, language
from topicstance.actors import ActorMatcher, Mention
from topicstance.documents import Boilerplate, Language, Reader
from topicstance.features import ACTOR_TOKEN, OTHER_TOKEN, sentence_spans, stance_inputs

ARTIFACT_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
POINTER_FILE = "CURRENT"
# Version 2: the pickled classes live in the `topicstance` package (version 1 named
# `service.*`), so older artifacts cannot be unpickled and must be retrained.
FORMAT_VERSION = 2
# The HMAC key that signs and checks manifests comes from the environment only.
SIGNING_KEY_ENV = "TOPICSTANCE_SIGNING_KEY"


def signing_key() -> bytes | None:
    """The manifest signing key, if one is set (never a flag: flags show in `ps`)."""
    return os.environ.get(SIGNING_KEY_ENV, "").encode() or None


class ArtifactError(Exception):
    """The artifact is missing, tampered with, or incompatible; the message says which."""


class ModelUnavailableError(Exception):
    """No model is loaded yet (the server was started to wait for one)."""


@dataclass(frozen=True)
class Evidence:
    """A term and how much it pushed a prediction (coefficient × feature value)."""

    term: str
    weight: float


@dataclass(frozen=True)
class ActorStancePrediction:
    """One actor's stance in one section; mention offsets index the model text."""

    actor: str
    stance: str
    scores: list[tuple[str, float]]
    mentions: list[Mention]
    evidence: list[Evidence] = field(default_factory=list)


@dataclass(frozen=True)
class SectionPrediction:
    """Topics and stances of one section."""

    primary_topic: str
    topics: list[str]
    topic_scores: list[tuple[str, float]]
    stances: list[ActorStancePrediction] = field(default_factory=list)
    topic_evidence: list[Evidence] = field(default_factory=list)
    language: str = ""
    unsupported_language: bool = False


def library_versions() -> dict[str, str]:
    """Versions that decide whether a pickled model loads correctly."""
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "numpy": np.__version__,
    }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_artifact(
    directory: Path,
    payload: Mapping[str, Any],
    manifest: Mapping[str, Any],
    signing_key: bytes | None = None,
) -> dict[str, Any]:
    """Write the joblib file, then the manifest that pins its hash (and its signature)."""
    directory.mkdir(parents=True, exist_ok=True)
    artifact = directory / ARTIFACT_FILE
    joblib.dump({"format_version": FORMAT_VERSION, **payload}, artifact, compress=3)
    full = {
        **manifest,
        "artifact_file": ARTIFACT_FILE,
        "artifact_sha256": file_sha256(artifact),
        "artifact_bytes": artifact.stat().st_size,
        "format_version": FORMAT_VERSION,
        "library_versions": library_versions(),
    }
    text = json.dumps(full, indent=2, sort_keys=True) + "\n"
    (directory / MANIFEST_FILE).write_text(text, encoding="utf-8")
    if signing_key:
        (directory / SIGNATURE_FILE).write_text(_signature(signing_key, text.encode()) + "\n")
    return full


def _signature(key: bytes, manifest: bytes) -> str:
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def resolve(path: Path) -> Path:
    """The artifact directory: `path` itself, or the one its CURRENT file names."""
    pointer = path / POINTER_FILE
    if not pointer.is_file():
        return path
    name = pointer.read_text(encoding="utf-8").strip()
    if not name or Path(name).name != name or name in (".", ".."):
        raise ArtifactError(f"{pointer} must hold the name of an artifact directory next to it")
    return path / name


def publish(root: Path, name: str) -> None:
    """Point `root/CURRENT` at `root/name`, atomically (write aside, then rename)."""
    staging = root / f".{POINTER_FILE}.{os.getpid()}"
    staging.write_text(name + "\n", encoding="utf-8")
    os.replace(staging, root / POINTER_FILE)


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError(f"no model at {directory}: {MANIFEST_FILE} is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not a readable JSON manifest: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path} is not a JSON object")
    return manifest


def verify_signature(directory: Path, key: bytes) -> None:
    """With a key, the manifest must carry a valid HMAC-SHA256 signature."""
    signature = directory / SIGNATURE_FILE
    if not signature.is_file():
        raise ArtifactError(
            f"{directory}: the manifest is not signed ({SIGNATURE_FILE} is missing)"
        )
    try:
        expected = _signature(key, (directory / MANIFEST_FILE).read_bytes())
    except FileNotFoundError as exc:
        raise ArtifactError(f"no model at {directory}: {MANIFEST_FILE} is missing") from exc
    if not hmac.compare_digest(expected, signature.read_text(encoding="utf-8").strip()):
        raise ArtifactError(f"{directory}: the manifest signature does not match the signing key")


def verify_artifact(directory: Path, signing_key: bytes | None = None) -> dict[str, Any]:
    """Check signature, hash and library versions without unpickling; return the manifest."""
    if signing_key:
        verify_signature(directory, signing_key)
    manifest = read_manifest(directory)
    artifact = directory / str(manifest.get("artifact_file", ARTIFACT_FILE))
    if not artifact.is_file():
        raise ArtifactError(f"no model at {directory}: {artifact.name} is missing")
    expected, actual = manifest.get("artifact_sha256"), file_sha256(artifact)
    if expected != actual:
        raise ArtifactError(
            f"{artifact} does not match its manifest (SHA-256 {actual[:12]}..., manifest says "
            f"{str(expected)[:12]}...): refusing to load a modified or truncated artifact"
        )
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{directory}: artifact format {manifest.get('format_version')} is not this "
            f"server's format {FORMAT_VERSION}: retrain the model (make train, or "
            "training/train.py --out DIR)"
        )
    trained = manifest.get("library_versions", {}).get("scikit-learn", "")
    if _minor(trained) != _minor(sklearn.__version__):
        raise ArtifactError(
            f"{artifact} was trained with scikit-learn {trained}, this server runs "
            f"{sklearn.__version__}: retrain the model with this version"
        )
    return manifest


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


class ModelBundle:
    """A loaded, verified model that predicts topics and stances for sections.

    Topics: a multi-label head lists every topic above its threshold; a multiclass
    head (the none topic included) picks the primary, which is listed first.
    Stances: one multiclass head over the masked context of each actor found.
    """

    def __init__(self, payload: Mapping[str, Any], manifest: Mapping[str, Any]) -> None:
        self.manifest = dict(manifest)
        self.version: str = manifest["version"]
        self.topics: tuple[str, ...] = tuple(payload["topics"])
        self.none_topic: str = payload["none_topic"]
        self.stances: tuple[str, ...] = tuple(payload["stances"])
        self.neutral_stance: str | None = payload.get("neutral_stance")
        self.actor_config: dict[str, Any] = payload["actors"]
        self.thresholds = np.asarray([payload["thresholds"][t] for t in self.topics])
        self.topic_features = payload["topic_features"]
        self.topic_classifier = payload["topic_classifier"]
        self.primary_classifier = payload["primary_classifier"]
        self.topic_stacker: dict[str, np.ndarray] | None = payload.get("topic_stacker")
        self.stance_model = payload["stance_model"]
        self.matcher = ActorMatcher.from_config(self.actor_config)
        self._primary_labels = [str(c) for c in self.primary_classifier.classes_]
        self._stance_order = [list(self.stance_model.classes_).index(s) for s in self.stances]
        self._explainer: Explainer | None = None
        # Artifacts trained before languages were recorded know none: nothing is refused.
        self.language_data = tuple(Language.from_payload(x) for x in payload.get("languages", []))
        self.languages = tuple(x.code for x in self.language_data if x.trained)
        self.reader = Reader(Boilerplate(self.language_data))

    @property
    def actors(self) -> tuple[str, ...]:
        return self.matcher.actors

    def predict(self, texts: Sequence[str], explain: bool = False) -> list[SectionPrediction]:
        """Classify each text as one section; a text in a language the model was not
        trained on gets the none topic and no stances, never a guess."""
        detected = [language.detect(text) for text in texts]
        readable = [not self._unsupported(code) for code in detected]
        kept = [text for text, ok in zip(texts, readable, strict=True) if ok]
        predictions = iter(self._classify(kept, explain))
        return [
            replace(next(predictions), language=code) if ok else self._unreadable(code)
            for code, ok in zip(detected, readable, strict=True)
        ]

    def _unsupported(self, code: str) -> bool:
        return bool(code) and bool(self.languages) and code not in self.languages

    def _unreadable(self, code: str) -> SectionPrediction:
        return SectionPrediction(
            primary_topic=self.none_topic,
            topics=[],
            topic_scores=[(topic, 0.0) for topic in self.topics],
            language=code,
            unsupported_language=True,
        )

    def _classify(self, texts: Sequence[str], explain: bool = False) -> list[SectionPrediction]:
        """Classify each text as one section; work is batched across texts."""
        if not texts:
            return []
        features = inference.transform(self.topic_features, list(texts))
        topic_probs = inference.predict_proba(self.topic_classifier, features)
        if self.topic_stacker is not None:
            highest, passing = sentence_evidence(texts, self.topic_features, self.topic_classifier)
            topic_probs = stacked_probs(
                stack_inputs(topic_probs, highest, passing), self.topic_stacker
            )
        primary_probs = inference.predict_proba(self.primary_classifier, features)
        primaries = [self._primary_labels[i] for i in primary_probs.argmax(axis=1)]
        mentions = [self.matcher.find(text) for text in texts]
        inputs = [stance_inputs(text, found) for text, found in zip(texts, mentions, strict=True)]
        flat = [item for per_text in inputs for item in per_text]
        stance_features = inference.transform(self.stance_model[:-1], flat) if flat else None
        stance_probs = (
            inference.predict_proba(self.stance_model[-1], stance_features)[:, self._stance_order]
            if flat
            else np.empty((0, len(self.stances)))
        )
        explainer = self.explainer() if explain else None
        results, row = [], 0
        for index, (probs, found, per_text) in enumerate(
            zip(topic_probs, mentions, inputs, strict=True)
        ):
            stances = []
            for item in per_text:
                scores = stance_probs[row]
                stance = self.stances[int(np.argmax(scores))]
                stances.append(
                    ActorStancePrediction(
                        actor=item.actor,
                        stance=stance,
                        scores=[(s, float(p)) for s, p in zip(self.stances, scores, strict=True)],
                        mentions=[m for m in found if m.actor == item.actor],
                        evidence=explainer.stance(stance_features, row, stance)
                        if explainer
                        else [],
                    )
                )
                row += 1
            primary = primaries[index]
            evidence = (
                explainer.topic(features, index, primary)
                if explainer and primary != self.none_topic
                else []
            )
            results.append(self._topics(probs, primary, stances, evidence))
        return results

    def explainer(self) -> Explainer:
        """Built on first use, so predictions without evidence never pay for it."""
        if self._explainer is None:
            self._explainer = Explainer(self)
        return self._explainer

    def _topics(
        self,
        probs: np.ndarray,
        primary: str,
        stances: list[ActorStancePrediction],
        evidence: list[Evidence],
    ) -> SectionPrediction:
        if primary == self.none_topic:
            topics: list[str] = []
        else:
            passed = sorted(
                (i for i in range(len(self.topics)) if probs[i] >= self.thresholds[i]),
                key=lambda i: -probs[i],
            )
            topics = [primary] + [self.topics[i] for i in passed if self.topics[i] != primary]
        return SectionPrediction(
            primary_topic=primary,
            topics=topics,
            topic_scores=[(t, float(p)) for t, p in zip(self.topics, probs, strict=True)],
            stances=stances,
            topic_evidence=evidence,
        )


TOP_TERMS = 5
SENTENCE_MIN_WORDS = 4


def sentence_evidence(
    texts: Sequence[str], features: Any, classifier: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Per text and topic: the highest probability any one sentence gets, and how many
    sentences pass 0.5. A topic is listed when a full sentence is about it, and this
    is what a whole-section score dilutes."""
    sentences, owners = [], []
    for index, text in enumerate(texts):
        for start, end in sentence_spans(text):
            if len(text[start:end].split()) >= SENTENCE_MIN_WORDS:
                sentences.append(text[start:end])
                owners.append(index)
    width = len(classifier.classes_)
    highest, passing = np.zeros((len(texts), width)), np.zeros((len(texts), width))
    if sentences:
        probs = inference.predict_proba(classifier, inference.transform(features, sentences))
        rows = np.asarray(owners)
        np.maximum.at(highest, rows, probs)
        np.add.at(passing, rows, probs >= 0.5)
    return highest, passing


def stack_inputs(section: np.ndarray, highest: np.ndarray, passing: np.ndarray) -> np.ndarray:
    """The stacker's three inputs per topic: section and best-sentence log-odds, count."""

    def logit(p: np.ndarray) -> np.ndarray:
        clipped = np.clip(p, 1e-6, 1 - 1e-6)
        return np.asarray(np.log(clipped / (1 - clipped)))

    return np.stack([logit(section), logit(highest), passing], axis=-1)


def stacked_probs(inputs: np.ndarray, stacker: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per topic, a logistic combination of section and sentence evidence."""
    scores = np.einsum("ntk,tk->nt", inputs, stacker["coef"]) + stacker["intercept"]
    return np.asarray(1.0 / (1.0 + np.exp(-scores)))


class Explainer:
    """Top terms behind a prediction: the largest coefficient × feature value products."""

    def __init__(self, bundle: ModelBundle) -> None:
        self._topic_names = FeatureNames(bundle.topic_features)
        self._topic_weights = linear_weights(bundle.primary_classifier)
        self._topic_classes = [str(c) for c in bundle.primary_classifier.classes_]
        self._stance_names = FeatureNames(bundle.stance_model[:-1])
        self._stance_weights = linear_weights(bundle.stance_model[-1])
        self._stance_classes = [str(c) for c in bundle.stance_model[-1].classes_]

    def topic(self, features: Any, row: int, label: str) -> list[Evidence]:
        weights = self._topic_weights[self._topic_classes.index(label)]
        return _top_terms(features[row], weights, self._topic_names)

    def stance(self, features: Any, row: int, label: str) -> list[Evidence]:
        weights = self._stance_weights[self._stance_classes.index(label)]
        return _top_terms(features[row], weights, self._stance_names)


class FeatureNames:
    """Readable names of a feature union's columns, one column at a time.

    Spelling out every name (hundreds of thousands of strings) would grow each
    worker by ~20 MB on the first explained call; this keeps, per TF-IDF block,
    only an index into the vocabulary the block already holds.
    """

    def __init__(self, features: Any) -> None:
        self._prefixes: list[str] = []
        self._names: list[np.ndarray] = []
        for prefix, block in _leaf_blocks(features, ""):
            self._prefixes.append(prefix)
            self._names.append(_block_names(block))
        self._offsets = np.cumsum([0] + [len(names) for names in self._names])

    def __getitem__(self, column: int) -> str | None:
        index = int(np.searchsorted(self._offsets, column, side="right")) - 1
        name = self._prefixes[index] + str(self._names[index][column - self._offsets[index]])
        return _readable(name)


def _leaf_blocks(features: Any, prefix: str) -> list[tuple[str, Any]]:
    """(name prefix, estimator) per block, in column order, as FeatureUnion names them."""
    if isinstance(features, Pipeline):
        return _leaf_blocks(features.steps[-1][1], prefix)
    if isinstance(features, FeatureUnion):
        return [
            leaf
            for name, block in features.transformer_list
            if block not in (None, "drop")
            for leaf in _leaf_blocks(block, f"{prefix}{name}__")
        ]
    return [(prefix, features)]


def _block_names(block: Any) -> np.ndarray:
    """A block's names; a TF-IDF block's point at its vocabulary's own strings."""
    vocabulary = getattr(getattr(block, "vectorizer_", None), "vocabulary_", None)
    if vocabulary is None:
        return np.asarray(block.get_feature_names_out(), dtype=object)
    names = np.empty(len(vocabulary), dtype=object)
    names[np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary))] = list(
        vocabulary
    )
    return names


def linear_weights(estimator: Any) -> np.ndarray:
    """Per-class coefficient rows of a linear classifier (calibrated ones averaged)."""
    if hasattr(estimator, "calibrated_classifiers_"):
        coef = np.mean([c.estimator.coef_ for c in estimator.calibrated_classifiers_], axis=0)
    else:
        coef = np.asarray(estimator.coef_)
    if coef.shape[0] == 1:  # binary: the row scores the second class
        coef = np.vstack([-coef[0], coef[0]])
    return np.asarray(coef)


def _readable(name: str) -> str | None:
    """A feature name as a term; character n-grams (unreadable as evidence) are None."""
    block, _, term = name.rpartition("__")
    if block.startswith("char"):
        return None
    return term.replace(ACTOR_TOKEN, "<actor>").replace(OTHER_TOKEN, "<other>")


def _top_terms(row: Any, weights: np.ndarray, names: FeatureNames) -> list[Evidence]:
    row = row.tocsr()
    contributions = row.data * weights[row.indices]
    order = np.argsort(-contributions)
    terms: list[Evidence] = []
    for position in order:
        name = names[row.indices[position]]
        if contributions[position] <= 0 or len(terms) == TOP_TERMS:
            break
        if name is not None:
            terms.append(Evidence(name, float(contributions[position])))
    return terms


def load_bundle(path: Path, signing_key: bytes | None = None) -> ModelBundle:
    """Resolve, verify, then unpickle; every failure is an ArtifactError with a clear message."""
    directory = resolve(path)
    manifest = verify_artifact(directory, signing_key)
    try:
        payload = joblib.load(directory / str(manifest.get("artifact_file", ARTIFACT_FILE)))
    except Exception as exc:
        raise ArtifactError(f"{directory}: the artifact could not be loaded: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{directory}: artifact format is not version {FORMAT_VERSION}")
    try:
        return ModelBundle(payload, manifest)
    except (KeyError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{directory}: the artifact is incomplete: {exc}") from exc
