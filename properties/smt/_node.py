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

from dataclasses import replace

import z3

from properties.smt._symbolic import (
    CANDIDATE,
    FOLLOWER,
    LEADER,
    NONE,
    PRECANDIDATE,
    WIDTH,
    Effect,
    Expr,
    Flaw,
    MsgKind,
    SymMsg,
    SymNode,
    add_member,
    adopt,
    effect_of,
    fresh_msg,
    fresh_node,
    has_member,
    is_quorum_sym,
    ite,
    ite_msg,
    ite_node,
    last_term_sym,
    max_of,
    min_of,
    mine,
    no_msg,
    nodes_equal,
    num,
    only,
    quorum_need,
    select,
    set_at,
    step_down,
    term_at_sym,
    up_to_date,
    var,
)

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


# --- the commit rule and elections ----------------------------------------------------------


def _advance_commit(s: SymNode) -> SymNode:
    """_advance_commit mirrors spec/_commit.advance_commit (sections 5.3, 5.4.2)."""
    need = s.n // 2 + 1
    matches = [ite(s.id == k, s.log_len, s.match_index[k]) for k in range(s.n)]
    best: Expr = num(0)
    for value in matches:
        enough = z3.Sum(*[z3.If(other >= value, num(1), num(0)) for other in matches]) >= need
        best = z3.If(z3.And(enough, value > best), value, best)
    exists, term = term_at_sym(s, best)
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
    empty = only(s.n, None)
    leader = replace(
        s,
        role=num(LEADER),
        leader=s.id,
        next_index=(s.log_len + 1,) * s.n,
        match_index=tuple(ite(s.id == k, s.log_len, num(0)) for k in range(s.n)),
        heard=z3.BoolVal(False),
        prevotes=empty,
        rejections=empty,
    )
    return _advance_commit(leader), overflow


def _ask(s: SymNode, prevote: bool) -> SymMsg:
    return replace(
        no_msg(s.cap),
        kind=num(MsgKind.VOTE_REQUEST),
        src=s.id,
        dst=num(NONE),
        term=s.term,
        prevote=z3.BoolVal(prevote),
        last_log_index=s.log_len,
        last_log_term=last_term_sym(s),
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
        prevotes=only(s.n, None),
        votes=mine(s),
        rejections=only(s.n, None),
    )
    enabled = s.role != LEADER
    if quorum_need(s.n, flaws) <= 1:
        leader, overflow = _become_leader(cand)
        return effect_of(s, enabled, leader, z3.BoolVal(False), no_msg(s.cap), overflow=overflow)
    return effect_of(s, enabled, cand, z3.BoolVal(True), _ask(cand, prevote=False))


def election_timeout(s: SymNode, flaws: frozenset[Flaw] = frozenset()) -> Effect:
    """election_timeout mirrors spec/_election.on_election_timeout (the prevote phase)."""
    pre = replace(
        s,
        role=num(PRECANDIDATE),
        leader=num(NONE),
        heard=z3.BoolVal(False),
        prevotes=mine(s),
        votes=only(s.n, None),
        rejections=only(s.n, None),
    )
    enabled = s.role != LEADER
    if quorum_need(s.n, flaws) <= 1:
        started = start_election(pre, flaws)
        return effect_of(
            s, enabled, started.state, started.sends, started.msg, overflow=started.overflow
        )
    return effect_of(s, enabled, pre, z3.BoolVal(True), _ask(pre, prevote=True))


def _valid(s: SymNode, m: SymMsg) -> Expr:
    return z3.And(m.dst == s.id, m.src != s.id, m.src >= 0, m.src < s.n, m.term >= 0)


