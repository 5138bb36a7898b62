"""Checker rates: how fast the verification engines run on this machine.

Each engine is called through its public entry point with its ``ci`` preset (quick mode
trims the Hypothesis example count and the explorer depth so the whole bench stays within a
few minutes; the report says which was used). Conformance is measured on real traces that
the bench's own traced 3-process cluster recorded, and on the deterministic sans-IO trace of
``tests/conformance/bench.py``.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["conformance_rate", "run_checkers"]


def conformance_rate(trace_dir: Path) -> dict[str, Any]:
    """conformance_rate replays the traces under trace_dir through the spec."""
    from properties.conformance import check_traces

    result = check_traces([str(trace_dir)])
    return {
        "ok": result.ok,
        "events": result.events,
        "seconds": result.seconds,
        "events_per_s": result.events_per_second,
        "summary": result.render().splitlines()[-1],
    }


def _sansio_conformance(proposals: int) -> dict[str, Any]:
    from tests.conformance.bench import record

    with tempfile.TemporaryDirectory() as tmp:
        record(Path(tmp), proposals)
        return conformance_rate(Path(tmp))


def run_checkers(full: bool) -> dict[str, Any]:
    """run_checkers returns one figure group per engine (see module docstring)."""
    from properties.explore import config_by_name, explore
    from properties.smt import prove_election_safety
    from properties.stateful import run_stateful

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    stateful = run_stateful("ci", max_examples=None if full else 60)
    out["stateful"] = {
        "ok": stateful.ok,
        "examples": stateful.examples,
        "steps": stateful.steps,
        "seconds": stateful.seconds or time.perf_counter() - t0,
        "steps_per_s": stateful.steps_per_second,
        "setting": "profile ci" + ("" if full else ", max_examples=60"),
    }
    config = config_by_name("ci")
    if not full:
        config = dataclasses.replace(config, max_depth=10)
    explored = explore(config)
    out["explore"] = {
        "ok": explored.ok,
        "distinct_states": explored.distinct_states,
        "edges": explored.edges,
        "seconds": explored.seconds,
        "states_per_s": explored.states_per_second,
        "setting": f"config ci, max_depth={config.max_depth}, workers={config.workers}",
    }
    proof = prove_election_safety()
    out["z3"] = {
        "ok": proof.ok,
        "obligations": len(proof.obligations),
        "seconds": proof.seconds,
        "summary": proof.summary(),
    }
    out["conformance_sansio"] = _sansio_conformance(2000 if full else 500)
    return out
