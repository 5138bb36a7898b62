"""Result records of the Z3 engine, and the small text tables its counterexamples use.

Every check returns a frozen dataclass with `ok`, a one-line `summary()` and, when it failed, a
readable `counterexample`, so the runner, the tests and the mutant catalogue all read the same
thing and never parse solver output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AgreementResult",
    "BmcResult",
    "Obligation",
    "OverlapResult",
    "ProofResult",
    "render_table",
]


def render_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """render_table lays out `rows` under `header` in left-aligned, space-padded columns."""
    cells = [[str(cell) for cell in header], *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[col]) for row in cells) for col in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


@dataclass(frozen=True, slots=True)
class Obligation:
    """Obligation is one verification condition: `Init => lemma`, or `Inv /\\ action => lemma'`.

    `expected_sat` marks the non-vacuity checks (an action must be enabled in some state that
    satisfies the invariant), whose success is a model rather than unsat.
    """

    action: str
    lemma: str
    ok: bool
    verdict: str
    counterexample: str | None = None
    expected_sat: bool = False


@dataclass(frozen=True, slots=True)
class ProofResult:
    """ProofResult is the inductive Election Safety proof for every cluster size."""

    variant: str
    ok: bool
    obligations: tuple[Obligation, ...]
    seconds: float
    counterexample: str | None = None

    @property
    def failed(self) -> tuple[Obligation, ...]:
        """failed lists the obligations that did not hold."""
        return tuple(item for item in self.obligations if not item.ok)

    def summary(self) -> str:
        """summary is one line: variant, verdict, obligation counts and time."""
        verdict = "proved" if self.ok else f"FAILED ({len(self.failed)} obligations)"
        first = ""
        if self.failed:
            item = self.failed[0]
            first = f"; first: {item.action} breaks {item.lemma}"
        return (
            f"induction[{self.variant}]: {verdict}, {len(self.obligations)} obligations "
            f"in {self.seconds:.2f}s{first}"
        )


@dataclass(frozen=True, slots=True)
class BmcResult:
    """BmcResult is a bounded model check from the initial state.

    `depth_reached` is the deepest unrolling for which no property violation exists at any step
    up to it; equal to `depth` when the check passed.
    """

    variant: str
    nodes: int
    depth: int
    depth_reached: int
    properties: tuple[str, ...]
    ok: bool
    seconds: float
    violated: str | None = None
    counterexample: str | None = None

    def summary(self) -> str:
        """summary is one line: size, depth reached, verdict and time."""
        verdict = "no violation" if self.ok else f"VIOLATION of {self.violated}"
        return (
            f"bmc[{self.variant}] nodes={self.nodes} depth {self.depth_reached}/{self.depth}: "
            f"{verdict} ({', '.join(self.properties)}) in {self.seconds:.2f}s"
        )


@dataclass(frozen=True, slots=True)
class AgreementResult:
    """AgreementResult compares the Z3 node transition with a Python step function.

    `by_input` counts the examples per input kind, so a reader can see what was covered.
    """

    step_name: str
    examples: int
    ok: bool
    seconds: float
    by_input: tuple[tuple[str, int], ...]
    counterexample: str | None = None

    def summary(self) -> str:
        """summary is one line: examples compared, verdict and time."""
        verdict = "agree" if self.ok else "DISAGREE"
        kinds = ", ".join(f"{name} {count}" for name, count in self.by_input)
        return (
            f"agreement[{self.step_name}]: {verdict} on {self.examples} examples "
            f"({kinds}) in {self.seconds:.2f}s"
        )


@dataclass(frozen=True, slots=True)
class OverlapResult:
    """OverlapResult is the quorum-overlap lemma for membership changes, per voter-set size."""

    variant: str
    max_voters: int
    ok: bool
    obligations: tuple[Obligation, ...]
    seconds: float
    counterexample: str | None = None

    @property
    def failed(self) -> tuple[Obligation, ...]:
        """failed lists the sizes for which disjoint majorities exist."""
        return tuple(item for item in self.obligations if not item.ok)

    def summary(self) -> str:
        """summary is one line: variant, verdict, sizes and time."""
        verdict = "proved" if self.ok else f"FAILED ({len(self.failed)} sizes)"
        return (
            f"overlap[{self.variant}]: {verdict} for |C| = 1..{self.max_voters} "
            f"in {self.seconds:.2f}s"
        )