def _on_vote_request(s: SymNode, m: SymMsg, flaws: frozenset[Flaw]) -> Effect:
    s1 = adopt(s, m.term, z3.Not(m.prevote))
    utd = up_to_date(m.last_log_term, m.last_log_index, s1)
    pre_granted = z3.And(m.term >= s1.term, utd, z3.Not(s1.heard), s1.role != LEADER)
    free = z3.Or(s1.voted_for == NONE, s1.voted_for == m.src)
    if Flaw.VOTE_TWICE in flaws:
        free = z3.BoolVal(True)
    vote_granted = z3.And(m.term >= s1.term, free, utd)
    granted = z3.If(m.prevote, pre_granted, vote_granted)
    empty = only(s.n, None)
    voted = replace(s1, voted_for=m.src, role=num(FOLLOWER), prevotes=empty, rejections=empty)
    s2 = ite_node(z3.And(z3.Not(m.prevote), vote_granted), voted, s1)
    reply = replace(
        no_msg(s.cap),
        kind=num(MsgKind.VOTE_RESPONSE),
        src=s.id,
        dst=m.src,
        term=s2.term,
        prevote=m.prevote,
        granted=granted,
        request_term=m.term,
    )
    return effect_of(s, _valid(s, m), s2, z3.BoolVal(True), reply)


def _on_vote_response(s: SymNode, m: SymMsg, flaws: frozenset[Flaw]) -> Effect:
    s1 = adopt(s, m.term, z3.BoolVal(True))
    phase = z3.If(m.prevote, num(PRECANDIDATE), num(CANDIDATE))
    seen = z3.Or(
        has_member(s1.prevotes, m.src),
        has_member(s1.votes, m.src),
        has_member(s1.rejections, m.src),
    )
    counts = z3.And(s1.role == phase, m.request_term == s1.term, z3.Not(seen))
    rejected = replace(s1, rejections=add_member(s1.rejections, m.src))
    pre = replace(s1, prevotes=add_member(s1.prevotes, m.src))
    started = start_election(pre, flaws)
    pre_done = is_quorum_sym(pre.prevotes, flaws)
    real = replace(s1, votes=add_member(s1.votes, m.src))
    elected = (
        z3.BoolVal(True) if Flaw.LEADER_ON_FIRST_VOTE in flaws else is_quorum_sym(real.votes, flaws)
    )
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
    return effect_of(s, _valid(s, m), post, sends, started.msg, overflow=grew)


# --- replication -----------------------------------------------------------------------------


def _first_index_of_term(s: SymNode, index: Expr, floor: Expr) -> Expr:
    """_first_index_of_term mirrors spec/_log.first_index_of_term, unrolled `cap` times."""
    term = term_at_sym(s, index)[1]
    for _ in range(s.cap):
        index = z3.If(
            z3.And(index - 1 > floor, term_at_sym(s, index - 1)[1] == term), index - 1, index
        )
    return index


