"""The anchor: MLServer serving our fitted topic pipeline through the V2 gRPC API.

MLServer needs protobuf < 7, so it lives in its own venv (made on first use).
It serves the same fitted scikit-learn objects as our topic head (features and
multi-label classifier, joined in one Pipeline and saved with joblib); it answers
topics only, while our service answers topics and stances.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import joblib
import sklearn
from sklearn.pipeline import Pipeline

from topicstance.bundle import ARTIFACT_FILE, resolve, verify_artifact

REPO = Path(__file__).resolve().parents[1]  # our feature classes must unpickle there too
VENV = REPO / ".bench" / "mlserver-venv"
PACKAGES = [
    "mlserver==1.7.1",
    "mlserver-sklearn==1.7.1",
    "protobuf<7",
    "uvloop<0.22",
    f"scikit-learn=={sklearn.__version__}",
]


@dataclass(frozen=True)
class MLServerConfig:
    """One way to run MLServer: inference worker processes and adaptive batching."""

    name: str
    parallel_workers: int
    max_batch_size: int = 0
    max_batch_time: float = 0.0


CONFIGS = [
    MLServerConfig("1 inference worker", parallel_workers=1),
    MLServerConfig("2 inference workers", parallel_workers=2),
    MLServerConfig(
        "2 workers + adaptive batching", parallel_workers=2, max_batch_size=32, max_batch_time=0.005
    ),
]


def python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> Path:
    """Create the MLServer venv once; later runs reuse it."""
    if not (VENV / ".installed").exists():
        print(f"bench: installing MLServer into {VENV} (first run only)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python()), "-m", "pip", "install", "--quiet", *PACKAGES],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (VENV / ".installed").write_text("\n".join(PACKAGES) + "\n")
    return python()


def export_topic_pipeline(model: Path, out: Path) -> Path:
    """Our fitted topic features and classifier as one Pipeline, saved with joblib."""
    directory = resolve(model)
    manifest = verify_artifact(directory)
    payload = joblib.load(directory / manifest.get("artifact_file", ARTIFACT_FILE))
    topics = payload["topic_model"]
    pipeline = Pipeline([("features", topics.features), ("classifier", topics.classifier)])
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, out / "model.joblib")
    return out


def write_settings(root: Path, config: MLServerConfig, grpc_port: int, http_port: int) -> None:
    (root / "settings.json").write_text(
        json.dumps(
            {
                "grpc_port": grpc_port,
                "http_port": http_port,
                "metrics_port": http_port + 1,
                "parallel_workers": config.parallel_workers,
                "debug": False,
            }
        )
    )
    model_settings: dict[str, object] = {
        "name": "topics",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }
    if config.max_batch_size:
        model_settings |= {
            "max_batch_size": config.max_batch_size,
            "max_batch_time": config.max_batch_time,
        }
    (root / "model-settings.json").write_text(json.dumps(model_settings))


def _ready(http_port: int) -> bool:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{http_port}/v2/models/topics/ready", timeout=1
        ) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@contextmanager
def serving(
    root: Path, config: MLServerConfig, grpc_port: int, http_port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """MLServer running `root`'s model until the block ends."""
    write_settings(root, config, grpc_port, http_port)
    mlserver = VENV / "bin" / "mlserver"
    process = subprocess.Popen(
        [str(mlserver), "start", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "MLSERVER_LOGGING_LEVEL": "WARNING", "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = time.monotonic() + 120
        while not _ready(http_port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"MLServer ({config.name}) did not become ready")
            time.sleep(0.5)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
