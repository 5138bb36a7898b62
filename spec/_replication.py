"""Log replication: AppendEntries on both sides and client proposals (section 5.3)."""

from __future__ import annotations

from dataclasses import replace

from spec._commit import advance_commit
from spec._inuse import members_in_use
from spec._log import (
    Entry,
    EntryKind,
    entries_from,
    first_index_of_term,
    last_index,
    spliced,
    term_at,
)
from spec._messages import AppendRequest, AppendResponse
from spec._reads import release_reads
from spec._state import NodeState, Role
from spec._transition import DisabledError, Transition

__all__ = [
    "on_append_request",
    "on_append_response",
    "on_client_request",
    "on_heartbeat_due",
    "on_send_append",
    "reject_stale_append",
]


def _require_leader(state: NodeState) -> None:
    if state.role is not Role.LEADER:
        raise DisabledError("only the leader replicates")


def append_to(state: NodeState, peer: int, prev_index: int, count: int) -> AppendRequest:
    prev_term = term_at(state.log, prev_index)
    assert prev_term is not None  # callers check prev_index <= last_index
    return AppendRequest(
        src=state.id,
        dst=peer,
        term=state.term,
        prev_index=prev_index,
        prev_term=prev_term,
        entries=entries_from(state.log, prev_index + 1, count),
        leader_commit=state.commit,
        read_ctx=state.read_seq,
    )


def on_send_append(
    state: NodeState, peer: int, prev_index: int | None, count: int | None
) -> Transition:
    """on_send_append sends one AppendEntries covering a range the leader chose.

    The default range is everything from the peer's next index. Any range is allowed: the
    consistency check makes every choice safe, which is what lets the implementation batch and
    pipeline freely. The peer must be a voter or learner of the configuration in use.
    """
    _require_leader(state)
    if peer == state.id or peer not in members_in_use(state):
        raise DisabledError(f"node {peer} is not a peer of node {state.id}")
    prev = state.next_index[peer] - 1 if prev_index is None else prev_index
    if not 0 <= prev <= last_index(state.log):
        raise DisabledError(f"prev_index {prev} is outside the leader's log")
    available = last_index(state.log) - prev
    size = available if count is None else count
    if not 0 <= size <= available:
        raise DisabledError(f"count {size} is outside 0..{available}")
    return Transition(state, (append_to(state, peer, prev, size),))


def on_heartbeat_due(state: NodeState) -> Transition:
    """on_heartbeat_due sends an empty append to every member (section 5.2, heartbeats)."""
    _require_leader(state)
    return Transition(
        state,
        tuple(
            append_to(state, peer, state.next_index[peer] - 1, 0)
            for peer in members_in_use(state)
            if peer != state.id
        ),
    )


def on_client_request(state: NodeState, payload: bytes) -> Transition:
    """on_client_request appends a command to the leader's log (Leader Append-Only, 5.3).

    Refused during a leadership transfer (thesis 3.10), so the target can catch up.
    """
    _require_leader(state)
    if state.transfer_target is not None:
        raise DisabledError(f"leadership transfer to node {state.transfer_target} in progress")
    log = spliced(state.log, len(state.log), (Entry(state.term, EntryKind.NORMAL, payload),))
    match = list(state.match_index)
    match[state.id] = last_index(log)
    return Transition(advance_commit(replace(state, log=log, match_index=tuple(match))))


def on_append_request(state: NodeState, msg: AppendRequest) -> Transition:
    """on_append_request is the follower side; higher terms were adopted by the caller.

    A current leader's message makes us its follower (and cancels our election). The
    consistency check on (prev_index, prev_term) gives Log Matching; existing entries are
    truncated only on a real conflict and never at or below the commit index; the commit index
    follows the leader's, capped at the last entry this message vouches for.
    """
    if msg.term < state.term:
        return reject_stale_append(state, msg)
    if not (
        state.role is Role.FOLLOWER
        and state.leader == msg.src
        and state.heard_from_leader
        and not (state.prevotes or state.votes or state.rejections)
    ):  # (a follower of this leader already is all this: most appends skip the copy)
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
    log = _merge(log, msg.prev_index, msg.entries, state.commit)
    match = msg.prev_index + len(msg.entries)
    commit = max(state.commit, min(msg.leader_commit, match))
    if log is not state.log or commit != state.commit:
        state = replace(state, log=log, commit=commit)
    return Transition(state, (_reply(state, msg, success=True, match=match, hint=0),))


def reject_stale_append(state: NodeState, msg: AppendRequest) -> Transition:
    """reject_stale_append answers a stale leader's request so it learns our term.

    It echoes no read ctx: the reply carries our (current) term, so an echoed ctx would count
    as a confirmation in whatever term the sender leads now, though it proves nothing there.
    """
    stale = _reply(state, msg, success=False, match=0, hint=0)
    return Transition(state, (replace(stale, read_ctx=0),))


def _merge(
    log: tuple[Entry, ...], prev_index: int, entries: tuple[Entry, ...], commit: int
) -> tuple[Entry, ...]:
    """_merge writes `entries` after `prev_index`, truncating only at the first real conflict."""
    for offset, entry in enumerate(entries):
        index = prev_index + 1 + offset
        existing = term_at(log, index)
        if existing is None:
            return spliced(log, len(log), entries[offset:])
        if existing != entry.term:
            if index <= commit:
                raise DisabledError(f"append conflicts with committed entry {index}")
            return spliced(log, index - 1, entries[offset:])
    return log


def _reply(
    state: NodeState, msg: AppendRequest, *, success: bool, match: int, hint: int
) -> AppendResponse:
    return AppendResponse(
        src=state.id,
        dst=msg.src,
        term=state.term,
        success=success,
        match_index=match,
        hint_index=hint,
        read_ctx=msg.read_ctx,
    )


def on_append_response(state: NodeState, msg: AppendResponse) -> Transition:
    """on_append_response is the leader side: progress, back-off, commit, read confirmation.

    Match indexes only grow (a reordered old reply cannot pull one back, PySyncObj #166); on a
    rejection the next index jumps to the follower's hint, never below what is known matched.
    """
    if state.role is not Role.LEADER or msg.term != state.term:
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
