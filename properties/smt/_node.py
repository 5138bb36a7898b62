"""The Z3 encoding of one node's transitions, shared by bounded model checking and agreement.

A `SymNode` is a spec `NodeState` of a concrete cluster size `n` with its log bounded to `cap`
entries; a handler maps a pre-state (and a symbolic message or choice) to an `Effect`: whether
the input is enabled, the post-state, and the message it sends. The handlers mirror
spec/_election.py, spec/_replication.py and spec/_commit.py branch by branch; `check_agreement`
runs them against `spec.step` on concrete states so they cannot drift apart.

What the encoding abstracts, on purpose:

- entries are their terms (payload and kind are dropped); Log Matching talks about
  (index, term) pairs, which is exactly what is kept;
- ReadIndex state (`sentinel`, `read_seq`, `acked_ctx`, `pending_reads`), `recent_active` and
  `read_ctx` are not modelled; they decide when reads are answered, not terms, votes or logs;
- a spec state's unset per-peer arrays (`()` after a restart) are all-zero arrays here;
- the cluster size is a Python integer; a node's id is a symbol (BMC applies one encoded step
  to whichever node acts), pinned to a constant wherever the id is known.

`Flaw` switches seed-style bugs into the encoding so the checks that use it can be shown to fail.
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
    "Flaw",
    "MsgKind",
    "SymMsg",
    "SymNode",
    "client_request",
    "election_timeout",
    "fresh_msg",
    "fresh_node",
    "ite_node",
    "lose_quorum",
    "nodes_equal",
    "num",
    "receive",
    "restart",
    "send_append",
    "start_election",
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


def _ite(c: Expr, a: Expr, b: Expr) -> Expr:
    """_ite is z3.If that keeps the term small when both branches are the same term."""
    if a is b or (z3.is_expr(a) and z3.is_expr(b) and a.eq(b)):
        return a
    return z3.If(c, a, b)


def _ites(c: Expr, a: Sequence[Expr], b: Sequence[Expr]) -> tuple[Expr, ...]:
    return tuple(_ite(c, x, y) for x, y in zip(a, b, strict=True))


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
        id=_ite(c, a.id, b.id),
        n=a.n,
        term=_ite(c, a.term, b.term),
        voted_for=_ite(c, a.voted_for, b.voted_for),
        role=_ite(c, a.role, b.role),
        leader=_ite(c, a.leader, b.leader),
        log_len=_ite(c, a.log_len, b.log_len),
        log=_ites(c, a.log, b.log),
        commit=_ite(c, a.commit, b.commit),
        prevotes=_ites(c, a.prevotes, b.prevotes),
        votes=_ites(c, a.votes, b.votes),
        rejections=_ites(c, a.rejections, b.rejections),
        next_index=_ites(c, a.next_index, b.next_index),
        match_index=_ites(c, a.match_index, b.match_index),
        heard=_ite(c, a.heard, b.heard),
    )


def _ite_msg(c: Expr, a: SymMsg, b: SymMsg) -> SymMsg:
    return SymMsg(
        *(
            _ites(c, x, y) if isinstance(x, tuple) else _ite(c, x, y)
            for x, y in zip(_msg_fields(a), _msg_fields(b), strict=True)
        )
    )


def _msg_fields(m: SymMsg) -> tuple[Any, ...]:
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


# --- helpers mirroring spec/_log.py and spec/_quorum.py -----------------------------------


def _select(values: Sequence[Expr], index: Expr, default: Expr) -> Expr:
    result = default
    for k in reversed(range(len(values))):
        result = z3.If(index == k, values[k], result)
    return result


def _term_at(s: SymNode, index: Expr) -> tuple[Expr, Expr]:
    """_term_at is (exists, term) for 1-based `index`; index 0 exists with term 0."""
    exists = z3.And(index >= 0, index <= s.log_len)
    return exists, z3.If(index == 0, 0, _select(s.log, index - 1, num(0)))


def _last_term(s: SymNode) -> Expr:
    return _term_at(s, s.log_len)[1]


def _up_to_date(cand_last_term: Expr, cand_last_index: Expr, s: SymNode) -> Expr:
    mine = _last_term(s)
    return z3.If(cand_last_term != mine, cand_last_term > mine, cand_last_index >= s.log_len)


def _need(n: int, flaws: frozenset[Flaw]) -> int:
    if Flaw.SEED_QUORUM in flaws:
        return (n - 1) // 2 + 1
    return n // 2 + 1


def _quorum(members: Sequence[Expr], flaws: frozenset[Flaw]) -> Expr:
    return z3.Sum(*[z3.If(b, num(1), num(0)) for b in members]) >= _need(len(members), flaws)


def _has(members: Sequence[Expr], who: Expr) -> Expr:
    return z3.Or(*[z3.And(who == k, b) for k, b in enumerate(members)])


def _add(members: Sequence[Expr], who: Expr) -> tuple[Expr, ...]:
    return tuple(z3.Or(b, who == k) for k, b in enumerate(members))


def _set(members: Sequence[Expr], at: Expr, value: Expr) -> tuple[Expr, ...]:
    return tuple(z3.If(at == k, value, old) for k, old in enumerate(members))


def _only(n: int, who: int | None) -> tuple[Expr, ...]:
    return tuple(z3.BoolVal(k == who) for k in range(n))


def _mine(s: SymNode) -> tuple[Expr, ...]:
    return tuple(s.id == k for k in range(s.n))


def _max(a: Expr, b: Expr) -> Expr:
    return z3.If(a >= b, a, b)


def _min(a: Expr, b: Expr) -> Expr:
    return z3.If(a <= b, a, b)


def _no_msg(cap: int) -> SymMsg:
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


def _effect(
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


def _step_down(s: SymNode, term: Expr) -> SymNode:
    """_step_down mirrors spec/_transition.step_down."""
    empty = _only(s.n, None)
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


def _adopt(s: SymNode, term: Expr, adopts: Expr) -> SymNode:
    return ite_node(z3.And(adopts, term > s.term), _step_down(s, term), s)


# --- the commit rule and elections ----------------------------------------------------------


def _advance_commit(s: SymNode) -> SymNode:
    """_advance_commit mirrors spec/_commit.advance_commit (sections 5.3, 5.4.2)."""
    need = s.n // 2 + 1
    matches = [_ite(s.id == k, s.log_len, s.match_index[k]) for k in range(s.n)]
    best: Expr = num(0)
    for value in matches:
        enough = z3.Sum(*[z3.If(other >= value, num(1), num(0)) for other in matches]) >= need
        best = z3.If(z3.And(enough, value > best), value, best)
    exists, term = _term_at(s, best)
    moves = z3.And(s.role == LEADER, best > s.commit, exists, term == s.term)
    return replace(s, commit=z3.If(moves, best, s.commit))


def _append_own(s: SymNode, cond: Expr) -> tuple[SymNode, Expr]:
    """_append_own appends an entry of the node's term where `cond`; returns (state, overflow)."""
    new_len = s.log_len + 1
    log = tuple(z3.If(z3.And(cond, new_len == k + 1), s.term, old) for k, old in enumerate(s.log))
    return replace(s, log_len=z3.If(cond, new_len, s.log_len), log=log), z3.And(
        cond, new_len > s.cap
    )


