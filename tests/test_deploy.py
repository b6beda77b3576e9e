"""The Kubernetes manifests validate against the Kubernetes schemas and agree with the
image and the server's settings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from service.config import parse_settings
from tests.serving import REPO

MANIFESTS = sorted((REPO / "deploy" / "kubernetes").glob("*.yaml"))
RESOURCES = [m for m in MANIFESTS if m.name != "kustomization.yaml"]


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO / "deploy" / "kubernetes" / name).read_text())
    return document


def test_manifests_validate_offline_and_strictly() -> None:
    validator = Path(sys.executable).with_name("kubernetes-validate")
    done = subprocess.run(
        [str(validator), "--strict", *map(str, RESOURCES)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("passed") == len(RESOURCES)


def test_kustomization_lists_every_manifest() -> None:
    listed = set(load("kustomization.yaml")["resources"])
    assert listed == {m.name for m in RESOURCES}


def test_deployment_agrees_with_the_image_and_the_server() -> None:
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    exposed = {int(p) for p in re.findall(r"\d+", next(
        line for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("EXPOSE")
    ))}  # fmt: skip
    assert set(ports.values()) == exposed
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == ports["grpc"]
    env = {e["name"]: e["value"] for e in container["env"]}
    settings = parse_settings(
        [], {**env, "TOPICSTANCE_HOST": "0.0.0.0", "TOPICSTANCE_INSECURE": "1"}
    )
    drain = settings.drain_delay_seconds + settings.grace_seconds
    assert pod["terminationGracePeriodSeconds"] >= drain + 5
    image_env = (REPO / "Dockerfile").read_text()
    for name in ("TOPICSTANCE_GRACE_SECONDS", "TOPICSTANCE_DRAIN_DELAY_SECONDS"):
        assert f"{name}={env[name]}" in image_env, name
    assert settings.workers == int(float(container["resources"]["limits"]["cpu"]))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["readinessProbe"]["grpc"]["service"] == "topicstance.v1.TopicStanceService"


def test_headless_service_is_headless() -> None:
    assert load("service-headless.yaml")["spec"]["clusterIP"] == "None"
    assert load("service.yaml")["spec"]["type"] == "ClusterIP"
