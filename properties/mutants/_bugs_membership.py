"""Seeded membership and leadership-transfer bugs (see `_bugs_election` for the rules).

Each function is a copy of one spec function with one realistic mistake, named in its
docstring together with the real-world bug it mirrors.
"""

from __future__ import annotations

from dataclasses import replace

from spec import (
    NodeState,
    Role,
    VoteRequest,
    config_in_use,
    is_up_to_date,
    last_index,
    latest_config,
)
from spec._election import _answer
from spec._transition import Transition

__all__ = [
    "change_blocked_without_own_term",
    "on_vote_request_transfer_skips_log",
    "quorum_match_counts_learners",
]


def change_blocked_without_own_term(state: NodeState) -> str | None:
    """The single-server change bug: a new leader changes membership before its term commits.

    Ongaro's 2015 raft-dev post: the original single-server algorithm let a leader append a
    configuration entry at once; an uncommitted change of an earlier leader can then coexist
    with it, and the two configurations' majorities need not overlap (thesis 4.1 erratum).
    """
    if state.role is not Role.LEADER:
        return "only the leader changes membership"
    if state.transfer_target is not None:
        return f"leadership transfer to node {state.transfer_target} in progress"
    pending, _ = latest_config(state.log)
    if pending > state.commit:
        return f"configuration entry {pending} is not committed yet"
    return None  # BUG: no "an entry of the leader's own term has committed" check


def quorum_match_counts_learners(state: NodeState) -> int:
    """Learners counted for commitment: acks from every member measured against the voters.

    A frequent slip when learners are bolted on (the progress tracker iterates all peers):
    the majority size comes from the voters, but any member's match index fills it, so an
    entry stored by the leader and a learner commits in a three-voter cluster (thesis 4.2.1).
    """
    config = config_in_use(state)
    matches = sorted(
        (last_index(state.log) if peer == state.id else state.match_index[peer])
        for peer in config.members  # BUG: learners are members, not voters
    )
    need = len(config.voters) // 2 + 1
    return matches[len(matches) - need]


def on_vote_request_transfer_skips_log(state: NodeState, msg: VoteRequest) -> Transition:
    """A transfer vote request bypasses every vote check, the election restriction included.

    Thesis 4.2.3 lets a transfer election ignore leader stickiness only; implementations that
    treat the flag as "force" (grant whatever the log) let a target whose log fell behind,
    e.g. on a delayed TimeoutNow, win against voters holding newer committed entries.
    """
    up_to_date = msg.transfer or is_up_to_date(  # BUG: the flag skips the log check
        msg.last_log_term, msg.last_log_index, state.log
    )
    if msg.prevote:
        granted = (
            msg.term >= state.term
            and up_to_date
            and not state.heard_from_leader
            and state.role is not Role.LEADER
        )
        return Transition(state, (_answer(state, msg, granted=granted),))
    if msg.term < state.term:
        return Transition(state, (_answer(state, msg, granted=False),))
    granted = state.voted_for in (None, msg.src) and up_to_date
    if granted:
        state = replace(
            state,
            voted_for=msg.src,
            role=Role.FOLLOWER,
            prevotes=frozenset(),
            rejections=frozenset(),
        )
    return Transition(state, (_answer(state, msg, granted=granted),))
