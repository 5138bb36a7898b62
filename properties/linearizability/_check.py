"""check(history): the whole-history verdict, partitioned per key, with a minimal failing window.

P-compositionality (Herlihy & Wing 1990, locality): a history is linearizable
iff its restriction to each object is. A KV store's objects are its keys, so
the search runs per key, which turns one exponential search into many small ones.

When a key fails, the report narrows it to a short window: first the shortest
failing prefix in time (a prefix of a history is a history; an operation cut
by the prefix end becomes unknown), then the latest start whose window still
fails when the key may hold ANY value at the start. The ANY start is more
permissive than the real one, so the window fails on its own: it is a
violation whatever happened before it.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from ._history import Operation, OpKind, Outcome
from ._search import ANY, SearchResult, State, Verdict, search_key

__all__ = ["CheckResult", "KeyResult", "check", "relevant", "render_window"]

_WINDOW_STEPS = 200_000
_WINDOW_STARTS = 400


@dataclass(frozen=True, slots=True)
class KeyResult:
    """KeyResult is the verdict on one key; ``window`` is set when it is not linearizable."""

    key: str
    operations: int
    result: SearchResult
    window: tuple[Operation, ...] = ()


@dataclass
class CheckResult:
    """CheckResult of a whole history (``verdict`` summarises every key)."""

    operations: int = 0
    checked: int = 0
    steps: int = 0
    seconds: float = 0.0
    keys: list[KeyResult] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        verdicts = {k.result.verdict for k in self.keys}
        if Verdict.NOT_LINEARIZABLE in verdicts:
            return Verdict.NOT_LINEARIZABLE
        if Verdict.UNKNOWN in verdicts:
            return Verdict.UNKNOWN
        return Verdict.LINEARIZABLE

    @property
    def failures(self) -> list[KeyResult]:
        return [k for k in self.keys if k.result.verdict is Verdict.NOT_LINEARIZABLE]

    @property
    def undecided(self) -> list[KeyResult]:
        return [k for k in self.keys if k.result.verdict is Verdict.UNKNOWN]

    def render(self) -> str:
        """render: a summary line, then each failing key's window as a table."""
        lines = [
            f"linearizability: {self.verdict.value} ({self.checked} of {self.operations} "
            f"operations constrain the result, {len(self.keys)} keys, {self.steps} search "
            f"steps, {self.seconds:.2f}s)"
        ]
        for k in self.undecided:
            lines.append(f"  key {k.key!r}: undecided after {k.result.steps} steps")
        for k in self.failures:
            lines.append(
                f"  key {k.key!r}: NOT linearizable; minimal failing window "
                f"({len(k.window)} of {k.operations} operations):"
            )
            lines.extend("    " + row for row in render_window(k.window).splitlines())
        return "\n".join(lines)


def relevant(ops: Iterable[Operation]) -> list[Operation]:
    """relevant drops what cannot constrain the verdict: failed ops and unknown reads."""
    return [
        op
        for op in ops
        if op.outcome is not Outcome.FAILED
        and not (op.kind is OpKind.GET and op.outcome is Outcome.UNKNOWN)
    ]


def check(
    ops: Iterable[Operation],
    *,
    max_steps_per_key: int = 2_000_000,
    seconds: float = math.inf,
    initial: State = None,
    window: bool = True,
) -> CheckResult:
    """check decides linearizability of a KV history (every key starts missing by default).

    ``seconds`` bounds the whole check, ``max_steps_per_key`` each key's search;
    a key that runs out is UNKNOWN, never guessed.
    """
    started = time.monotonic()
    deadline = started + seconds
    all_ops = list(ops)
    kept = relevant(all_ops)
    result = CheckResult(operations=len(all_ops), checked=len(kept))
    by_key: dict[str, list[Operation]] = defaultdict(list)
    for op in kept:
        by_key[op.key].append(op)
    for key in sorted(by_key):
        key_ops = by_key[key]
        outcome = search_key(
            key_ops, initial=initial, max_steps=max_steps_per_key, deadline=deadline
        )
        result.steps += outcome.steps
        failing: tuple[Operation, ...] = ()
        if outcome.verdict is Verdict.NOT_LINEARIZABLE and window:
            failing = minimal_window(key_ops, initial)
        result.keys.append(KeyResult(key, len(key_ops), outcome, failing))
    result.seconds = time.monotonic() - started
    return result


def _fails(ops: Sequence[Operation], initial: State) -> bool:
    res = search_key(ops, initial=initial, max_steps=_WINDOW_STEPS)
    return res.verdict is Verdict.NOT_LINEARIZABLE


def _prefix(ops: Sequence[Operation], end: float) -> list[Operation]:
    """_prefix is the history as seen at time ``end`` (cut operations become unknown)."""
    out: list[Operation] = []
    for op in ops:
        if op.invoke > end:
            continue
        if op.outcome is Outcome.OK and op.complete > end:
            if op.kind is OpKind.GET:
                continue
            out.append(replace(op, outcome=Outcome.UNKNOWN, output=None))
            continue
        out.append(op)
    return out


def minimal_window(ops: Sequence[Operation], initial: State = None) -> tuple[Operation, ...]:
    """minimal_window narrows a failing key history to a short window that fails by itself."""
    ends = sorted({op.complete for op in ops if op.outcome is Outcome.OK})
    lo, hi = 0, len(ends) - 1
    if not ends or not _fails(_prefix(ops, ends[hi]), initial):
        return tuple(sorted(ops, key=lambda o: (o.invoke, o.op_id)))
    while lo < hi:  # the failing prefixes are upward closed in the end time
        mid = (lo + hi) // 2
        if _fails(_prefix(ops, ends[mid]), initial):
            hi = mid
        else:
            lo = mid + 1
    prefix = _prefix(ops, ends[lo])
    best = prefix
    starts = sorted({op.invoke for op in prefix}, reverse=True)[:_WINDOW_STARTS]
    for start in starts:
        candidate = [op for op in prefix if op.outcome is Outcome.UNKNOWN or op.complete >= start]
        if _fails(candidate, ANY):
            best = candidate
            break
    return tuple(sorted(best, key=lambda o: (o.invoke, o.op_id)))


def render_window(ops: Sequence[Operation]) -> str:
    """render_window prints operations as a table; times are relative to the first invocation."""
    if not ops:
        return "(no operations)"
    base = min(op.invoke for op in ops)
    rows = [("op", "client", "invoke", "complete", "operation")]
    for op in ops:
        done = "-" if op.outcome is Outcome.UNKNOWN else f"{op.complete - base:.6f}"
        rows.append((str(op.op_id), str(op.client), f"{op.invoke - base:.6f}", done, op.describe()))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.rjust(w) for cell, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
        for r in rows
    )
