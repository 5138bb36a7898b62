"""Symbolic node states and messages for the Z3 encoding, and the helpers its handlers share.

The handlers themselves are in properties/smt/_node.py, whose docstring says what the encoding
abstracts. Everything here mirrors a helper of spec/ (log indexing, quorums, step_down) so
that a handler reads like the spec function it encodes.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import z3

__all__ = [
    "CANDIDATE",
    "FOLLOWER",
    "LEADER",
    "NONE",
    "PRECANDIDATE",
    "WIDTH",
    "Effect",
    "Expr",
    "Flaw",
    "MsgKind",
    "SymMsg",
    "SymNode",
    "add_member",
    "adopt",
    "effect_of",
    "fresh_msg",
    "fresh_node",
    "has_member",
    "is_quorum_sym",
    "ite",
    "ite_msg",
    "ite_node",
    "ites",
    "last_term_sym",
    "max_of",
    "min_of",
    "mine",
    "msg_fields",
    "no_msg",
    "nodes_equal",
    "num",
    "only",
    "quorum_need",
    "select",
    "set_at",
    "step_down",
    "term_at_sym",
    "up_to_date",
    "var",
]

Expr = Any  # z3 expressions are untyped

# Numbers are signed bit-vectors: the checks only reach small values (terms and indexes
# below 20), and bit-blasting makes bounded model checking a SAT problem, much faster than
# linear integer arithmetic here. 8 bits leave ample room below 127.
WIDTH = 8


def num(value: int) -> Expr:
    """num is the encoding's constant for `value`."""
    return z3.BitVecVal(value, WIDTH)


def var(name: str) -> Expr:
    """var declares a numeric variable of the encoding."""
    return z3.BitVec(name, WIDTH)


FOLLOWER, PRECANDIDATE, CANDIDATE, LEADER = 0, 1, 2, 3
NONE = -1  # no vote, no leader; as a VoteRequest destination: every peer


class MsgKind(enum.IntEnum):
    """MsgKind tags a symbolic message; NOTHING means no message was sent."""

    NOTHING = 0
    VOTE_REQUEST = 1
    VOTE_RESPONSE = 2
    APPEND_REQUEST = 3
    APPEND_RESPONSE = 4


class Flaw(enum.Enum):
    """Flaw is a deliberate bug in the encoding, to prove a check can fail."""

    VOTE_TWICE = "vote-twice"  # grant a vote whatever voted_for says
    SEED_QUORUM = "seed-quorum"  # the seed's (n - 1) // 2 + 1 threshold: 2 of 4 elect
    LEADER_ON_FIRST_VOTE = "leader-on-first-vote"  # become leader without a quorum
    SKIP_PREV_TERM_CHECK = "skip-prev-term-check"  # accept an append whatever prev_term is


@dataclass(frozen=True)
class SymNode:
    """SymNode is a symbolic NodeState; `log[i]` is the term of entry i + 1 (0 past the end)."""

    id: Expr
    n: int
    term: Expr
    voted_for: Expr
    role: Expr
    leader: Expr
    log_len: Expr
    log: tuple[Expr, ...]
    commit: Expr
    prevotes: tuple[Expr, ...]
    votes: tuple[Expr, ...]
    rejections: tuple[Expr, ...]
    next_index: tuple[Expr, ...]
    match_index: tuple[Expr, ...]
    heard: Expr

    @property
    def cap(self) -> int:
        """cap is the log capacity of this encoding."""
        return len(self.log)


@dataclass(frozen=True)
class SymMsg:
    """SymMsg is any spec message; fields that its kind does not use are ignored.

    A VoteRequest with `dst == NONE` goes to every peer (the spec's broadcast `_ask`).
    """

    kind: Expr
    src: Expr
    dst: Expr
    term: Expr
    prevote: Expr
    last_log_index: Expr
    last_log_term: Expr
    granted: Expr
    request_term: Expr
    prev_index: Expr
    prev_term: Expr
    n_entries: Expr
    entries: tuple[Expr, ...]
    leader_commit: Expr
    success: Expr
    match_index: Expr
    hint_index: Expr


@dataclass(frozen=True)
class Effect:
    """Effect is one handler's result; when not `enabled` the state is the pre-state.

    `overflow` says the result would not fit the log capacity (a bound of the encoding, not a
    protocol event): BMC forbids such steps, agreement reports them.
    """

    enabled: Expr
    state: SymNode
    sends: Expr
    msg: SymMsg
    overflow: Expr


