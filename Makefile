# Two commands for a fresh machine: `make demo` and `make test`. Every target sets up what it needs:
# the virtualenv and Python deps (pip's cache keeps a second run offline), the Java deps (Maven's ~/.m2),
# and the real services (`tapewatch infra up`, idempotent).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp changes whenever pyproject.toml does, so dependency edits reinstall and nothing else does.
DEPS_STAMP := $(VENV)/.deps-$(shell sha256sum pyproject.toml | cut -c1-16)
PYTEST_ARGS ?=
# The demo stops by itself and prints its summary; `make demo DEMO_ARGS=` runs until Ctrl-C.
DEMO_ARGS ?= --duration 120

.PHONY: deps infra lint format test unit integration demo bench status down clean

$(DEPS_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --progress-bar off -q -e '.[dev]'
	@rm -f $(VENV)/.deps-*
	@touch $@

deps: $(DEPS_STAMP)

infra: deps
	$(BIN)/tapewatch infra up

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint infra
	$(BIN)/pytest $(PYTEST_ARGS)

unit: deps
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

integration: infra
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

demo: infra
	$(BIN)/tapewatch run $(DEMO_ARGS)

bench: infra
	$(BIN)/tapewatch bench all

status: deps
	$(BIN)/tapewatch infra status

down: deps
	$(BIN)/tapewatch infra down

clean: down
	rm -rf var reports