def _become_leader(s: SymNode) -> tuple[SymNode, Expr]:
    """_become_leader mirrors spec/_election.become_leader, sentinel entry included."""
    s, overflow = _append_own(s, s.commit < s.log_len)
    empty = _only(s.n, None)
    leader = replace(
        s,
        role=num(LEADER),
        leader=s.id,
        next_index=(s.log_len + 1,) * s.n,
        match_index=tuple(_ite(s.id == k, s.log_len, num(0)) for k in range(s.n)),
        heard=z3.BoolVal(False),
        prevotes=empty,
        rejections=empty,
    )
    return _advance_commit(leader), overflow


def _ask(s: SymNode, prevote: bool) -> SymMsg:
    return replace(
        _no_msg(s.cap),
        kind=num(MsgKind.VOTE_REQUEST),
        src=s.id,
        dst=num(NONE),
        term=s.term,
        prevote=z3.BoolVal(prevote),
        last_log_index=s.log_len,
        last_log_term=_last_term(s),
    )


def start_election(s: SymNode, flaws: frozenset[Flaw] = frozenset()) -> Effect:
    """start_election mirrors spec/_election._start_election: term + 1, vote self, ask.

    BMC calls it directly as the abstraction of a successful prevote round (which changes no
    term, vote or log); a leader's election timer is stopped, so it is disabled on a leader.
    """
    cand = replace(
        s,
        term=s.term + 1,
        voted_for=s.id,
        role=num(CANDIDATE),
        prevotes=_only(s.n, None),
        votes=_mine(s),
        rejections=_only(s.n, None),
    )
    enabled = s.role != LEADER
    if _need(s.n, flaws) <= 1:
        leader, overflow = _become_leader(cand)
        return _effect(s, enabled, leader, z3.BoolVal(False), _no_msg(s.cap), overflow=overflow)
    return _effect(s, enabled, cand, z3.BoolVal(True), _ask(cand, prevote=False))