def ite(c: Expr, a: Expr, b: Expr) -> Expr:
    """ite is z3.If that keeps the term small when both branches are the same term."""
    if a is b or (z3.is_expr(a) and z3.is_expr(b) and a.eq(b)):
        return a
    return z3.If(c, a, b)


def ites(c: Expr, a: Sequence[Expr], b: Sequence[Expr]) -> tuple[Expr, ...]:
    return tuple(ite(c, x, y) for x, y in zip(a, b, strict=True))


def fresh_node(name: str, node_id: int | Expr, n: int, cap: int) -> SymNode:
    """fresh_node declares unconstrained variables for node `node_id` (a number or a symbol)."""

    def ints(label: str, k: int) -> tuple[Expr, ...]:
        return tuple(var(f"{name}.{label}{i}") for i in range(k))

    def bools(label: str) -> tuple[Expr, ...]:
        return tuple(z3.Bool(f"{name}.{label}{i}") for i in range(n))

    return SymNode(
        id=num(node_id) if isinstance(node_id, int) else node_id,
        n=n,
        term=var(f"{name}.term"),
        voted_for=var(f"{name}.voted_for"),
        role=var(f"{name}.role"),
        leader=var(f"{name}.leader"),
        log_len=var(f"{name}.log_len"),
        log=ints("log", cap),
        commit=var(f"{name}.commit"),
        prevotes=bools("prevote"),
        votes=bools("vote"),
        rejections=bools("reject"),
        next_index=ints("next", n),
        match_index=ints("match", n),
        heard=z3.Bool(f"{name}.heard"),
    )


def fresh_msg(name: str, cap: int) -> SymMsg:
    """fresh_msg declares an unconstrained symbolic message with room for `cap` entries."""
    i, b = var, z3.Bool
    return SymMsg(
        kind=i(f"{name}.kind"),
        src=i(f"{name}.src"),
        dst=i(f"{name}.dst"),
        term=i(f"{name}.term"),
        prevote=b(f"{name}.prevote"),
        last_log_index=i(f"{name}.lli"),
        last_log_term=i(f"{name}.llt"),
        granted=b(f"{name}.granted"),
        request_term=i(f"{name}.request_term"),
        prev_index=i(f"{name}.prev_index"),
        prev_term=i(f"{name}.prev_term"),
        n_entries=i(f"{name}.n_entries"),
        entries=tuple(i(f"{name}.entry{k}") for k in range(cap)),
        leader_commit=i(f"{name}.leader_commit"),
        success=b(f"{name}.success"),
        match_index=i(f"{name}.match_index"),
        hint_index=i(f"{name}.hint_index"),
    )


def ite_node(c: Expr, a: SymNode, b: SymNode) -> SymNode:
    """ite_node is `a` where `c` holds and `b` elsewhere, field by field."""
    return SymNode(
        id=ite(c, a.id, b.id),
        n=a.n,
        term=ite(c, a.term, b.term),
        voted_for=ite(c, a.voted_for, b.voted_for),
        role=ite(c, a.role, b.role),
        leader=ite(c, a.leader, b.leader),
        log_len=ite(c, a.log_len, b.log_len),
        log=ites(c, a.log, b.log),
        commit=ite(c, a.commit, b.commit),
        prevotes=ites(c, a.prevotes, b.prevotes),
        votes=ites(c, a.votes, b.votes),
        rejections=ites(c, a.rejections, b.rejections),
        next_index=ites(c, a.next_index, b.next_index),
        match_index=ites(c, a.match_index, b.match_index),
        heard=ite(c, a.heard, b.heard),
    )


def ite_msg(c: Expr, a: SymMsg, b: SymMsg) -> SymMsg:
    return SymMsg(
        *(
            ites(c, x, y) if isinstance(x, tuple) else ite(c, x, y)
            for x, y in zip(msg_fields(a), msg_fields(b), strict=True)
        )
    )


def msg_fields(m: SymMsg) -> tuple[Any, ...]:
    return (
        m.kind,
        m.src,
        m.dst,
        m.term,
        m.prevote,
        m.last_log_index,
        m.last_log_term,
        m.granted,
        m.request_term,
        m.prev_index,
        m.prev_term,
        m.n_entries,
        m.entries,
        m.leader_commit,
        m.success,
        m.match_index,
        m.hint_index,
    )


