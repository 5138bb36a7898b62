"""The leader's commit rule (sections 5.3 and 5.4.2, Figure 8)."""

from __future__ import annotations

from dataclasses import replace

from spec._inuse import voters_in_use
from spec._log import last_index, term_at
from spec._quorum import quorum_size
from spec._state import NodeState, Role

__all__ = ["advance_commit", "quorum_match"]


def quorum_match(state: NodeState) -> int:
    """quorum_match is the highest index that a quorum of voters has replicated.

    The leader's own entry is its last index: in the spec a leader's appends are durable in the
    step that makes them (the persist output), so it always matches its whole log. Only the
    voters of the configuration in use count (thesis 4.1): never a learner, and not the leader
    itself once it has removed itself (thesis 4.2.2).
    """
    matches = sorted(
        (last_index(state.log) if peer == state.id else state.match_index[peer])
        for peer in voters_in_use(state)
    )
    return matches[len(matches) - quorum_size(len(matches))]


def advance_commit(state: NodeState) -> NodeState:
    """advance_commit moves a leader's commit index to the highest safe index.

    An index is committed once a quorum stores it *and* its entry is from the leader's current
    term (section 5.4.2): counting replicas of an older term's entry is the Figure 8 bug.
    Earlier entries commit indirectly with it. The commit index never moves backwards.
    """
    if state.role is not Role.LEADER:
        return state
    candidate = quorum_match(state)
    if candidate <= state.commit or term_at(state.log, candidate) != state.term:
        return state
    return replace(state, commit=candidate)
