"""Agreement: the Z3 node encoding and a Python step function compute the same successor.

For many concrete single-node states and inputs (the Hypothesis strategies of `_cases`), the
pre-state and the input are pinned in a solver holding the encoding's transition formula, the
solver solves for the post-state (and the test insists the solution is unique), and the result
is compared field by field with `step_fn(state, input)`, by default `spec.step`. This is what
keeps the encoding used by bounded model checking from drifting away from the spec; passing a
mutated step function (the mutant catalogue does) must make it fail.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3
from hypothesis import HealthCheck, Phase, given, settings

from properties.smt._cases import CAPACITY, agreement_cases
from properties.smt._concrete import (
    message_views,
    pin_message,
    pin_node,
    read_messages,
    read_node,
    view_of,
)
from properties.smt._node import (
    Effect,
    Flaw,
    SymMsg,
    SymNode,
    client_request,
    election_timeout,
    fresh_msg,
    fresh_node,
    nodes_equal,
    receive,
    restart,
    send_append,
    var,
)
from properties.smt._results import AgreementResult
from spec import Input, NodeState, Receive, SendAppend, StepResult, step

__all__ = ["CAPACITY", "agreement_cases", "check_agreement", "compare_step"]

StepFn = Callable[[NodeState, Input], StepResult]


# --- the comparison ------------------------------------------------------------------------


def _kind(event: Input) -> str:
    if isinstance(event, Receive):
        return type(event.message).__name__
    return type(event).__name__


@dataclass
class _Encoded:
    """_Encoded is one transition formula, built once per (size, id, input kind, flaws)."""

    solver: Any
    pre: SymNode
    post: SymNode
    msg: SymMsg
    effect: Effect
    extra: tuple[Any, ...]


_CACHE: dict[tuple[int, str, frozenset[Flaw]], _Encoded] = {}


def _encoded(n: int, kind: str, flaws: frozenset[Flaw]) -> _Encoded:
    key = (n, kind, flaws)
    if key in _CACHE:
        return _CACHE[key]
    node_id = var("pre.id")  # symbolic, as in BMC, and pinned per case
    pre = fresh_node("pre", node_id, n, CAPACITY)
    post = fresh_node("post", node_id, n, CAPACITY)
    msg = fresh_msg("in", CAPACITY)
    peer, prev, count = var("peer"), var("prev"), var("count")
    default_prev, default_count = z3.Bools("default_prev default_count")
    extra: tuple[Any, ...] = ()
    match kind:
        case "ElectionTimeout":
            effect = election_timeout(pre, flaws)
        case "ClientRequest":
            effect = client_request(pre)
        case "SendAppend":
            effect = send_append(
                pre, peer, prev, count, default_prev=default_prev, default_count=default_count
            )
            extra = (peer, prev, count, default_prev, default_count)
        case "Restart":
            effect = restart(pre)
        case _:
            effect = receive(pre, msg, flaws)
    solver = z3.Solver()
    solver.add(nodes_equal(post, effect.state))
    entry = _Encoded(solver, pre, post, msg, effect, extra)
    _CACHE[key] = entry
    return entry


def compare_step(
    state: NodeState, event: Input, step_fn: StepFn = step, flaws: frozenset[Flaw] = frozenset()
) -> str | None:
    """compare_step returns None when encoding and `step_fn` agree, else a readable report."""
    n = len(state.voters)
    kind = "Receive" if isinstance(event, Receive) else type(event).__name__
    enc = _encoded(n, kind, flaws)
    facts = pin_node(enc.pre, state)
    match event:
        case Receive(message=message):
            facts += pin_message(enc.msg, message)
        case SendAppend(peer=peer, prev_index=prev, count=count):
            p, i, c, dp, dc = enc.extra
            facts += [p == peer, dp == (prev is None), dc == (count is None)]
            facts += [i == (prev or 0), c == (count or 0)]
        case _:
            pass
    solver = enc.solver
    solver.push()
    try:
        solver.add(*facts)
        if solver.check() != z3.sat:
            return _report(state, event, ["the encoding has no successor for this input"])
        model = solver.model()
        got = read_node(model, enc.post)
        sent = read_messages(model, enc.effect.sends, enc.effect.msg, state.id, n)
        enabled = bool(z3.is_true(model.eval(enc.effect.enabled, model_completion=True)))
        overflow = bool(z3.is_true(model.eval(enc.effect.overflow, model_completion=True)))
        solver.add(
            z3.Not(
                z3.And(*[v == model.eval(v, model_completion=True) for v in _post_vars(enc.post)])
            )
        )
        unique = solver.check() == z3.unsat
    finally:
        solver.pop()
    expected = step_fn(state, event)
    problems: list[str] = []
    if overflow:
        problems.append(f"successor exceeds the encoding's log capacity {CAPACITY}")
    if not unique:
        problems.append("the encoding allows more than one successor")
    if enabled != expected.enabled:
        problems.append(
            f"enabled: encoding {enabled}, step {expected.enabled} ({expected.rejected})"
        )
    want = view_of(expected.state)
    problems += [f"post-state {d}" for d in got.differences(want)]
    if sent != message_views(expected.messages):
        problems.append(f"messages: encoding {sent} vs step {message_views(expected.messages)}")
    return _report(state, event, problems) if problems else None


def _post_vars(s: SymNode) -> list[Any]:
    return [
        s.term,
        s.voted_for,
        s.role,
        s.leader,
        s.log_len,
        s.commit,
        s.heard,
        *s.log,
        *s.prevotes,
        *s.votes,
        *s.rejections,
        *s.next_index,
        *s.match_index,
    ]


def _report(state: NodeState, event: Input, problems: list[str]) -> str:
    pre = view_of(state)
    lines = [
        f"node {state.id} of {len(state.voters)}: {pre}",
        f"input: {event}",
        "encoding vs step:",
        *[f"  {problem}" for problem in problems],
    ]
    return "\n".join(lines)


def check_agreement(
    step_fn: StepFn = step,
    examples: int = 300,
    *,
    flaws: frozenset[Flaw] = frozenset(),
    shrink: bool = True,
) -> AgreementResult:
    """check_agreement compares the encoding with `step_fn` on `examples` generated cases.

    Deterministic (derandomized, no example database). On a disagreement Hypothesis shrinks the
    case (unless `shrink` is off) and the result carries the smallest one found.
    """
    start = time.perf_counter()
    counts: Counter[str] = Counter()
    failures: list[str] = []

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink] if shrink else [Phase.generate],
    )
    @given(agreement_cases())
    def run(case: tuple[NodeState, Input]) -> None:
        state, event = case
        counts[_kind(event)] += 1
        problem = compare_step(state, event, step_fn, flaws)
        if problem is not None:
            failures.append(problem)
            raise AssertionError(problem)

    with contextlib.suppress(AssertionError):  # the failure is in `failures`
        run()
    name = getattr(step_fn, "__qualname__", repr(step_fn))
    if flaws:
        name += "+" + ",".join(sorted(flaw.value for flaw in flaws))
    return AgreementResult(
        step_name=name,
        examples=sum(counts.values()),
        ok=not failures,
        seconds=time.perf_counter() - start,
        by_input=tuple(sorted(counts.items())),
        counterexample=failures[-1] if failures else None,
    )