def _merge(s: SymNode, m: SymMsg) -> tuple[Expr, tuple[Expr, ...], Expr, Expr]:
    """_merge mirrors spec/_replication._merge: (log_len, log, committed_conflict, overflow)."""
    prev, k = m.prev_index, m.n_entries
    diverged: list[Expr] = []
    conflicts: list[Expr] = []
    for offset, entry in enumerate(m.entries):
        index = prev + 1 + offset
        exists, existing = term_at_sym(s, index)
        here = z3.And(offset < k, z3.Or(z3.Not(exists), existing != entry))
        first = z3.And(here, z3.Not(z3.Or(*diverged))) if diverged else here
        conflicts.append(z3.And(first, exists, index <= s.commit))
        diverged.append(here)
    changes = z3.Or(*diverged) if diverged else z3.BoolVal(False)
    log = tuple(
        z3.If(
            z3.And(changes, pos > prev),
            z3.If(pos <= prev + k, select(m.entries, pos - prev - 1, num(0)), 0),
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
    s1 = adopt(s, m.term, z3.BoolVal(True))
    stale = m.term < s1.term
    empty = only(s.n, None)
    s2 = replace(
        s1,
        role=num(FOLLOWER),
        leader=m.src,
        heard=z3.BoolVal(True),
        prevotes=empty,
        votes=empty,
        rejections=empty,
    )
    exists, prev_term = term_at_sym(s2, m.prev_index)
    conflict = z3.And(exists, prev_term != m.prev_term)
    if Flaw.SKIP_PREV_TERM_CHECK in flaws:
        conflict = z3.BoolVal(False)
    success = z3.And(z3.Not(stale), exists, z3.Not(conflict))
    length, log, committed_conflict, overflow = _merge(s2, m)
    matched = m.prev_index + m.n_entries
    commit = max_of(s2.commit, min_of(m.leader_commit, matched))
    s3 = replace(s2, log_len=length, log=log, commit=commit)
    post = ite_node(stale, s1, ite_node(success, s3, s2))
    hint = z3.If(
        z3.Not(exists),
        s2.log_len + 1,
        _first_index_of_term(s2, m.prev_index, s2.commit),
    )
    reply = replace(
        no_msg(s.cap),
        kind=num(MsgKind.APPEND_RESPONSE),
        src=s.id,
        dst=m.src,
        term=post.term,
        success=success,
        match_index=z3.If(success, matched, 0),
        hint_index=z3.If(z3.Or(stale, success), 0, hint),
    )
    enabled = z3.And(valid, z3.Not(z3.And(success, committed_conflict)))
    return effect_of(s, enabled, post, z3.BoolVal(True), reply, overflow=z3.And(success, overflow))


def _on_append_response(s: SymNode, m: SymMsg) -> Effect:
    valid = z3.And(_valid(s, m), m.match_index >= 0, m.hint_index >= 0)
    s1 = adopt(s, m.term, z3.BoolVal(True))
    active = z3.And(s1.role == LEADER, m.term == s1.term)
    old_match = select(s1.match_index, m.src, num(0))
    old_next = select(s1.next_index, m.src, num(0))
    new_match = z3.If(m.success, max_of(old_match, m.match_index), old_match)
    new_next = z3.If(
        m.success,
        max_of(old_next, new_match + 1),
        max_of(old_match + 1, min_of(old_next, m.hint_index)),
    )
    s2 = replace(
        s1,
        match_index=set_at(s1.match_index, m.src, new_match),
        next_index=set_at(s1.next_index, m.src, new_next),
    )
    post = ite_node(active, _advance_commit(s2), s1)
    return effect_of(s, valid, post, z3.BoolVal(False), no_msg(s.cap))


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
        msg = ite_msg(here, effect.msg, msg)
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
            ite(s.id == k, grown.log_len, old) for k, old in enumerate(grown.match_index)
        ),
    )
    return effect_of(
        s,
        s.role == LEADER,
        _advance_commit(grown),
        z3.BoolVal(False),
        no_msg(s.cap),
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
    prev = z3.If(default_prev, select(s.next_index, peer, num(0)) - 1, prev_index)
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
    entries = tuple(z3.If(j < size, term_at_sym(s, prev + 1 + j)[1], 0) for j in range(s.cap))
    msg = replace(
        no_msg(s.cap),
        kind=num(MsgKind.APPEND_REQUEST),
        src=s.id,
        dst=peer,
        term=s.term,
        prev_index=prev,
        prev_term=term_at_sym(s, prev)[1],
        n_entries=size,
        entries=entries,
        leader_commit=s.commit,
    )
    return effect_of(s, enabled, s, z3.BoolVal(True), msg)


def restart(s: SymNode) -> Effect:
    """restart mirrors spec Restart from the node's own durable state (what its disk holds)."""
    empty = only(s.n, None)
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
    return effect_of(s, z3.BoolVal(True), fresh, z3.BoolVal(False), no_msg(s.cap))


def lose_quorum(s: SymNode) -> Effect:
    """lose_quorum is check-quorum stepping a leader down in its own term (spec _check_quorum).

    BMC lets a leader do this at any time, which over-approximates "heard from no quorum".
    """
    return effect_of(s, s.role == LEADER, step_down(s, s.term), z3.BoolVal(False), no_msg(s.cap))