def election_timeout(s: SymNode, flaws: frozenset[Flaw] = frozenset()) -> Effect:
    """election_timeout mirrors spec/_election.on_election_timeout (the prevote phase)."""
    pre = replace(
        s,
        role=num(PRECANDIDATE),
        leader=num(NONE),
        heard=z3.BoolVal(False),
        prevotes=_mine(s),
        votes=_only(s.n, None),
        rejections=_only(s.n, None),
    )
    enabled = s.role != LEADER
    if _need(s.n, flaws) <= 1:
        started = start_election(pre, flaws)
        return _effect(
            s, enabled, started.state, started.sends, started.msg, overflow=started.overflow
        )
    return _effect(s, enabled, pre, z3.BoolVal(True), _ask(pre, prevote=True))


def _valid(s: SymNode, m: SymMsg) -> Expr:
    return z3.And(m.dst == s.id, m.src != s.id, m.src >= 0, m.src < s.n, m.term >= 0)


def _on_vote_request(s: SymNode, m: SymMsg, flaws: frozenset[Flaw]) -> Effect:
    s1 = _adopt(s, m.term, z3.Not(m.prevote))
    utd = _up_to_date(m.last_log_term, m.last_log_index, s1)
    pre_granted = z3.And(m.term >= s1.term, utd, z3.Not(s1.heard), s1.role != LEADER)
    free = z3.Or(s1.voted_for == NONE, s1.voted_for == m.src)
    if Flaw.VOTE_TWICE in flaws:
        free = z3.BoolVal(True)
    vote_granted = z3.And(m.term >= s1.term, free, utd)
    granted = z3.If(m.prevote, pre_granted, vote_granted)
    empty = _only(s.n, None)
    voted = replace(s1, voted_for=m.src, role=num(FOLLOWER), prevotes=empty, rejections=empty)
    s2 = ite_node(z3.And(z3.Not(m.prevote), vote_granted), voted, s1)
    reply = replace(
        _no_msg(s.cap),
        kind=num(MsgKind.VOTE_RESPONSE),
        src=s.id,
        dst=m.src,
        term=s2.term,
        prevote=m.prevote,
        granted=granted,
        request_term=m.term,
    )
    return _effect(s, _valid(s, m), s2, z3.BoolVal(True), reply)


def _on_vote_response(s: SymNode, m: SymMsg, flaws: frozenset[Flaw]) -> Effect:
    s1 = _adopt(s, m.term, z3.BoolVal(True))
    phase = z3.If(m.prevote, num(PRECANDIDATE), num(CANDIDATE))
    seen = z3.Or(_has(s1.prevotes, m.src), _has(s1.votes, m.src), _has(s1.rejections, m.src))
    counts = z3.And(s1.role == phase, m.request_term == s1.term, z3.Not(seen))
    rejected = replace(s1, rejections=_add(s1.rejections, m.src))
    pre = replace(s1, prevotes=_add(s1.prevotes, m.src))
    started = start_election(pre, flaws)
    pre_done = _quorum(pre.prevotes, flaws)
    real = replace(s1, votes=_add(s1.votes, m.src))
    elected = z3.BoolVal(True) if Flaw.LEADER_ON_FIRST_VOTE in flaws else _quorum(real.votes, flaws)
    leader, overflow = _become_leader(real)
    granted_pre = ite_node(pre_done, started.state, pre)
    granted_real = ite_node(elected, leader, real)
    granted = ite_node(m.prevote, granted_pre, granted_real)
    post = ite_node(counts, ite_node(m.granted, granted, rejected), s1)
    sends = z3.And(counts, m.granted, m.prevote, pre_done, started.sends)
    grew = z3.And(
        counts,
        m.granted,
        z3.Or(
            z3.And(m.prevote, pre_done, started.overflow),
            z3.And(z3.Not(m.prevote), elected, overflow),
        ),
    )
    return _effect(s, _valid(s, m), post, sends, started.msg, overflow=grew)


# --- replication -----------------------------------------------------------------------------


