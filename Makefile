# raftwright: every target depends on setup, so a fresh clone needs no manual step.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup check lint typecheck test

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# check: the main job. Types and lint, then every engine over the spec and the trace corpus,
# then the seeded-bug table; one summary table at the end, non-zero exit on any failure.
check: lint typecheck
	$(BIN)/raftwright-check all

test: setup
	$(BIN)/python -m pytest -q

.PHONY: protos cluster

protos: setup
	$(BIN)/python protos/generate.py

cluster: setup
	$(BIN)/raftwright cluster --nodes 3 --data-dir ./data

.PHONY: mutants

# mutants: apply each seeded bug in its own process, run the engines, print who caught what.
mutants: setup
	$(BIN)/python -m properties.mutants

.PHONY: conformance

# conformance: replay every recorded trace in tests/traces/ through the spec.
conformance: setup
	$(BIN)/python -m properties.conformance tests/traces

.PHONY: bench bench-full

# bench: raftwright against PySyncObj (from PyPI) on 3 loopback processes; quick mode.
# Writes bench/results.json, bench/plots/*.png and BENCHMARKS.md.
bench: setup
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

# bench-full: the same with longer runs, 20 failovers and a 1,000,000-entry recovery.
bench-full: setup
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench --full
