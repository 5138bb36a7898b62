"""Node state: what a Raft server remembers, split into durable and volatile parts.

`Durable` is what survives a crash (Figure 2's persistent state, plus the commit index, which
etcd's HardState also keeps so a restarted node does not re-learn it). Everything else in
`NodeState` is volatile and lost on restart. Both are frozen: a step returns a new state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from spec._config import Config
from spec._log import Log

__all__ = ["Durable", "NodeState", "PendingRead", "Role", "initial_node"]


class Role(enum.Enum):
    """Role is the server's part in the protocol; PRECANDIDATE is the prevote phase (thesis 9.6)."""

    FOLLOWER = "follower"
    PRECANDIDATE = "precandidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class Durable:
    """Durable is the state that must reach stable storage before dependent messages leave."""

    term: int = 0
    voted_for: int | None = None
    log: Log = ()
    commit: int = 0


@dataclass(frozen=True, slots=True, order=True)
class PendingRead:
    """PendingRead is a linearizable read waiting for its leadership confirmation.

    `read_index` is the commit index when it arrived; `ctx` is the read-confirmation sequence
    number assigned to it, so only heartbeats sent after it arrived can confirm it.
    """

    read_id: int
    read_index: int
    ctx: int


@dataclass(frozen=True, slots=True)
class NodeState:
    """NodeState is one server: identity, durable state and volatile state.

    Per-peer arrays (`next_index`, `match_index`, `acked_ctx`) are indexed by node id, so ids
    are 0..n-1 and `voters` lists them; entries for the node itself are unused except
    `match_index[self]`, which the leader keeps at its own last index.

    `voters` is the universe of node ids the cluster model knows. Which of them vote is the
    configuration in use (`spec.config_in_use`): the latest CONFIG entry in the log, else
    `initial_config`, else (the default) every id in `voters`, so a cluster without
    membership changes behaves exactly as before. `transfer_target` is set on a leader while
    it hands leadership to that voter (thesis 3.10).
    """

    id: int
    voters: tuple[int, ...]
    # durable
    term: int = 0
    voted_for: int | None = None
    log: Log = ()
    commit: int = 0
    # volatile
    role: Role = Role.FOLLOWER
    leader: int | None = None
    prevotes: frozenset[int] = frozenset()
    votes: frozenset[int] = frozenset()
    rejections: frozenset[int] = frozenset()
    next_index: tuple[int, ...] = ()
    match_index: tuple[int, ...] = ()
    # check-quorum and leader stickiness
    heard_from_leader: bool = False
    recent_active: frozenset[int] = frozenset()
    # ReadIndex (thesis 6.4, the seed's verify authority)
    sentinel: int = 0
    read_seq: int = 0
    acked_ctx: tuple[int, ...] = ()
    pending_reads: tuple[PendingRead, ...] = ()
    # membership (thesis 4.1) and leadership transfer (thesis 3.10)
    initial_config: Config | None = None
    transfer_target: int | None = None

    def durable(self) -> Durable:
        """durable projects the persistent part of this state."""
        return Durable(self.term, self.voted_for, self.log, self.commit)


def initial_node(
    node_id: int, voters: tuple[int, ...], durable: Durable | None = None
) -> NodeState:
    """initial_node is a server booting (or rebooting) from `durable` as a follower."""
    state = NodeState(id=node_id, voters=voters)
    if durable is None:
        return state
    return replace(
        state,
        term=durable.term,
        voted_for=durable.voted_for,
        log=durable.log,
        commit=durable.commit,
    )
