"""Agreement: the Z3 node encoding and a Python step function compute the same successor.

For many concrete single-node states and inputs (Hypothesis strategies below), the pre-state
and the input are pinned in a solver holding the encoding's transition formula, the solver
solves for the post-state (and the test insists the solution is unique), and the result is
compared field by field with `step_fn(state, input)`, by default `spec.step`. This is what
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
from hypothesis import strategies as st

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
from spec import (
    AppendRequest,
    AppendResponse,
    ClientRequest,
    ElectionTimeout,
    Entry,
    Input,
    NodeState,
    Receive,
    Restart,
    Role,
    SendAppend,
    StepResult,
    VoteRequest,
    VoteResponse,
    step,
    term_at,
)

__all__ = ["CAPACITY", "agreement_cases", "check_agreement", "compare_step"]

StepFn = Callable[[NodeState, Input], StepResult]

# Generated logs hold at most 4 entries and appends at most 3, so no successor needs more.
CAPACITY = 8


# --- strategies ----------------------------------------------------------------------------


@st.composite
def _node_states(draw: st.DrawFn) -> NodeState:
    n = draw(st.integers(1, 5))
    voters = tuple(range(n))
    node_id = draw(st.integers(0, n - 1))
    term = draw(st.integers(0, 4))
    length = draw(st.integers(0, 4)) if term > 0 else 0
    terms = sorted(draw(st.lists(st.integers(1, max(term, 1)), min_size=length, max_size=length)))
    role = draw(st.sampled_from(list(Role)))
    members = st.frozensets(st.sampled_from(voters))
    per_peer = role is Role.LEADER or draw(st.booleans())
    next_index = tuple(draw(st.integers(1, length + 1)) for _ in voters) if per_peer else ()
    match_index = tuple(draw(st.integers(0, length)) for _ in voters) if per_peer else ()
    return NodeState(
        id=node_id,
        voters=voters,
        term=term,
        voted_for=draw(st.none() | st.sampled_from(voters)),
        log=tuple(Entry(t, payload=b"p") for t in terms),
        commit=draw(st.integers(0, length)),
        role=role,
        leader=draw(st.none() | st.sampled_from(voters)),
        prevotes=draw(members),
        votes=draw(members),
        rejections=draw(members),
        next_index=next_index,
        match_index=match_index,
        heard_from_leader=draw(st.booleans()),
        acked_ctx=(0,) * n if per_peer else (),
    )


def _peer(draw: st.DrawFn, state: NodeState) -> int:
    peers = [p for p in state.voters if p != state.id]
    if not peers or draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from(state.voters))  # sometimes the node itself: disabled
    return draw(st.sampled_from(peers))


def _near(draw: st.DrawFn, value: int) -> int:
    return draw(st.integers(max(0, value - 1), value + 1))


@st.composite
def _vote_request(draw: st.DrawFn, state: NodeState) -> Input:
    term = _near(draw, state.term)
    return Receive(
        VoteRequest(
            src=_peer(draw, state),
            dst=state.id,
            term=term,
            prevote=draw(st.booleans()),
            last_log_index=draw(st.integers(0, 5)),
            last_log_term=draw(st.integers(0, term)),
        )
    )


@st.composite
def _vote_response(draw: st.DrawFn, state: NodeState) -> Input:
    request_term = _near(draw, state.term)
    return Receive(
        VoteResponse(
            src=_peer(draw, state),
            dst=state.id,
            term=draw(st.integers(request_term, request_term + 1)),
            prevote=draw(st.booleans()),
            granted=draw(st.booleans()),
            request_term=request_term,
        )
    )


@st.composite
def _append_request(draw: st.DrawFn, state: NodeState) -> Input:
    term = _near(draw, state.term)
    prev = draw(st.integers(0, len(state.log) + 1))
    own = term_at(state.log, prev)
    prev_term = own if own is not None and draw(st.booleans()) else draw(st.integers(0, term))
    count = draw(st.integers(0, 3))
    if draw(st.booleans()):  # copy our own entries, so the "already have them" path is hit
        entries = tuple(entry.term for entry in state.log[prev : prev + count])
    else:
        entries = tuple(
            sorted(
                draw(
                    st.lists(
                        st.integers(max(prev_term, 1), max(term, 1)), min_size=count, max_size=count
                    )
                )
            )
        )
    return Receive(
        AppendRequest(
            src=_peer(draw, state),
            dst=state.id,
            term=term,
            prev_index=prev,
            prev_term=prev_term,
            entries=tuple(Entry(t, payload=b"q") for t in entries),
            leader_commit=draw(st.integers(0, prev + len(entries) + 1)),
            read_ctx=0,
        )
    )


@st.composite
def _append_response(draw: st.DrawFn, state: NodeState) -> Input:
    return Receive(
        AppendResponse(
            src=_peer(draw, state),
            dst=state.id,
            term=_near(draw, state.term),
            success=draw(st.booleans()),
            match_index=draw(st.integers(0, len(state.log) + 1)),
            hint_index=draw(st.integers(0, len(state.log) + 2)),
            read_ctx=0,
        )
    )


@st.composite
def _send_append(draw: st.DrawFn, state: NodeState) -> Input:
    prev = draw(st.none() | st.integers(0, len(state.log) + 1))
    count = draw(st.none() | st.integers(0, 3))
    return SendAppend(peer=_peer(draw, state), prev_index=prev, count=count)


@st.composite
def agreement_cases(draw: st.DrawFn) -> tuple[NodeState, Input]:
    """agreement_cases draws a concrete node state and an input for it."""
    state = draw(_node_states())
    kind = draw(
        st.sampled_from(
            [
                "vote request",
                "vote response",
                "append request",
                "append response",
                "timeout",
                "client request",
                "send append",
                "restart",
            ]
        )
    )
    event: Input
    match kind:
        case "vote request":
            event = draw(_vote_request(state))
        case "vote response":
            event = draw(_vote_response(state))
        case "append request":
            event = draw(_append_request(state))
        case "append response":
            event = draw(_append_response(state))
        case "timeout":
            event = ElectionTimeout()
        case "client request":
            event = ClientRequest(b"c")
        case "send append":
            event = draw(_send_append(state))
        case _:
            event = Restart(state.durable())
    return state, event


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
