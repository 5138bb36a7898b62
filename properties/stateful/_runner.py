"""run_stateful: the programmatic entry to the Hypothesis engine.

The mutant catalogue and the `make check` summary call this rather than pytest: it runs the
machine under a profile, catches the (shrunk) failure instead of raising it, and reports how
much ground the runs covered and how fast, so "no violation found" can be weighed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hypothesis.stateful import run_state_machine_as_test

from properties.stateful._coverage import Coverage
from properties.stateful._machine import ClusterMachine, StepFn
from properties.stateful._profiles import profile_settings

__all__ = ["StatefulResult", "run_stateful"]


@dataclass(frozen=True, slots=True)
class StatefulResult:
    """StatefulResult is one engine run's verdict.

    `examples` counts every run Hypothesis executed (generation and shrinking), `steps` every
    cluster action across them; `counterexample` is the shrunk run as a table (None when ok);
    `coverage` counts runs that reached each milestone (see `COVERAGE_KEYS`) and runs per
    cluster size (`size_N`).
    """

    ok: bool
    examples: int
    steps: int
    steps_per_second: float
    counterexample: str | None
    coverage: dict[str, int]
    profile: str = "ci"
    seconds: float = 0.0


def run_stateful(
    profile: str = "ci", max_examples: int | None = None, step_fn: StepFn | None = None
) -> StatefulResult:
    """run_stateful explores the cluster model and returns the verdict instead of raising.

    `step_fn` replaces `spec.cluster_step` (it receives the cluster state and action and must
    return a `spec.ClusterResult`); without it the machine calls `spec.cluster_step` at every
    step, so patches of spec module attributes are seen.
    """
    chosen = profile_settings(profile, max_examples)
    coverage = Coverage()
    counterexample: str | None = None
    started = time.perf_counter()

    class ClusterMachineRun(ClusterMachine):
        """ClusterMachineRun binds this call's hooks (Hypothesis builds machines itself)."""

        def __init__(self) -> None:
            super().__init__(step_fn=step_fn, coverage=coverage)

    try:
        run_state_machine_as_test(ClusterMachineRun, settings=chosen)
    except Exception as failure:  # the verdict, not a crash of the engine
        counterexample = describe_failure(failure)
    seconds = time.perf_counter() - started
    return StatefulResult(
        ok=counterexample is None,
        examples=coverage.counts["runs"],
        steps=coverage.steps,
        steps_per_second=coverage.steps / seconds if seconds > 0 else 0.0,
        counterexample=counterexample,
        coverage=coverage.as_dict(),
        profile=profile,
        seconds=seconds,
    )


def describe_failure(failure: BaseException) -> str:
    """describe_failure is the failure's message (the run table) plus Hypothesis's notes.

    The notes hold the rule calls that reproduce the run; several distinct failures arrive as
    an exception group and are listed one after another.
    """
    if isinstance(failure, BaseExceptionGroup):
        return "\n\n".join(describe_failure(inner) for inner in failure.exceptions)
    parts = [f"{type(failure).__name__}: {failure}"]
    parts.extend(str(note) for note in getattr(failure, "__notes__", ()))
    return "\n".join(parts)
