"""Running the catalogue: each mutant in its own process, the engines in a fixed order.

`run_one` applies one mutant (or none: the baseline) in *this* process and runs the engines and
its witness under the patch. `run_catalogue` starts `python -m properties.mutants --one NAME
--json` per mutant, two at a time (the machine has two cores), so a patch can never leak from
one mutant into another or into the caller, and collects the verdicts.

The baseline row runs the unmutated spec through every engine configuration the catalogue
uses (each explorer model, the largest Hypothesis and Z3 budgets) and every witness script:
if the correct spec failed anywhere, a "kill" would mean nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from properties.mutants._catalogue import CATALOGUE, EXPLORER_BASE, Mutant, mutant_by_name
from properties.mutants._engines import ENGINES, EngineOutcome, Verdict, run_engine
from properties.mutants._patch import patched
from properties.mutants._scenario import run_scenario

__all__ = [
    "BASELINE",
    "CatalogueResult",
    "MutantResult",
    "explorer_settings",
    "run_catalogue",
    "run_one",
]

BASELINE = "baseline"
"""BASELINE names the sanity row: the unmutated spec."""

_PER_MUTANT_TIMEOUT = 480.0
_BASELINE_TIMEOUT = 900.0
"""Guards against a hung engine, generous because other work may share the two cores."""
_BASELINE_EXPLORER_STATES = 4000


@dataclass(frozen=True, slots=True)
class MutantResult:
    """MutantResult is one row of the table.

    For a mutant, `ok` means killed: at least one engine CAUGHT it. For the baseline, `ok`
    means every engine and witness passed on the correct spec (nothing caught, no error).
    `witness` says whether the hand-written witness run broke an invariant (informational:
    a witness is not an engine and never counts as a kill).
    """

    name: str
    bug: str
    mirrors: str
    outcomes: tuple[EngineOutcome, ...]
    witness: str
    ok: bool
    seconds: float
    error: str | None = None

    @property
    def killed_by(self) -> tuple[str, ...]:
        return tuple(o.engine for o in self.outcomes if o.verdict is Verdict.CAUGHT)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "bug": self.bug,
            "mirrors": self.mirrors,
            "outcomes": [o.to_json() for o in self.outcomes],
            "witness": self.witness,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> MutantResult:
        return MutantResult(
            name=str(data["name"]),
            bug=str(data["bug"]),
            mirrors=str(data["mirrors"]),
            outcomes=tuple(EngineOutcome.from_json(o) for o in data["outcomes"]),
            witness=str(data["witness"]),
            ok=bool(data["ok"]),
            seconds=float(data["seconds"]),
            error=None if data.get("error") is None else str(data["error"]),
        )


@dataclass(frozen=True, slots=True)
class CatalogueResult:
    """CatalogueResult is the whole table: the baseline row and one row per mutant.

    `ok` holds when the baseline passed and every mutant was killed.
    """

    baseline: MutantResult
    mutants: tuple[MutantResult, ...]
    quick: bool
    seconds: float
    engines: tuple[str, ...] = field(default=ENGINES)

    @property
    def killed(self) -> int:
        return sum(1 for row in self.mutants if row.ok)

    @property
    def survived(self) -> tuple[str, ...]:
        """survived: mutants no engine caught, other than documented engine gaps."""
        return tuple(row.name for row in self.mutants if not row.ok and not _gap(row.name))

    @property
    def gaps(self) -> tuple[str, ...]:
        """gaps: uncaught mutants whose catalogue entry documents why no engine reaches them."""
        return tuple(row.name for row in self.mutants if not row.ok and _gap(row.name))

    @property
    def ok(self) -> bool:
        return self.baseline.ok and not self.survived


def _gap(name: str) -> str:
    try:
        return mutant_by_name(name).engine_gap
    except KeyError:
        return ""


def explorer_settings(mutant: Mutant) -> dict[str, object]:
    """explorer_settings is the explorer model for `mutant`: the base model plus its budget."""
    return {**EXPLORER_BASE, **mutant.budget.explorer}


def _engine_settings(mutant: Mutant, engine: str) -> dict[str, object]:
    match engine:
        case "explorer":
            return explorer_settings(mutant)
        case "hypothesis":
            return {"examples": mutant.budget.hypothesis_examples}
        case "z3":
            return {"examples": mutant.budget.z3_examples}
    raise ValueError(f"unknown engine {engine!r}")


def _run_mutant(mutant: Mutant, quick: bool) -> MutantResult:
    started = time.perf_counter()
    outcomes: list[EngineOutcome] = []
    with patched(mutant.replacements):
        witness = (
            None
            if mutant.witness is None
            else run_scenario(mutant.witness, mutant.witness_size, mutant.witness_voters)
        )
        for engine in ENGINES:
            if quick and any(o.verdict is Verdict.CAUGHT for o in outcomes):
                outcomes.append(EngineOutcome(engine, Verdict.SKIPPED))
                continue
            outcomes.append(run_engine(engine, _engine_settings(mutant, engine)))
    if witness is None:
        seen = "none (invariants cannot see it)"
    elif witness.caught:
        seen = "caught: " + ", ".join(v.invariant for v in witness.violations)
    else:
        seen = f"missed ({witness.diverged or 'ran to the end'})"
    return MutantResult(
        name=mutant.name,
        bug=mutant.bug,
        mirrors=mutant.mirrors,
        outcomes=tuple(outcomes),
        witness=seen,
        ok=any(o.verdict is Verdict.CAUGHT for o in outcomes),
        seconds=time.perf_counter() - started,
    )


def _baseline_configs() -> list[dict[str, object]]:
    configs: list[dict[str, object]] = []
    for mutant in CATALOGUE:
        settings = {**explorer_settings(mutant), "max_states": _BASELINE_EXPLORER_STATES}
        if settings not in configs:
            configs.append(settings)
    return configs


def _merge(engine: str, outcomes: Sequence[EngineOutcome]) -> EngineOutcome:
    """_merge folds several runs of one engine into one cell: the worst verdict wins."""
    seconds = sum(o.seconds for o in outcomes)
    for verdict in (Verdict.CAUGHT, Verdict.ERROR, Verdict.UNAVAILABLE):
        bad = [o for o in outcomes if o.verdict is verdict]
        if bad:
            return EngineOutcome(engine, verdict, seconds, bad[0].detail)
    return EngineOutcome(engine, Verdict.MISSED, seconds, f"{len(outcomes)} configs passed")


def _run_baseline() -> MutantResult:
    started = time.perf_counter()
    explorer = _merge("explorer", [run_engine("explorer", c) for c in _baseline_configs()])
    hypothesis_examples = max(m.budget.hypothesis_examples for m in CATALOGUE)
    z3_examples = max(m.budget.z3_examples for m in CATALOGUE)
    outcomes = (
        explorer,
        run_engine("hypothesis", {"examples": hypothesis_examples}),
        run_engine("z3", {"examples": z3_examples}),
    )
    dirty = []
    for mutant in CATALOGUE:
        if mutant.witness is None:
            continue
        outcome = run_scenario(mutant.witness, mutant.witness_size, mutant.witness_voters)
        if outcome.caught:
            dirty.append(f"{mutant.name}: {outcome.violations[0]}")
    witness = "clean" if not dirty else "VIOLATED " + "; ".join(dirty)
    # UNAVAILABLE is tolerated here (the row then says n/a); a catch or a crash is not.
    ok = not dirty and all(o.verdict in (Verdict.MISSED, Verdict.UNAVAILABLE) for o in outcomes)
    return MutantResult(
        name=BASELINE,
        bug="(unmutated spec)",
        mirrors="",
        outcomes=outcomes,
        witness=witness,
        ok=ok,
        seconds=time.perf_counter() - started,
    )


def run_one(name: str, quick: bool = False) -> MutantResult:
    """run_one runs one mutant (or the baseline) in this process; patches are undone after."""
    if name == BASELINE:
        return _run_baseline()
    return _run_mutant(mutant_by_name(name), quick)


def _failed(name: str, error: str, seconds: float) -> MutantResult:
    if name == BASELINE:
        bug, mirrors = "(unmutated spec)", ""
    else:
        mutant = mutant_by_name(name)
        bug, mirrors = mutant.bug, mutant.mirrors
    outcomes = tuple(EngineOutcome(engine, Verdict.ERROR) for engine in ENGINES)
    return MutantResult(name, bug, mirrors, outcomes, "not run", False, seconds, error)


def _in_subprocess(name: str, quick: bool, timeout: float) -> MutantResult:
    command = [sys.executable, "-m", "properties.mutants", "--one", name, "--json"]
    if quick:
        command.append("--quick")
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return _failed(name, f"timed out after {timeout:.0f} s", time.perf_counter() - started)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return _failed(name, f"exit {done.returncode}: {tail}", time.perf_counter() - started)
    return MutantResult.from_json(json.loads(lines[-1]))


def run_catalogue(
    quick: bool = False,
    names: Sequence[str] | None = None,
    jobs: int = 2,
    timeout: float = _PER_MUTANT_TIMEOUT,
    baseline: bool = True,
) -> CatalogueResult:
    """run_catalogue runs the baseline and every mutant (or `names`), `jobs` processes at once.

    `baseline=False` skips the sanity row (its result is then a failed placeholder, so the
    catalogue cannot be `ok`): for tests that only exercise the process plumbing.
    """
    started = time.perf_counter()
    chosen = list(names) if names is not None else [m.name for m in CATALOGUE]
    for name in chosen:
        mutant_by_name(name)  # fail fast on a typo
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        # The baseline is the longest row; start it first so it overlaps the mutants.
        sanity = (
            pool.submit(_in_subprocess, BASELINE, quick, max(timeout, _BASELINE_TIMEOUT))
            if baseline
            else None
        )
        rows = list(pool.map(lambda name: _in_subprocess(name, quick, timeout), chosen))
    base = sanity.result() if sanity is not None else _failed(BASELINE, "not run", 0.0)
    return CatalogueResult(
        baseline=base,
        mutants=tuple(rows),
        quick=quick,
        seconds=time.perf_counter() - started,
    )
