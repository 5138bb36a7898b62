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
	$(BIN)/python -c 'import pysyncobj, matplotlib' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

# bench-full: the same with longer runs, 20 failovers and a 1,000,000-entry recovery.
bench-full: setup
	$(BIN)/python -c 'import pysyncobj, matplotlib' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench --full

.PHONY: chaos chaos-nightly

# chaos: a real 3- and 5-node cluster under seeded faults, leadership transfers and membership
# changes (CI size, about 2.5 minutes); the last line is "chaos: ops=N faults=M
# linearizable=yes lost=0 trace_violations=0 transfers=T members_added=A members_removed=R".
# Reproduce a run with: make chaos CHAOS_ARGS="--seed S"
chaos: setup
	$(BIN)/python -m properties.chaos --preset ci $(CHAOS_ARGS)

# chaos-nightly: >= 100,000 operations and >= 1,000 faults per cluster size, with up to 600
# transfers and 300 membership changes beside them (hours).
chaos-nightly: setup
	$(BIN)/python -m properties.chaos --preset nightly $(CHAOS_ARGS)
