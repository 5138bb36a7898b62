"""The engines as the catalogue runs them: one call each, a verdict, never an exception.

Each adapter runs a real engine (the explorer, the Hypothesis machine, the Z3 agreement check)
on whatever spec is currently patched and says whether it found a violation. An engine that
is not installed yet reports UNAVAILABLE, and an engine that crashes reports ERROR: neither
counts as catching a mutant, so a broken mutant or engine cannot pass for a kill.
"""

from __future__ import annotations

import enum
import importlib
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ENGINES", "EngineOutcome", "Verdict", "run_engine", "verdicts_without_shrinking"]

_NO_SHRINK_PROFILE = "raftwright-mutants-no-shrink"


class Verdict(enum.Enum):
    """Verdict is what one engine run said about the (possibly mutated) spec."""

    CAUGHT = "caught"
    MISSED = "missed"
    UNAVAILABLE = "n/a"
    ERROR = "error"
    SKIPPED = "skip"


@dataclass(frozen=True, slots=True)
class EngineOutcome:
    """EngineOutcome is one engine's verdict, how long it took, and a one-line detail."""

    engine: str
    verdict: Verdict
    seconds: float = 0.0
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "engine": self.engine,
            "verdict": self.verdict.value,
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> EngineOutcome:
        return EngineOutcome(
            engine=str(data["engine"]),
            verdict=Verdict(data["verdict"]),
            seconds=float(data["seconds"]),
            detail=str(data["detail"]),
        )


def verdicts_without_shrinking() -> None:
    """verdicts_without_shrinking turns off Hypothesis's shrink phase for this whole process.

    The catalogue needs a verdict ("did the engine find a violation?"), not a minimal run, and
    shrinking a stateful failure can take minutes per mutant. Both Hypothesis-driven engines
    are affected: the stateful `ci` profile is re-registered with the same settings minus
    shrinking, and the default profile (which the Z3 agreement check's inline settings inherit
    from) loses it too. Only the one-mutant child process calls this, never a test session:
    it changes global Hypothesis state and is never undone.
    """
    from hypothesis import Phase, settings

    default = settings()  # a copy of the current default profile
    phases = tuple(p for p in default.phases if p not in (Phase.shrink, Phase.explain))
    settings.register_profile(_NO_SHRINK_PROFILE, settings(default, phases=phases))
    settings.load_profile(_NO_SHRINK_PROFILE)
    profiles = importlib.import_module("properties.stateful._profiles")
    for name in profiles.PROFILES.values():
        chosen = settings.get_profile(name)
        kept = tuple(p for p in chosen.phases if p is not Phase.shrink)
        settings.register_profile(name, settings(chosen, phases=kept))


def _first_line(text: str | None, limit: int = 160) -> str:
    if not text:
        return ""
    for line in text.splitlines():
        if line.startswith("violated:"):
            return line[:limit]
    return text.splitlines()[0][:limit]


def _explorer(settings: Mapping[str, object]) -> tuple[Verdict, str]:
    explore = importlib.import_module("properties.explore")
    config = explore.ExploreConfig().with_overrides(**settings)
    result = explore.explore(config)
    if not result.ok:
        return Verdict.CAUGHT, f"{result.violation} at depth {result.depth}"
    scope = "complete" if result.complete else "bounded"
    return Verdict.MISSED, f"{result.distinct_states} states, depth {result.depth}, {scope}"


def _hypothesis(settings: Mapping[str, object]) -> tuple[Verdict, str]:
    stateful = importlib.import_module("properties.stateful")
    examples = settings.get("examples")
    assert examples is None or isinstance(examples, int)
    result = stateful.run_stateful(profile="ci", max_examples=examples)
    if result.ok:
        return Verdict.MISSED, f"{result.examples} runs, {result.steps} steps"
    text = result.counterexample or ""
    # The machine fails with "invariant violated ..."; anything else is the spec crashing,
    # which is a broken mutant, not a caught one.
    if "invariant violated" not in text:
        return Verdict.ERROR, _first_line(text)
    return Verdict.CAUGHT, _first_line(text)


def _z3(settings: Mapping[str, object]) -> tuple[Verdict, str]:
    check = importlib.import_module("properties.smt").check_agreement
    spec = importlib.import_module("spec")
    examples = settings.get("examples")
    result = check(step_fn=spec.step, examples=examples)  # looked up now: patched if mutated
    if result.ok:
        return Verdict.MISSED, f"agree on {result.examples} examples"
    lines = (result.counterexample or "").strip().splitlines()
    # The report ends with the first field where the encoding and the step differ.
    return Verdict.CAUGHT, lines[-1].strip()[:160] if lines else "disagrees with the spec"


_ADAPTERS: dict[str, Callable[[Mapping[str, object]], tuple[Verdict, str]]] = {
    "explorer": _explorer,
    "hypothesis": _hypothesis,
    "z3": _z3,
}

ENGINES: tuple[str, ...] = tuple(_ADAPTERS)
"""ENGINES: the engines in the fixed order every mutant is run through."""


def run_engine(engine: str, settings: Mapping[str, object]) -> EngineOutcome:
    """run_engine runs one engine with `settings` against the currently patched spec."""
    adapter = _ADAPTERS[engine]
    started = time.perf_counter()
    try:
        verdict, detail = adapter(settings)
    except ModuleNotFoundError as missing:
        return EngineOutcome(
            engine, Verdict.UNAVAILABLE, time.perf_counter() - started, str(missing)
        )
    except Exception as failure:  # an engine crash is reported, never mistaken for a kill
        last = traceback.format_exception_only(failure)[-1].strip()
        return EngineOutcome(engine, Verdict.ERROR, time.perf_counter() - started, last[:160])
    return EngineOutcome(engine, verdict, time.perf_counter() - started, detail)
