#!/usr/bin/env bash
# `make container-test`: build the image and prove it works, end to end.
#
# Builds the Dockerfile, runs the image, classifies a document through the
# published port with the CLI client, runs the HEALTHCHECK, checks the process is
# not root, mounts another model over the default, checks that a memory limit too
# low for the default worker count is refused at start, sends SIGTERM and checks a
# clean exit. Uses docker where a Docker engine answers, podman otherwise (on machines
# without an engine, ../shared/container/setup.sh prepares podman; set
# CONTAINER_SETUP to its path if it lives elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-topicstance:test}
NAME=topicstance-test-$$
OTHER=topicstance-other-$$
SMALL=topicstance-small-$$
CLI=.venv/bin/topicstance
PY=.venv/bin/python
say() { printf 'container-test: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  ENGINE=docker
  BUILD_FLAGS=()
else
  setup=${CONTAINER_SETUP:-}
  for candidate in "$setup" ../shared/container/setup.sh /work/shared/container/setup.sh; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then setup=$candidate; break; fi
  done
  if [ -n "$setup" ] && [ -x "$setup" ]; then
    eval "$("$setup")"
  fi
  command -v podman >/dev/null || { say "neither a Docker engine nor podman is available"; exit 1; }
  ENGINE=podman
  BUILD_FLAGS=(--pull=never --format docker)
fi
say "engine: $ENGINE"

cleanup() {
  $ENGINE rm -f "$NAME" "$OTHER" "$SMALL" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
WORK=$(mktemp -d)
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_healthy() {  # the HEALTHCHECK command itself, run inside the container
  for _ in $(seq 1 60); do
    if $ENGINE exec "$1" /opt/venv/bin/python -m service.healthcheck >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  $ENGINE logs "$1" >&2 || true
  return 1
}

say "building $IMAGE"
started=$(date +%s)
$ENGINE build "${BUILD_FLAGS[@]}" -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { tail -50 "$WORK/build.log" >&2; exit 1; }
say "built in $(( $(date +%s) - started )) s; image size $($ENGINE image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"

PORT=$(free_port)
$ENGINE run -d --name "$NAME" -p "127.0.0.1:$PORT:50051" "$IMAGE" >/dev/null
wait_healthy "$NAME" || { say "the server never became healthy"; exit 1; }
say "serving on 127.0.0.1:$PORT"

say "HEALTHCHECK"
if [ "$ENGINE" = podman ]; then
  $ENGINE healthcheck run "$NAME"
else
  for _ in $(seq 1 60); do
    [ "$($ENGINE inspect "$NAME" --format '{{.State.Health.Status}}')" = healthy ] && break
    sleep 1
  done
  [ "$($ENGINE inspect "$NAME" --format '{{.State.Health.Status}}')" = healthy ]
fi

say "classify a document through the published port"
$CLI classify tests/fixtures/article.txt --target "127.0.0.1:$PORT" | tee "$WORK/classified.txt"
primaries=$(tail -n +2 "$WORK/classified.txt" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^(territory|strikes|us_policy|minerals|other)$/) {print $i; break}}' | tr '\n' ' ')
[ "$primaries" = "territory strikes us_policy minerals " ] || { say "unexpected primary topics: $primaries"; exit 1; }

say "the server runs as a non-root user"
uid=$($ENGINE exec "$NAME" /opt/venv/bin/python -c 'import os; print(os.getuid())')
[ "$uid" != 0 ] || { say "the server runs as root"; exit 1; }
say "uid $uid"

say "mount another model over the default"
.venv/bin/python training/train.py --data training/examples/trade --out "$WORK/trade" --no-report >/dev/null
chmod -R a+rX "$WORK/trade"
OTHER_PORT=$(free_port)
$ENGINE run -d --name "$OTHER" -p "127.0.0.1:$OTHER_PORT:50051" -v "$WORK/trade:/models/default:ro" "$IMAGE" >/dev/null
wait_healthy "$OTHER" || { say "the container with a mounted model never became healthy"; exit 1; }
$PY - "$OTHER_PORT" <<'EOF'
import sys

import grpc

from topicstance.v1 import topicstance_pb2 as pb
from topicstance.v1 import topicstance_pb2_grpc as pb_grpc

with grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}") as channel:
    info = pb_grpc.TopicStanceServiceStub(channel).GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
assert list(info.topics) == ["tariffs", "quotas", "arbitration"], info.topics
print(f"mounted model {info.model_version}: topics {list(info.topics)}")
EOF
$ENGINE rm -f "$OTHER" >/dev/null

say "a memory limit too low for the default worker count: refused at start"
code=0
$ENGINE run --name "$SMALL" --memory 512m "$IMAGE" >"$WORK/small.log" 2>&1 || code=$?
[ "$code" = 2 ] || { cat "$WORK/small.log" >&2; say "exit code $code, expected 2"; exit 1; }
grep -q "the memory limit (512 MiB) is too low for" "$WORK/small.log" || { cat "$WORK/small.log" >&2; say "no memory message"; exit 1; }
grep -o "too low for [0-9]* workers.*" "$WORK/small.log" | head -1 >&2
$ENGINE rm -f "$SMALL" >/dev/null

say "SIGTERM: drain and exit 0"
$ENGINE kill --signal TERM "$NAME" >/dev/null
for _ in $(seq 1 40); do
  [ "$($ENGINE inspect "$NAME" --format '{{.State.Running}}')" = false ] && break
  sleep 0.5
done
code=$($ENGINE inspect "$NAME" --format '{{.State.ExitCode}}')
[ "$code" = 0 ] || { $ENGINE logs "$NAME" >&2; say "exit code $code"; exit 1; }
# The logs go to a file first: under pipefail, `grep -q` closing the pipe early can
# fail the pipeline even when the line is there.
$ENGINE logs "$NAME" >"$WORK/final.log" 2>&1
grep -q '"event": "worker stopped"' "$WORK/final.log" || { say "no drain in the logs"; exit 1; }
say "exited 0 after draining"
say "passed"
