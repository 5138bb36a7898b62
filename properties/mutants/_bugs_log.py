"""Seeded replication, commit, read and persistence bugs (see `_bugs_election` for the rules).

Each function is a copy of one spec function with one realistic mistake, named in its
docstring together with the real-world bug it mirrors.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from spec import (
    AppendRequest,
    AppendResponse,
    Entry,
    Input,
    Message,
    NodeState,
    PendingRead,
    ReadAnswer,
    Restart,
    Role,
    StepResult,
    VoteRequest,
    VoteResponse,
    last_index,
    term_at,
)
from spec import _election as spec_election
from spec import _replication as spec_replication
from spec._commit import advance_commit, quorum_match
from spec._log import first_index_of_term
from spec._reads import release_reads
from spec._replication import _reply
from spec._step import _dispatch, _validate
from spec._transition import DisabledError, Transition, step_down

__all__ = [
    "advance_commit_by_counting",
    "become_leader_without_sentinel",
    "merge_truncates_after_prev",
    "on_append_request_commit_follows_leader",
    "on_append_response_newer_term",
    "on_read_request_shared_ctx",
    "receive_ignores_reply_terms",
    "release_reads_without_quorum",
    "step_persists_after_election",
]


def advance_commit_by_counting(state: NodeState) -> NodeState:
    """Figure 8: an entry of an earlier term is committed by counting its replicas.

    PySyncObj #169. Section 5.4.2 allows a leader to count replicas only for entries of its
    own term; an older entry on a majority can still be overwritten by a later leader.
    """
    if state.role is not Role.LEADER:
        return state
    candidate = quorum_match(state)
    if candidate <= state.commit:  # BUG: no "entry is from the current term" check
        return state
    return replace(state, commit=candidate)


def merge_truncates_after_prev(
    log: tuple[Entry, ...], prev_index: int, entries: tuple[Entry, ...], commit: int
) -> tuple[Entry, ...]:
    """Follower truncates entries that match: everything after prev_index is replaced.

    Section 5.3 says to delete only from the first *conflicting* entry. A delayed, shorter
    AppendEntries then cuts off entries the follower already acknowledged (a classic
    reordering bug, also the reason etcd's `maybeAppend` finds the conflict first).
    """
    del commit  # BUG: neither the conflict search nor the commit guard
    return log[:prev_index] + entries


def on_append_request_commit_follows_leader(state: NodeState, msg: AppendRequest) -> Transition:
    """Commit index moves backwards: the follower copies a stale leader_commit.

    PySyncObj #166 / #167: a reordered (older) AppendEntries lowered the follower's commit
    index, and with it what the state machine was told was durable.
    """
    if msg.term < state.term:
        return spec_replication.reject_stale_append(state, msg)
    state = replace(
        state,
        role=Role.FOLLOWER,
        leader=msg.src,
        heard_from_leader=True,
        prevotes=frozenset(),
        votes=frozenset(),
        rejections=frozenset(),
    )
    log = state.log
    prev_term = term_at(log, msg.prev_index)
    if prev_term is None:
        hint = last_index(log) + 1
        return Transition(state, (_reply(state, msg, success=False, match=0, hint=hint),))
    if prev_term != msg.prev_term:
        hint = first_index_of_term(log, msg.prev_index, floor=state.commit)
        return Transition(state, (_reply(state, msg, success=False, match=0, hint=hint),))
    log = spec_replication._merge(log, msg.prev_index, msg.entries, state.commit)
    match = msg.prev_index + len(msg.entries)
    commit = min(msg.leader_commit, match)  # BUG: max(state.commit, ...) dropped
    state = replace(state, log=log, commit=commit)
    return Transition(state, (_reply(state, msg, success=True, match=match, hint=0),))


def receive_ignores_reply_terms(state: NodeState, message: Message) -> Transition:
    """A node ignores a higher term in a reply (first half of the reply-term bug).

    The term marker is applied to requests only; replies go straight to their handlers,
    so a deposed leader never learns of the newer term from its followers' answers.
    """
    _validate(state, message)
    is_request = isinstance(message, AppendRequest) or (
        isinstance(message, VoteRequest) and not message.prevote
    )
    if is_request and message.term > state.term:  # BUG: replies never adopt the term
        state = step_down(state, message.term)
    # Handlers are looked up on their modules at call time, so a co-applied mutant of a
    # handler (patched in every holder) is the one called.
    match message:
        case VoteRequest():
            return spec_election.on_vote_request(state, message)
        case VoteResponse():
            return spec_election.on_vote_response(state, message)
        case AppendRequest():
            return spec_replication.on_append_request(state, message)
        case AppendResponse():
            return spec_replication.on_append_response(state, message)
        case _:
            assert_never(message)


def on_append_response_newer_term(state: NodeState, msg: AppendResponse) -> Transition:
    """Leader drops only *older* replies (second half of the reply-term bug).

    Written for a step that already adopted newer terms, it treats a newer term's rejection
    as an answer to its own heartbeat: the echoed read context confirms leadership it lost,
    so a deposed leader serves stale reads (thesis section 6.4).
    """
    if state.role is not Role.LEADER or msg.term < state.term:  # BUG: `!=` became `<`
        return Transition(state)
    peer = msg.src
    match = list(state.match_index)
    nxt = list(state.next_index)
    acked = list(state.acked_ctx)
    acked[peer] = max(acked[peer], msg.read_ctx)
    if msg.success:
        match[peer] = max(match[peer], msg.match_index)
        nxt[peer] = max(nxt[peer], match[peer] + 1)
    else:
        nxt[peer] = max(match[peer] + 1, min(nxt[peer], msg.hint_index))
    state = replace(
        state,
        match_index=tuple(match),
        next_index=tuple(nxt),
        acked_ctx=tuple(acked),
        recent_active=state.recent_active | {peer},
    )
    return release_reads(advance_commit(state))


def become_leader_without_sentinel(state: NodeState) -> Transition:
    """Sentinel omitted: a new leader with a lagging commit index does not append a no-op.

    Without the term-change entry (section 5.4.2, thesis section 6.4) the leader's commit
    index may be behind what its predecessor committed, and a read released at that index
    misses committed writes.
    """
    if state.role is not Role.CANDIDATE:
        raise DisabledError("only a candidate can become leader")
    log = state.log  # BUG: no sentinel entry even when commit < last_index
    n = len(state.voters)
    match = [0] * n
    match[state.id] = last_index(log)
    leader = replace(
        state,
        role=Role.LEADER,
        leader=state.id,
        next_index=(last_index(log) + 1,) * n,
        match_index=tuple(match),
        heard_from_leader=False,
        recent_active=frozenset({state.id}),
        sentinel=state.commit,
        acked_ctx=(0,) * n,
        pending_reads=(),
        prevotes=frozenset(),
        rejections=frozenset(),
    )
    return Transition(advance_commit(leader))


def release_reads_without_quorum(state: NodeState) -> Transition:
    """Read answered before a quorum confirms leadership: the leader trusts its own role.

    The read-from-local-state shortcut (no ReadIndex heartbeat, no lease) lets a leader that
    was already deposed answer with an old commit index (thesis section 6.4).
    """
    if state.role is not Role.LEADER or not state.pending_reads:
        return Transition(state)
    if state.commit < state.sentinel:
        return Transition(state)
    ready = state.pending_reads  # BUG: confirmed_ctx is never consulted
    answers = tuple(
        ReadAnswer(read.read_id, max(read.read_index, state.sentinel)) for read in ready
    )
    return Transition(replace(state, pending_reads=()), reads=answers)


def on_read_request_shared_ctx(state: NodeState, read_id: int) -> Transition:
    """Reads share a heartbeat context: a read reuses the latest ctx instead of a new one.

    etcd#20418: acknowledgements of a heartbeat sent *before* the read arrived confirm it, so
    leadership is not confirmed after the read began.
    """
    if state.role is not Role.LEADER:
        raise DisabledError("only the leader serves linearizable reads")
    if any(read.read_id == read_id for read in state.pending_reads):
        raise DisabledError(f"read {read_id} is already pending")
    read = PendingRead(read_id=read_id, read_index=state.commit, ctx=state.read_seq)  # BUG
    return release_reads(replace(state, pending_reads=(*state.pending_reads, read)))


def step_persists_after_election(state: NodeState, event: Input) -> StepResult:
    """Candidate asks before persisting: the new term and self-vote are written after sending.

    PySyncObj #84 / #201 territory: when the term/vote write is queued behind the RequestVote
    messages, a crash in between leaves a disk that never saw the vote the messages claim.
    In the spec's Ready order this is a step that makes a node CANDIDATE without a persist.
    """
    try:
        transition = _dispatch(state, event)
    except DisabledError as refusal:
        return StepResult(state=state, rejected=refusal.reason)
    new = transition.state
    if isinstance(event, Restart):
        return StepResult(state=new, committed=new.log[: new.commit])
    durable = new.durable()
    persist = durable if durable != state.durable() else None
    if new.role is Role.CANDIDATE and state.role is not Role.CANDIDATE:
        persist = None  # BUG: the election's durable write is deferred past the sends
    committed = new.log[state.commit : new.commit] if new.commit > state.commit else ()
    return StepResult(
        state=new,
        persist=persist,
        messages=transition.messages,
        committed=committed,
        reads=transition.reads,
    )