def _first_index_of_term(s: SymNode, index: Expr, floor: Expr) -> Expr:
    """_first_index_of_term mirrors spec/_log.first_index_of_term, unrolled `cap` times."""
    term = _term_at(s, index)[1]
    for _ in range(s.cap):
        index = z3.If(
            z3.And(index - 1 > floor, _term_at(s, index - 1)[1] == term), index - 1, index
        )
    return index


def _merge(s: SymNode, m: SymMsg) -> tuple[Expr, tuple[Expr, ...], Expr, Expr]:
    """_merge mirrors spec/_replication._merge: (log_len, log, committed_conflict, overflow)."""
    prev, k = m.prev_index, m.n_entries
    diverged: list[Expr] = []
    conflicts: list[Expr] = []
    for offset, entry in enumerate(m.entries):
        index = prev + 1 + offset
        exists, existing = _term_at(s, index)
        here = z3.And(offset < k, z3.Or(z3.Not(exists), existing != entry))
        first = z3.And(here, z3.Not(z3.Or(*diverged))) if diverged else here
        conflicts.append(z3.And(first, exists, index <= s.commit))
        diverged.append(here)
    changes = z3.Or(*diverged) if diverged else z3.BoolVal(False)
    log = tuple(
        z3.If(
            z3.And(changes, pos > prev),
            z3.If(pos <= prev + k, _select(m.entries, pos - prev - 1, num(0)), 0),
            old,
        )
        for pos, old in enumerate(s.log, start=1)
    )
    length = z3.If(changes, prev + k, s.log_len)
    return length, log, z3.Or(*conflicts), z3.And(changes, prev + k > s.cap)


def _on_append_request(s: SymNode, m: SymMsg, flaws: frozenset[Flaw]) -> Effect:
    valid = z3.And(
        _valid(s, m),
        m.prev_index >= 0,
        m.leader_commit >= 0,
        m.n_entries >= 0,
        m.n_entries <= len(m.entries),
        *[z3.Implies(j < m.n_entries, e <= m.term) for j, e in enumerate(m.entries)],
    )
    s1 = _adopt(s, m.term, z3.BoolVal(True))
    stale = m.term < s1.term
    empty = _only(s.n, None)
    s2 = replace(
        s1,
        role=num(FOLLOWER),
        leader=m.src,
        heard=z3.BoolVal(True),
        prevotes=empty,
        votes=empty,
        rejections=empty,
    )
    exists, prev_term = _term_at(s2, m.prev_index)
    conflict = z3.And(exists, prev_term != m.prev_term)
    if Flaw.SKIP_PREV_TERM_CHECK in flaws:
        conflict = z3.BoolVal(False)
    success = z3.And(z3.Not(stale), exists, z3.Not(conflict))
    length, log, committed_conflict, overflow = _merge(s2, m)
    matched = m.prev_index + m.n_entries
    commit = _max(s2.commit, _min(m.leader_commit, matched))
    s3 = replace(s2, log_len=length, log=log, commit=commit)
    post = ite_node(stale, s1, ite_node(success, s3, s2))
    hint = z3.If(
        z3.Not(exists),
        s2.log_len + 1,
        _first_index_of_term(s2, m.prev_index, s2.commit),
    )
    reply = replace(
        _no_msg(s.cap),
        kind=num(MsgKind.APPEND_RESPONSE),
        src=s.id,
        dst=m.src,
        term=post.term,
        success=success,
        match_index=z3.If(success, matched, 0),
        hint_index=z3.If(z3.Or(stale, success), 0, hint),
    )
    enabled = z3.And(valid, z3.Not(z3.And(success, committed_conflict)))
    return _effect(s, enabled, post, z3.BoolVal(True), reply, overflow=z3.And(success, overflow))


def _on_append_response(s: SymNode, m: SymMsg) -> Effect:
    valid = z3.And(_valid(s, m), m.match_index >= 0, m.hint_index >= 0)
    s1 = _adopt(s, m.term, z3.BoolVal(True))
    active = z3.And(s1.role == LEADER, m.term == s1.term)
    old_match = _select(s1.match_index, m.src, num(0))
    old_next = _select(s1.next_index, m.src, num(0))
    new_match = z3.If(m.success, _max(old_match, m.match_index), old_match)
    new_next = z3.If(
        m.success,
        _max(old_next, new_match + 1),
        _max(old_match + 1, _min(old_next, m.hint_index)),
    )
    s2 = replace(
        s1,
        match_index=_set(s1.match_index, m.src, new_match),
        next_index=_set(s1.next_index, m.src, new_next),
    )
    post = ite_node(active, _advance_commit(s2), s1)
    return _effect(s, valid, post, z3.BoolVal(False), _no_msg(s.cap))


