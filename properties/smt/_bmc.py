"""Bounded model checking of a concrete-size cluster: Election Safety and Log Matching.

The cluster is unrolled from `spec.initial_cluster(n)` for `depth` steps; each step is one
action of one node, encoded with the same handlers that `check_agreement` validates against
`spec.step` (properties/smt/_node.py). At every depth the solver is asked for a trace reaching
a violation; "unsat" up to the bound means no schedule of at most `depth` actions breaks the
properties. Honest about what is abstracted:

- Network: every message ever sent stays available (slot j holds the output of step j), and a
  delivery may pick any earlier one, any number of times; this is exactly drop, duplicate and
  reorder. Partitions add nothing beyond "never delivered". A VoteRequest broadcast is one
  slot that every peer may receive.
- Prevote: a non-leader may start an election (term + 1, vote self) at any step. A prevote
  round changes no term, vote or log, so this over-approximates prevote-gated elections: it
  only adds behaviours. Prevote messages themselves are not sent.
- Check-quorum: a leader may step down in its own term at any step (over-approximation).
- Crash and recovery are one `restart` action: the durable state survives (the cluster model
  persists before sending, so a node's disk always equals its durable state), the rest resets.
- Entries are their terms (no payloads); ReadIndex state is not modelled (see _node.py).
- Logs are bounded to `depth - 3` entries (`depth` for one node): a leader needs at least
  three steps to exist when n >= 2 and each entry then takes a step, so the bound cuts off no
  trace of this length.

Election Safety is checked over the whole trace (no two nodes are ever leader of the same
term, even at different steps), Log Matching on every state.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import z3

from properties.smt._concrete import pin_node, read_node
from properties.smt._node import (
    LEADER,
    NONE,
    Effect,
    Flaw,
    MsgKind,
    SymMsg,
    SymNode,
    client_request,
    fresh_msg,
    fresh_node,
    ite_node,
    lose_quorum,
    nodes_equal,
    num,
    receive,
    restart,
    send_append,
    start_election,
    var,
)
from properties.smt._results import BmcResult, render_table
from properties.smt._symbolic import ite_msg
from spec import ClusterState

__all__ = ["ELECTION_SAFETY", "LOG_MATCHING", "Encoding", "bmc"]

Expr = Any

ELECTION_SAFETY = "election safety"
LOG_MATCHING = "log matching"


class _Act(enum.IntEnum):
    START_ELECTION = 0
    DELIVER = 1
    CLIENT_REQUEST = 2
    SEND_APPEND = 3
    RESTART = 4
    LOSE_QUORUM = 5


@dataclass(frozen=True)
class Encoding:
    """Encoding is the node transition BMC uses; replace a field to check another transition.

    The default is the encoding validated against the spec; `Encoding.with_flaws` switches in
    the deliberate bugs of `Flaw`.
    """

    name: str = "spec"
    start_election: Callable[[SymNode], Effect] = start_election
    receive: Callable[[SymNode, SymMsg], Effect] = receive
    client_request: Callable[[SymNode], Effect] = client_request
    send_append: Callable[[SymNode, Expr, Expr, Expr], Effect] = send_append
    restart: Callable[[SymNode], Effect] = restart
    lose_quorum: Callable[[SymNode], Effect] = lose_quorum
    flaws: frozenset[Flaw] = field(default_factory=frozenset)

    @staticmethod
    def with_flaws(*flaws: Flaw) -> Encoding:
        """with_flaws is the spec encoding with the given deliberate bugs."""
        chosen = frozenset(flaws)
        return Encoding(
            name="+".join(sorted(flaw.value for flaw in chosen)) or "spec",
            start_election=lambda s: start_election(s, chosen),
            receive=lambda s, m: receive(s, m, chosen),
            flaws=chosen,
        )


@dataclass(frozen=True)
class _Step:
    act: Expr
    who: Expr
    slot: Expr
    peer: Expr
    prev: Expr
    count: Expr


@dataclass(frozen=True)
class _Slot:
    sent: Expr
    msg: SymMsg


def _initial(n: int, cap: int) -> list[SymNode]:
    nodes = []
    for i in range(n):
        zero, false = num(0), z3.BoolVal(False)
        base = fresh_node(f"init{i}", i, n, cap)
        nodes.append(
            replace(
                base,
                term=zero,
                voted_for=num(NONE),
                role=zero,
                leader=num(NONE),
                log_len=zero,
                log=(zero,) * cap,
                commit=zero,
                prevotes=(false,) * n,
                votes=(false,) * n,
                rejections=(false,) * n,
                next_index=(zero,) * n,
                match_index=(zero,) * n,
                heard=false,
            )
        )
    return nodes


def _pick(slots: Sequence[_Slot], index: Expr) -> tuple[Expr, SymMsg]:
    sent, msg = slots[-1].sent, slots[-1].msg
    for j in reversed(range(len(slots) - 1)):
        here = index == j
        sent = z3.If(here, slots[j].sent, sent)
        msg = ite_msg(here, slots[j].msg, msg)
    return sent, msg


def _transition(
    k: int, nodes: list[SymNode], slots: list[_Slot], enc: Encoding
) -> tuple[list[SymNode], _Slot, _Step, list[Expr]]:
    n, cap = len(nodes), nodes[0].cap
    step = _Step(*(var(f"{name}{k}") for name in ("act", "who", "slot", "peer", "prev", "count")))
    constraints = [step.who >= 0, step.who < n]
    if slots:
        constraints += [step.slot >= 0, step.slot < len(slots)]
        sent, picked = _pick(slots, step.slot)
    else:
        sent, picked = z3.BoolVal(False), fresh_msg(f"none{k}", cap)
    # One encoded step, applied to whichever node acts: the formula grows with the number of
    # actions, not with nodes times actions.
    active = nodes[-1]
    for i in reversed(range(n - 1)):
        active = ite_node(step.who == i, nodes[i], active)
    active = replace(active, id=step.who)
    to_me = z3.Or(picked.dst == step.who, z3.And(picked.dst == NONE, picked.src != step.who))
    true = z3.BoolVal(True)
    effects: list[tuple[_Act, Effect, Expr]] = [
        (_Act.START_ELECTION, enc.start_election(active), true),
        (_Act.DELIVER, enc.receive(active, replace(picked, dst=step.who)), z3.And(sent, to_me)),
        (_Act.CLIENT_REQUEST, enc.client_request(active), true),
        (_Act.SEND_APPEND, enc.send_append(active, step.peer, step.prev, step.count), true),
        (_Act.RESTART, enc.restart(active), true),
        (_Act.LOSE_QUORUM, enc.lose_quorum(active), true),
    ]
    options: list[Expr] = []
    post = active
    out_sent: Expr = z3.BoolVal(False)
    out_msg = replace(fresh_msg(f"nothing{k}", cap), kind=num(MsgKind.NOTHING))
    for act, effect, extra in effects:
        chosen = step.act == act
        options.append(z3.And(chosen, extra, effect.enabled, z3.Not(effect.overflow)))
        post = ite_node(chosen, effect.state, post)
        out_sent = z3.If(chosen, effect.sends, out_sent)
        out_msg = ite_msg(chosen, effect.msg, out_msg)
    post_nodes = [ite_node(step.who == i, replace(post, id=s.id), s) for i, s in enumerate(nodes)]
    constraints.append(z3.Or(*options))
    # Name the post-state, so later steps build on small terms.
    named: list[SymNode] = []
    for i, post in enumerate(post_nodes):
        fresh = fresh_node(f"s{k + 1}.n{i}", i, n, cap)
        constraints.append(nodes_equal(fresh, post))
        named.append(fresh)
    slot_msg = fresh_msg(f"m{k}", cap)
    slot_sent = z3.Bool(f"m{k}.sent")
    constraints.append(slot_sent == out_sent)
    constraints.append(_msg_equal(slot_msg, out_msg))
    return named, _Slot(slot_sent, slot_msg), step, constraints


def _msg_equal(a: SymMsg, b: SymMsg) -> Expr:
    facts = []
    for name in SymMsg.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, tuple):
            facts += [p == q for p, q in zip(x, y, strict=True)]
        else:
            facts.append(x == y)
    return z3.And(*facts)


def _leaders_clash(history: list[list[SymNode]]) -> Expr:
    """Two different nodes leading the same term, one of them in the newest state."""
    now = history[-1]
    clashes = []
    for earlier in history:
        for i, a in enumerate(now):
            for j, b in enumerate(earlier):
                if i != j:
                    clashes.append(z3.And(a.role == LEADER, b.role == LEADER, a.term == b.term))
    return z3.Or(*clashes) if clashes else z3.BoolVal(False)


def _logs_mismatch(nodes: list[SymNode]) -> Expr:
    """Two logs agree on the term at some index but differ somewhere before it (5.3)."""
    bad = []
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            for p in range(1, a.cap):
                same = z3.And(p + 1 <= a.log_len, p + 1 <= b.log_len, a.log[p] == b.log[p])
                before = z3.Or(*[a.log[q] != b.log[q] for q in range(p)])
                bad.append(z3.And(same, before))
    return z3.Or(*bad) if bad else z3.BoolVal(False)


def _describe(model: Any, step: _Step, slots: list[_Slot], n: int) -> str:
    def val(expr: Expr) -> int:
        return int(model.eval(expr, model_completion=True).as_signed_long())

    act, who = _Act(val(step.act)), val(step.who)
    match act:
        case _Act.DELIVER:
            j = val(step.slot)
            msg = slots[j].msg
            kind = MsgKind(val(msg.kind)).name.lower().replace("_", " ")
            extra = (
                f" granted={z3.is_true(model.eval(msg.granted))}" if kind == "vote response" else ""
            )
            if kind == "append request":
                extra = f" prev={val(msg.prev_index)} entries={val(msg.n_entries)}"
            return (
                f"node {who} receives {kind} (term {val(msg.term)}) from node {val(msg.src)}, "
                f"sent at step {j + 1}{extra}"
            )
        case _Act.SEND_APPEND:
            return (
                f"node {who} sends append to node {val(step.peer)} "
                f"(prev {val(step.prev)}, {val(step.count)} entries)"
            )
        case _:
            return f"node {who}: {act.name.lower().replace('_', ' ')}"


def _render_trace(
    model: Any, history: list[list[SymNode]], steps: list[_Step], slots: list[_Slot], violated: str
) -> str:
    lines = [f"{violated} violated after {len(steps)} steps:"]
    for k, nodes in enumerate(history):
        if k > 0:
            lines.append(f"step {k}: {_describe(model, steps[k - 1], slots, len(nodes))}")
        rows = []
        for i, s in enumerate(nodes):
            view = read_node(model, s)
            rows.append(
                (
                    i,
                    view.term,
                    "-" if view.voted_for is None else view.voted_for,
                    view.role,
                    list(view.log),
                    view.commit,
                )
            )
        if k == 0 or k == len(history) - 1 or k >= len(history) - 3:
            lines.append(render_table(("node", "term", "voted_for", "role", "log", "commit"), rows))
    return "\n".join(lines)


def _solve(constraints: list[Expr], goal: Expr, timeout_s: float) -> tuple[Any, Any]:
    """_solve bit-blasts to SAT: far faster than the incremental SMT core on these formulas."""
    solver = z3.Then("simplify", "solve-eqs", "bit-blast", "sat").solver()
    solver.set("timeout", int(timeout_s * 1000))
    solver.add(*constraints, goal)
    verdict = solver.check()
    return verdict, solver.model() if verdict == z3.sat else None


def _violation(prop: str, history: list[list[SymNode]], k: int) -> Expr:
    if prop == ELECTION_SAFETY:
        return _leaders_clash(history[: k + 1])
    if prop == LOG_MATCHING:
        return _logs_mismatch(history[k])
    raise ValueError(f"unknown property {prop!r}")


def bmc(
    nodes: int,
    depth: int,
    *,
    encoding: Encoding | None = None,
    properties: Sequence[str] = (ELECTION_SAFETY, LOG_MATCHING),
    timeout_s: float = 900.0,
    shortest: bool = True,
    start: ClusterState | None = None,
) -> BmcResult:
    """bmc checks `properties` on every state reachable in at most `depth` actions.

    One query asks for a violation at any step up to `depth`. When there is one and `shortest`
    is set, shorter unrollings are asked in turn so the trace shown is a shortest one (and
    `depth_reached` is exact); otherwise the trace is cut at its first violating step.
    `start` replaces the initial cluster by a given one (its in-flight messages are dropped,
    which the network may always do), to reach deep states in few steps.
    """
    enc = encoding or Encoding()
    began = time.perf_counter()
    props = tuple(properties)
    cap = max(1, depth - 3) if nodes > 1 else max(1, depth)
    if start is not None:
        if start.size != nodes:
            raise ValueError(f"start state has {start.size} nodes, not {nodes}")
        cap = max(len(node.log) for node in start.nodes) + depth
    state = _initial(nodes, cap)
    constraints: list[Expr] = []
    if start is not None:
        state = [fresh_node(f"start{i}", i, nodes, cap) for i in range(nodes)]
        for sym, node in zip(state, start.nodes, strict=True):
            constraints += pin_node(sym, node)
    history = [state]
    slots: list[_Slot] = []
    steps: list[_Step] = []
    for k in range(depth):
        state, slot, step, more = _transition(k, state, slots, enc)
        if k == 0 and start is None:
            more.append(step.who == 0)  # nodes are symmetric: name the first to act node 0
        constraints += more
        slots.append(slot)
        steps.append(step)
        history.append(state)

    def bad(upto: int) -> Expr:
        return z3.Or(*[_violation(p, history, k) for p in props for k in range(1, upto + 1)])

    def result(
        ok: bool, reached: int, violated: str | None = None, trace: str | None = None
    ) -> BmcResult:
        return BmcResult(
            enc.name, nodes, depth, reached, props, ok, time.perf_counter() - began, violated, trace
        )

    verdict, model = _solve(constraints, bad(depth), timeout_s)
    if verdict == z3.unsat:
        return result(True, depth)
    if verdict != z3.sat:
        return result(False, 0, f"unknown (solver: {verdict})")
    if not shortest:
        for k in range(1, depth + 1):
            for prop in props:
                if z3.is_true(model.eval(_violation(prop, history, k), model_completion=True)):
                    trace = _render_trace(model, history[: k + 1], steps[:k], slots, prop)
                    return result(False, 0, prop, trace)
    for k in range(1, depth + 1):
        for prop in props:
            verdict, model = _solve(constraints, _violation(prop, history, k), timeout_s)
            if verdict == z3.sat:
                trace = _render_trace(model, history[: k + 1], steps[:k], slots, prop)
                return result(False, k - 1, prop, trace)
    return result(False, 0, "violation found at full depth but not when shortened")
