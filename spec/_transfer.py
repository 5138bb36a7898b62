"""Leadership transfer by TimeoutNow (Raft thesis section 3.10).

The leader stops taking client requests, brings the target's log up to its own with ordinary
appends, then sends TimeoutNow: here an append that ends at the leader's last index with
`timeout_now` set, so the target starts its election only if it really holds the leader's
whole log. The target campaigns at once, skipping prevote, with vote requests marked as a
transfer (thesis 4.2.3 lets voters ignore leader stickiness for them). The election
restriction still applies: a voter never grants a log less up to date than its own.

If the target does not take over within an election timeout, the leader's next ElectionTimeout
or CheckQuorum input ends the transfer and it takes client requests again.
"""

from __future__ import annotations

from dataclasses import replace

from spec._inuse import voters_in_use
from spec._log import last_index
from spec._messages import AppendRequest, AppendResponse
from spec._replication import append_to
from spec._state import NodeState, Role
from spec._transition import DisabledError, Transition

__all__ = ["after_append_response", "on_transfer_leadership", "timeout_now"]


def timeout_now(state: NodeState, target: int) -> AppendRequest:
    """timeout_now is the TimeoutNow message: an append from the target's next index to the end.

    Sent once the target's match index equals the leader's last index, so it usually carries
    no entries; the consistency check makes it safe whatever the target holds.
    """
    return replace(_catch_up(state, target), timeout_now=True)


def _catch_up(state: NodeState, target: int) -> AppendRequest:
    prev = min(state.next_index[target] - 1, last_index(state.log))
    return append_to(state, target, prev, last_index(state.log) - prev)


def on_transfer_leadership(state: NodeState, target: int) -> Transition:
    """on_transfer_leadership starts handing leadership to voter `target` (thesis 3.10)."""
    if state.role is not Role.LEADER:
        raise DisabledError("only the leader transfers leadership")
    if state.transfer_target is not None:
        raise DisabledError(f"leadership transfer to node {state.transfer_target} in progress")
    if target == state.id:
        raise DisabledError(f"node {target} is already the leader")
    if target not in voters_in_use(state):
        raise DisabledError(f"node {target} is not a voter in the leader's configuration")
    moving = replace(state, transfer_target=target)
    if state.match_index[target] == last_index(state.log):
        return Transition(moving, (timeout_now(moving, target),))
    return Transition(moving, (_catch_up(moving, target),))


def after_append_response(state: NodeState, msg: AppendResponse) -> Transition:
    """after_append_response sends TimeoutNow once the transfer target has caught up."""
    target = state.transfer_target
    if (
        state.role is not Role.LEADER
        or target is None
        or msg.src != target
        or msg.term != state.term
        or not msg.success
        or state.match_index[target] != last_index(state.log)
    ):
        return Transition(state)
    return Transition(state, (timeout_now(state, target),))
