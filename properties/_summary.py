"""`raftwright-check all`: every engine once, then one table (the heart of `make check`).

Each row says which engine ran, what it checked, how much it explored, how long it took and
the verdict. The command fails if any row fails: a violation in the spec, a failed proof, or a
seeded bug that no engine caught.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CORPUS", "Row", "format_rows", "run_all"]

# The recorded-trace corpus, relative to the repository root (where make runs).
CORPUS = Path("tests/traces")


@dataclass(frozen=True, slots=True)
class Row:
    """Row is one line of the summary: an engine's run and its verdict."""

    engine: str
    checked: str
    size: str
    seconds: float
    ok: bool
    detail: str = ""


def _stateful() -> Row:
    from properties.stateful import run_stateful

    result = run_stateful("ci")
    return Row(
        "hypothesis",
        "all invariants after every step, 1-5 nodes, faults",
        f"{result.examples} runs, {result.steps} steps",
        result.seconds,
        result.ok,
        result.counterexample or "",
    )


def _explore() -> Row:
    from properties.explore import config_by_name, explore

    config = config_by_name("ci")
    result = explore(config)
    return Row(
        "explorer",
        f"all invariants in every state, {config.nodes} nodes (bounded BFS)",
        f"{result.distinct_states} states, depth {result.depth}"
        + ("" if result.complete else " (depth-bounded)"),
        result.seconds,
        result.ok,
        result.counterexample or "",
    )


def _mutants() -> Row:
    from properties.mutants import format_table, run_catalogue, summary_line

    result = run_catalogue()
    return Row(
        "mutants",
        "every seeded bug is caught by some engine",
        summary_line(result).removeprefix("mutants: "),
        result.seconds,
        result.ok,
        "" if result.ok else format_table(result),
    )


def _smt() -> list[Row]:
    from properties.smt import run_all as run_smt

    return [
        Row(
            f"z3 {row.check}",
            row.what,
            row.size,
            row.result.seconds,
            row.result.ok,
            row.result.counterexample or "",
        )
        for row in run_smt()
    ]


def _conformance() -> Row:
    from properties.conformance import check_traces

    result = check_traces([CORPUS])
    return Row(
        "conformance",
        "recorded impl traces replay on the spec",
        f"{result.events} events",
        result.seconds,
        result.ok,
        "" if result.ok else result.render(),
    )


ENGINES: dict[str, Callable[[], Row | list[Row]]] = {
    "hypothesis": _stateful,
    "explorer": _explore,
    "smt": _smt,
    "conformance": _conformance,
    "mutants": _mutants,
}


def format_rows(rows: Sequence[Row]) -> str:
    """format_rows renders the summary table."""
    headers = ("engine", "what it checked", "explored", "time", "result")
    cells = [
        (row.engine, row.checked, row.size, f"{row.seconds:.1f} s", "ok" if row.ok else "FAIL")
        for row in rows
    ]
    widths = [max(len(line[col]) for line in [headers, *cells]) for col in range(5)]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True))
        for line in [headers, *cells]
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def run_all(engines: Sequence[str] | None = None) -> int:
    """run_all runs the chosen engines (all by default), prints the table, returns the exit code."""
    chosen = list(engines or ENGINES)
    rows: list[Row] = []
    for name in chosen:
        print(f"== {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            produced = ENGINES[name]()
        except Exception as error:  # an engine that crashes is a failed row, not a traceback
            produced = Row(
                name,
                "(engine crashed)",
                "-",
                time.perf_counter() - started,
                False,
                f"{type(error).__name__}: {error}",
            )
        new_rows = produced if isinstance(produced, list) else [produced]
        rows.extend(new_rows)
        verdict = "ok" if all(row.ok for row in new_rows) else "FAIL"
        elapsed = time.perf_counter() - started
        print(f"== {name}: {verdict} in {elapsed:.1f} s", file=sys.stderr, flush=True)
    for row in rows:
        if not row.ok and row.detail:
            print(f"\n{row.engine} failed:\n{row.detail}\n")
    print(format_rows(rows))
    failed = [row.engine for row in rows if not row.ok]
    tail = f"; failed: {', '.join(failed)}" if failed else ""
    print(f"check: {len(rows) - len(failed)} of {len(rows)} checks passed{tail}")
    return 1 if failed else 0
