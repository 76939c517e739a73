# `make demo` and `make test` work on a fresh machine with Python 3.11+ and pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per extra: the demo needs only the simulator (starlette, uvicorn); the checks need the
# test extra (the AWS and Kubernetes SDKs, moto, mypy, ...), several times as much to install.
$(VENV)/.installed-demo: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[simulator]'
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/provisioner apply manifests/ --simulate
	@$(BIN)/python -c "$$SHOW_PROJECT_KEY"

# What the demo's project key got, its login left out (the Kafka username is half of it): the
# secrets stay in the 0600 file.
define SHOW_PROJECT_KEY
import json
record = json.load(open("secrets/orders-reader/stream.json"))
print(f"orders-reader/stream: project key {record['project_key_id']}, API client {record['client_id']},"
      f" Kafka at {record['kafka_bootstrap_servers']}; its secret, Kafka login and kafka_properties"
      " are in secrets/orders-reader/stream.json (0600)")
endef
export SHOW_PROJECT_KEY

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

unit: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n auto

test: lint typecheck unit

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) secrets secrets.env .provisioner-simulator.json .pytest_cache .mypy_cache .ruff_cache
