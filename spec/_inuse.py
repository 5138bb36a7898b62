"""Which configuration a node uses: the latest in its log, committed or not (thesis 4.1).

Kept apart from the membership handlers because the quorum rules (commit, elections, reads)
need it and the handlers need those rules.
"""

from __future__ import annotations

from spec._config import Config
from spec._log import latest_config
from spec._state import NodeState

__all__ = ["committed_config", "config_in_use", "members_in_use", "voters_in_use"]


def _initial(state: NodeState) -> Config:
    if state.initial_config is not None:
        return state.initial_config
    return Config(tuple(sorted(state.voters)))


def config_in_use(state: NodeState) -> Config:
    """config_in_use is the latest configuration in the node's log, or its initial one."""
    _, found = latest_config(state.log)
    return _initial(state) if found is None else found


def committed_config(state: NodeState) -> Config:
    """committed_config is the latest configuration at or below the node's commit index."""
    _, found = latest_config(state.log, state.commit)
    return _initial(state) if found is None else found


def voters_in_use(state: NodeState) -> tuple[int, ...]:
    """voters_in_use is who votes and who counts for quorum right now (thesis 4.1).

    Without config entries or an initial configuration this is `state.voters` itself, so a
    cluster that never changes membership computes every quorum exactly as before.
    """
    _, found = latest_config(state.log)
    if found is not None:
        return found.voters
    if state.initial_config is not None:
        return state.initial_config.voters
    return state.voters


def members_in_use(state: NodeState) -> tuple[int, ...]:
    """members_in_use is who a leader replicates to: voters and learners in use."""
    _, found = latest_config(state.log)
    if found is not None:
        return found.members
    if state.initial_config is not None:
        return state.initial_config.members
    return state.voters
