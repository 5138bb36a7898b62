"""Linearizable reads by ReadIndex (thesis section 6.4; the seed's verify authority).

A read records the commit index at arrival and a fresh confirmation sequence number (ctx).
Every append the leader sends afterwards carries the newest ctx, and every reply in the same
term echoes it. The read is released once a quorum (the leader included) has echoed a ctx at
least its own, so leadership was confirmed *after* the read arrived (etcd#20418), and once the
leader's sentinel has committed, so its commit index covers everything committed before it.
"""

from __future__ import annotations

from dataclasses import replace

from spec._inuse import voters_in_use
from spec._outputs import ReadAnswer
from spec._quorum import quorum_size
from spec._state import NodeState, PendingRead, Role
from spec._transition import DisabledError, Transition

__all__ = ["confirmed_ctx", "on_read_request", "release_reads"]


def confirmed_ctx(state: NodeState) -> int:
    """confirmed_ctx is the highest ctx that a quorum of voters in use acknowledged this term."""
    acks = sorted(
        (state.read_seq if peer == state.id else state.acked_ctx[peer])
        for peer in voters_in_use(state)
    )
    return acks[len(acks) - quorum_size(len(acks))]


def on_read_request(state: NodeState, read_id: int) -> Transition:
    """on_read_request queues a read on the leader, tagged with a new confirmation ctx."""
    if state.role is not Role.LEADER:
        raise DisabledError("only the leader serves linearizable reads")
    if any(read.read_id == read_id for read in state.pending_reads):
        raise DisabledError(f"read {read_id} is already pending")
    seq = state.read_seq + 1
    read = PendingRead(read_id=read_id, read_index=state.commit, ctx=seq)
    return release_reads(replace(state, read_seq=seq, pending_reads=(*state.pending_reads, read)))


def release_reads(state: NodeState) -> Transition:
    """release_reads answers every pending read whose confirmation is complete."""
    if state.role is not Role.LEADER or not state.pending_reads:
        return Transition(state)
    if state.commit < state.sentinel:
        return Transition(state)
    confirmed = confirmed_ctx(state)
    ready = tuple(read for read in state.pending_reads if read.ctx <= confirmed)
    if not ready:
        return Transition(state)
    waiting = tuple(read for read in state.pending_reads if read.ctx > confirmed)
    answers = tuple(
        ReadAnswer(read.read_id, max(read.read_index, state.sentinel)) for read in ready
    )
    return Transition(replace(state, pending_reads=waiting), reads=answers)
