"""Membership change, one server at a time (Raft thesis chapter 4, section 4.1).

A configuration change is a CONFIG entry in the log. Every server uses the latest
configuration in its log, committed or not; until it has one it uses its initial
configuration. Changing one voter at a time keeps every majority of the old configuration
overlapping every majority of the new one, so no two leaders can be elected by disjoint
quorums, provided changes do not overlap. Two rules keep them from overlapping:

* a leader appends no configuration entry while an earlier one in its log is uncommitted;
* a leader appends no configuration entry until an entry of its own term has committed
  (Ongaro's 2015 raft-dev fix for the single-server change bug: without it a new leader can
  append a change that conflicts with an uncommitted change of an earlier leader, and the two
  configurations' quorums need not overlap). The term-change sentinel makes this quick.

New servers join as learners, which receive the log but neither vote nor count; a learner is
promoted once it has caught up to the commit index (thesis 4.2.1). A leader that removes itself
keeps leading until that configuration commits and then steps down (thesis 4.2.2).
"""

from __future__ import annotations

from dataclasses import replace

from spec._commit import advance_commit
from spec._config import Config
from spec._inuse import config_in_use
from spec._log import Entry, EntryKind, last_index, latest_config, spliced, term_at
from spec._state import NodeState, Role
from spec._transition import DisabledError, Transition, step_down

__all__ = [
    "change_blocked",
    "on_add_learner",
    "on_append_sentinel",
    "on_promote_learner",
    "on_remove_server",
    "retire_if_removed",
]


def change_blocked(state: NodeState) -> str | None:
    """change_blocked says why the leader may not append a configuration entry now, or None.

    Only a leader changes membership, never during a leadership transfer, never while an
    earlier configuration entry in its log is uncommitted, and never before an entry of its
    own term has committed (the 2015 single-server change fix).
    """
    if state.role is not Role.LEADER:
        return "only the leader changes membership"
    if state.transfer_target is not None:
        return f"leadership transfer to node {state.transfer_target} in progress"
    pending, _ = latest_config(state.log)
    if pending > state.commit:
        return f"configuration entry {pending} is not committed yet"
    if term_at(state.log, state.commit) != state.term:
        return f"no entry of term {state.term} has committed yet"
    return None


def _require_change(state: NodeState) -> None:
    reason = change_blocked(state)
    if reason is not None:
        raise DisabledError(reason)


def _known(state: NodeState, node: int) -> None:
    if node not in state.voters:
        raise DisabledError(f"node {node} is not in the cluster's universe")


def _append_config(state: NodeState, config: Config) -> Transition:
    """_append_config appends the change; a single-voter configuration commits it at once."""
    log = spliced(state.log, len(state.log), (Entry(state.term, EntryKind.CONFIG, b"", config),))
    match = list(state.match_index)
    match[state.id] = last_index(log)
    leader = replace(state, log=log, match_index=tuple(match))
    return Transition(retire_if_removed(advance_commit(leader)))


def on_add_learner(state: NodeState, node: int) -> Transition:
    """on_add_learner appends a configuration with `node` as a learner (thesis 4.2.1)."""
    _require_change(state)
    _known(state, node)
    config = config_in_use(state)
    if node in config.members:
        raise DisabledError(f"node {node} is already a member")
    return _append_config(state, config.with_learner(node))


def on_append_sentinel(state: NodeState) -> Transition:
    """on_append_sentinel appends the term-change sentinel a membership change waits for.

    The own-term rule above blocks every change until an entry of the leader's term commits;
    a leader elected with a fully committed log has none. Appending the sentinel on request
    (etcd appends an empty entry at every election instead) lets the change go ahead once it
    commits, without waiting for a client write.
    """
    if state.role is not Role.LEADER:
        raise DisabledError("only the leader appends a sentinel")
    if term_at(state.log, last_index(state.log)) == state.term:
        raise DisabledError(f"the log already holds an entry of term {state.term}")
    log = spliced(state.log, len(state.log), (Entry(state.term, EntryKind.NOOP),))
    match = list(state.match_index)
    match[state.id] = last_index(log)
    return Transition(advance_commit(replace(state, log=log, match_index=tuple(match))))


def on_promote_learner(state: NodeState, node: int) -> Transition:
    """on_promote_learner makes learner `node` a voter, once it has caught up.

    Allowed only when the learner's match index has reached the leader's commit index, so a
    new voter does not stall commitment while it fetches the log (thesis 4.2.1).
    """
    _require_change(state)
    _known(state, node)
    config = config_in_use(state)
    if node not in config.learners:
        raise DisabledError(f"node {node} is not a learner")
    if state.match_index[node] < state.commit:
        raise DisabledError(
            f"learner {node} has matched {state.match_index[node]}, behind commit {state.commit}"
        )
    return _append_config(state, config.promoted(node))


def on_remove_server(state: NodeState, node: int) -> Transition:
    """on_remove_server removes a voter or learner; the leader may remove itself (4.2.2)."""
    _require_change(state)
    _known(state, node)
    config = config_in_use(state)
    if node not in config.members:
        raise DisabledError(f"node {node} is not a member")
    if config.voters == (node,):
        raise DisabledError(f"node {node} is the last voter")
    return _append_config(state, config.without(node))


def retire_if_removed(state: NodeState) -> NodeState:
    """retire_if_removed: a leader steps down once a configuration without it commits (4.2.2).

    Until then it keeps replicating (it manages a cluster it is not part of and does not count
    itself in majorities); afterwards it is a follower that, outside the configuration, never
    campaigns.
    """
    if state.role is not Role.LEADER:
        return state
    index, config = latest_config(state.log)
    if config is None or index > state.commit or state.id in config.voters:
        return state
    return step_down(state, state.term)
