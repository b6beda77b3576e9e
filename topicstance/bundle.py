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

from topicstance import language
from topicstance.actors import ActorMatcher, Mention
from topicstance.documents import Boilerplate, Language, Reader
from topicstance.explain import Evidence, Explainer
from topicstance.model import StanceModel, TopicModel

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

    Topics: a multi-label head (with a sentence stacker, calibrated) lists every topic
    above its threshold; a multiclass head and the sentences' votes pick the primary,
    listed first. Stances: one head over the masked context of each actor found, with
    the actor's own quotes weighed in.
    """

    def __init__(self, payload: Mapping[str, Any], manifest: Mapping[str, Any]) -> None:
        self.manifest = dict(manifest)
        self.version: str = manifest["version"]
        self.topic_model: TopicModel = payload["topic_model"]
        self.stance_model: StanceModel = payload["stance_model"]
        self.topics: tuple[str, ...] = self.topic_model.topics
        self.none_topic: str = self.topic_model.none_topic
        self.stances: tuple[str, ...] = self.stance_model.stances
        self.neutral_stance: str | None = payload.get("neutral_stance")
        self.actor_config: dict[str, Any] = payload["actors"]
        self.thresholds = self.topic_model.thresholds
        self.matcher = ActorMatcher.from_config(self.actor_config)
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
        detected = language.detect_all(texts)
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
        mentions = [self.matcher.find(text) for text in texts]
        topic_scores = self.topic_model.scores(
            texts, [{m.actor for m in found} for found in mentions]
        )
        answers = self.topic_model.decide(topic_scores)
        stance_scores = self.stance_model.scores(texts, mentions)
        explainer = self.explainer() if explain else None
        results, row = [], 0
        for index, ((primary, topics), found, per_text) in enumerate(
            zip(answers, mentions, stance_scores.inputs, strict=True)
        ):
            stances = []
            for item in per_text:
                scores = stance_scores.probs[row]
                stance = self.stances[int(np.argmax(scores))]
                evidence = (
                    explainer.stance(stance_scores.features, row, stance) if explainer else []
                )
                stances.append(
                    ActorStancePrediction(
                        actor=item.actor,
                        stance=stance,
                        scores=[(s, float(p)) for s, p in zip(self.stances, scores, strict=True)],
                        mentions=[m for m in found if m.actor == item.actor],
                        evidence=evidence,
                    )
                )
                row += 1
            topic_evidence = (
                explainer.topic(topic_scores.features, index, primary)
                if explainer and primary != self.none_topic
                else []
            )
            probs = topic_scores.probs[index]
            results.append(
                SectionPrediction(
                    primary_topic=primary,
                    topics=topics,
                    topic_scores=[(t, float(p)) for t, p in zip(self.topics, probs, strict=True)],
                    stances=stances,
                    topic_evidence=topic_evidence,
                )
            )
        return results

    def explainer(self) -> Explainer:
        """Built on first use, so predictions without evidence never pay for it."""
        if self._explainer is None:
            self._explainer = Explainer(self.topic_model, self.stance_model)
        return self._explainer


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