def nodes_equal(a: SymNode, b: SymNode) -> Expr:
    """nodes_equal is the conjunction of field equalities."""
    pairs: list[tuple[Expr, Expr]] = [
        (a.term, b.term),
        (a.voted_for, b.voted_for),
        (a.role, b.role),
        (a.leader, b.leader),
        (a.log_len, b.log_len),
        (a.commit, b.commit),
        (a.heard, b.heard),
    ]
    for xs, ys in (
        (a.log, b.log),
        (a.prevotes, b.prevotes),
        (a.votes, b.votes),
        (a.rejections, b.rejections),
        (a.next_index, b.next_index),
        (a.match_index, b.match_index),
    ):
        pairs.extend(zip(xs, ys, strict=True))
    return z3.And(*[x == y for x, y in pairs])


# --- helpers mirroring spec/_log.py and spec/is_quorum_sym.py -----------------------------------


def select(values: Sequence[Expr], index: Expr, default: Expr) -> Expr:
    result = default
    for k in reversed(range(len(values))):
        result = z3.If(index == k, values[k], result)
    return result


def term_at_sym(s: SymNode, index: Expr) -> tuple[Expr, Expr]:
    """term_at_sym is (exists, term) for 1-based `index`; index 0 exists with term 0."""
    exists = z3.And(index >= 0, index <= s.log_len)
    return exists, z3.If(index == 0, 0, select(s.log, index - 1, num(0)))


def last_term_sym(s: SymNode) -> Expr:
    return term_at_sym(s, s.log_len)[1]


def up_to_date(cand_last_term: Expr, cand_last_index: Expr, s: SymNode) -> Expr:
    own = last_term_sym(s)
    return z3.If(cand_last_term != own, cand_last_term > own, cand_last_index >= s.log_len)


def quorum_need(n: int, flaws: frozenset[Flaw]) -> int:
    if Flaw.SEED_QUORUM in flaws:
        return (n - 1) // 2 + 1
    return n // 2 + 1


def is_quorum_sym(members: Sequence[Expr], flaws: frozenset[Flaw]) -> Expr:
    return z3.Sum(*[z3.If(b, num(1), num(0)) for b in members]) >= quorum_need(len(members), flaws)


def has_member(members: Sequence[Expr], who: Expr) -> Expr:
    return z3.Or(*[z3.And(who == k, b) for k, b in enumerate(members)])


def add_member(members: Sequence[Expr], who: Expr) -> tuple[Expr, ...]:
    return tuple(z3.Or(b, who == k) for k, b in enumerate(members))


def set_at(members: Sequence[Expr], at: Expr, value: Expr) -> tuple[Expr, ...]:
    return tuple(z3.If(at == k, value, old) for k, old in enumerate(members))


def only(n: int, who: int | None) -> tuple[Expr, ...]:
    return tuple(z3.BoolVal(k == who) for k in range(n))


def mine(s: SymNode) -> tuple[Expr, ...]:
    return tuple(s.id == k for k in range(s.n))


def max_of(a: Expr, b: Expr) -> Expr:
    return z3.If(a >= b, a, b)


def min_of(a: Expr, b: Expr) -> Expr:
    return z3.If(a <= b, a, b)


def no_msg(cap: int) -> SymMsg:
    zero, false = num(0), z3.BoolVal(False)
    return SymMsg(
        num(MsgKind.NOTHING),
        zero,
        zero,
        zero,
        false,
        zero,
        zero,
        false,
        zero,
        zero,
        zero,
        zero,
        (zero,) * cap,
        zero,
        false,
        zero,
        zero,
    )


def effect_of(
    s: SymNode,
    enabled: Expr,
    post: SymNode,
    sends: Expr,
    msg: SymMsg,
    *,
    overflow: Expr | None = None,
) -> Effect:
    return Effect(
        enabled=enabled,
        state=ite_node(enabled, post, s),
        sends=z3.And(enabled, sends),
        msg=msg,
        overflow=z3.And(enabled, overflow if overflow is not None else z3.BoolVal(False)),
    )


def step_down(s: SymNode, term: Expr) -> SymNode:
    """step_down mirrors spec/_transition.step_down."""
    empty = only(s.n, None)
    return replace(
        s,
        term=term,
        voted_for=z3.If(term == s.term, s.voted_for, NONE),
        role=num(FOLLOWER),
        leader=num(NONE),
        prevotes=empty,
        votes=empty,
        rejections=empty,
    )


def adopt(s: SymNode, term: Expr, adopts: Expr) -> SymNode:
    return ite_node(z3.And(adopts, term > s.term), step_down(s, term), s)