def receive(s: SymNode, m: SymMsg, flaws: frozenset[Flaw] = frozenset()) -> Effect:
    """receive mirrors spec/_step._receive for a message of any kind (dispatch on `m.kind`)."""
    effects = [
        (MsgKind.VOTE_REQUEST, _on_vote_request(s, m, flaws)),
        (MsgKind.VOTE_RESPONSE, _on_vote_response(s, m, flaws)),
        (MsgKind.APPEND_REQUEST, _on_append_request(s, m, flaws)),
        (MsgKind.APPEND_RESPONSE, _on_append_response(s, m)),
    ]
    kind, result = effects[-1]
    enabled = z3.And(m.kind == kind, result.enabled)
    state, sends, msg, overflow = result.state, result.sends, result.msg, result.overflow
    for kind, effect in reversed(effects[:-1]):
        here = m.kind == kind
        enabled = z3.If(here, effect.enabled, enabled)
        state = ite_node(here, effect.state, state)
        sends = z3.If(here, effect.sends, sends)
        msg = _ite_msg(here, effect.msg, msg)
        overflow = z3.If(here, effect.overflow, overflow)
    return Effect(
        enabled, ite_node(enabled, state, s), z3.And(enabled, sends), msg, z3.And(enabled, overflow)
    )


def client_request(s: SymNode) -> Effect:
    """client_request mirrors spec/_replication.on_client_request (Leader Append-Only, 5.3)."""
    grown, overflow = _append_own(s, z3.BoolVal(True))
    grown = replace(
        grown,
        match_index=tuple(
            _ite(s.id == k, grown.log_len, old) for k, old in enumerate(grown.match_index)
        ),
    )
    return _effect(
        s,
        s.role == LEADER,
        _advance_commit(grown),
        z3.BoolVal(False),
        _no_msg(s.cap),
        overflow=overflow,
    )


def send_append(
    s: SymNode,
    peer: Expr,
    prev_index: Expr,
    count: Expr,
    *,
    default_prev: Expr = False,
    default_count: Expr = False,
) -> Effect:
    """send_append mirrors spec/_replication.on_send_append.

    `default_prev` / `default_count` stand for the spec's `None`: from the peer's next index,
    and everything after it.
    """
    prev = z3.If(default_prev, _select(s.next_index, peer, num(0)) - 1, prev_index)
    available = s.log_len - prev
    size = z3.If(default_count, available, count)
    enabled = z3.And(
        s.role == LEADER,
        peer != s.id,
        peer >= 0,
        peer < s.n,
        prev >= 0,
        prev <= s.log_len,
        size >= 0,
        size <= available,
    )
    entries = tuple(z3.If(j < size, _term_at(s, prev + 1 + j)[1], 0) for j in range(s.cap))
    msg = replace(
        _no_msg(s.cap),
        kind=num(MsgKind.APPEND_REQUEST),
        src=s.id,
        dst=peer,
        term=s.term,
        prev_index=prev,
        prev_term=_term_at(s, prev)[1],
        n_entries=size,
        entries=entries,
        leader_commit=s.commit,
    )
    return _effect(s, enabled, s, z3.BoolVal(True), msg)


def restart(s: SymNode) -> Effect:
    """restart mirrors spec Restart from the node's own durable state (what its disk holds)."""
    empty = _only(s.n, None)
    zeros = (num(0),) * s.n
    fresh = replace(
        s,
        role=num(FOLLOWER),
        leader=num(NONE),
        prevotes=empty,
        votes=empty,
        rejections=empty,
        next_index=zeros,
        match_index=zeros,
        heard=z3.BoolVal(False),
    )
    return _effect(s, z3.BoolVal(True), fresh, z3.BoolVal(False), _no_msg(s.cap))


def lose_quorum(s: SymNode) -> Effect:
    """lose_quorum is check-quorum stepping a leader down in its own term (spec _check_quorum).

    BMC lets a leader do this at any time, which over-approximates "heard from no quorum".
    """
    return _effect(s, s.role == LEADER, _step_down(s, s.term), z3.BoolVal(False), _no_msg(s.cap))
