# topicstance: `make serve` serves, `make test` tests. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
DATA := training/data
MODEL ?= $(or $(TOPICSTANCE_MODEL),models/default)
PROTO := proto/topicstance/v1/topicstance.proto
# The last released proto, kept as a buf image in the repo (a clone need not carry
# tags): `make test` refuses changes that would break its clients.
RELEASED := v0.1.0
RELEASED_IMAGE := proto/released/$(RELEASED).json

.PHONY: serve test lint typecheck proto proto-release train bench failover-test container-test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The model is built from the committed corpus when it is missing (train.py writes
# a versioned artifact and points CURRENT at it); the default model is also rebuilt
# when the corpus is newer than it. A MODEL that is an artifact directory itself
# (it holds manifest.json) is served as it is.
ifeq ($(MODEL),models/default)
MODEL_INPUTS := $(wildcard $(DATA)/*.jsonl) $(wildcard $(DATA)/*.toml) $(wildcard $(DATA)/languages/*.toml)
endif
MODEL_READY := $(if $(wildcard $(MODEL)/manifest.json),,$(MODEL)/CURRENT)
$(MODEL)/CURRENT: $(MODEL_INPUTS) | $(STAMP)
	$(BIN)/python training/train.py --data $(DATA) --out $(MODEL) --serving-only

## serve: serve on port 50051 (TOPICSTANCE_* variables pass through)
serve: $(STAMP) $(MODEL_READY)
	TOPICSTANCE_MODEL=$(MODEL) exec $(BIN)/topicstance-server

## test: lint, types, proto lint, breaking changes and freshness, data validation, unit and integration tests
test: $(STAMP) $(NODE_STAMP) lint typecheck
	$(BIN)/lint-imports
	node_modules/.bin/buf lint
	node_modules/.bin/buf breaking --against $(RELEASED_IMAGE)
	$(BIN)/python -m training.dataset check $(DATA)
	$(BIN)/python -m training.dataset check training/stress --config $(DATA)/taxonomy.toml
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## proto: regenerate the Python stubs from the .proto (never edit them by hand)
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I proto --python_out=. --grpc_python_out=. --pyi_out=. $(PROTO)

## proto-release: after tagging a release (set RELEASED), keep its proto as the image `make test` checks against
proto-release: $(NODE_STAMP)
	node_modules/.bin/buf build '.git#tag=$(RELEASED)' --exclude-source-info -o $(RELEASED_IMAGE)

## train: retrain the default model and write its report (held-out split and the stress set)
train: $(STAMP)
	$(BIN)/python training/train.py --data $(DATA) --out models/default --test-set stress=training/stress/stress.jsonl

## bench: topicstance vs the in-process limit vs MLServer, side by side (about 6 minutes)
bench: $(STAMP) models/default/CURRENT
	$(BIN)/python -m benchmarks.run --model models/default

## failover-test: 3 replicas behind haproxy under load; SIGKILL, SIGTERM, a worker killed: 0 failed calls (about 4 minutes)
failover-test: $(STAMP) $(MODEL_READY)
	$(BIN)/python -m benchmarks.failover --model $(MODEL)

## container-test: build the image, run it, classify through it, SIGTERM it (docker or podman)
container-test: $(STAMP)
	bash deploy/container-test.sh

clean:
	rm -rf $(VENV) node_modules models .bench .mypy_cache .pytest_cache .ruff_cache .hypothesis
