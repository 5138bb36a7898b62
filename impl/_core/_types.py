"""Configuration, roles and the ``Ready`` output batch of the Raft core."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from ._messages import Entry, Envelope, HardState, SnapshotMeta

__all__ = [
    "CoreConfig",
    "PeerProgress",
    "ProgressState",
    "ReadState",
    "Ready",
    "Role",
    "StoredState",
    "TimerCommand",
]


class Role(enum.Enum):
    """Role is a node's place in the election protocol (section 5.2, plus thesis 9.6 prevote)."""

    FOLLOWER = "follower"
    PRECANDIDATE = "precandidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class TimerCommand(enum.Enum):
    """TimerCommand tells the driver what to do with its (versioned) election timer."""

    RESET = "reset"
    STOP = "stop"


class ProgressState(enum.Enum):
    """ProgressState is how the leader currently replicates to one follower.

    PROBE: one append at a time until the follower's match point is found.
    REPLICATE: pipelined appends, bounded by ``max_inflight_appends``.
    SNAPSHOT: the follower is behind the compacted log and a snapshot is on its way.
    """

    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


@dataclass(frozen=True, slots=True)
class PeerProgress:
    """PeerProgress is a read-only view of the leader's replication state for one follower."""

    match: int
    next: int
    state: ProgressState
    inflight: int
    recent_active: bool


@dataclass(frozen=True, slots=True)
class ReadState:
    """ReadState releases a linearizable read: answer it once applied index >= ``read_index``."""

    request_id: int
    read_index: int


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """CoreConfig fixes a node's identity, its cluster, its initial configuration and limits.

    ``voters`` (+ ``learners``) is the *initial* configuration, used only until the log or a
    snapshot holds one (thesis 4.1); ``addresses`` maps ids to HOST:PORT for it (missing ids
    get ""). ``join=True`` starts a node that knows no configuration yet (``voters`` must be
    empty or just itself and is ignored): it never campaigns and learns the configuration
    from the leader that adds it (thesis 4.2.1).
    """

    node_id: str
    voters: tuple[str, ...]
    cluster_id: str
    max_entries_per_append: int = 512
    max_bytes_per_append: int = 1 << 20
    max_inflight_appends: int = 8
    check_quorum: bool = True
    prevote: bool = True
    learners: tuple[str, ...] = ()
    addresses: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False, compare=False
    )
    join: bool = False

    def __post_init__(self) -> None:
        if not self.node_id:
            raise ValueError("CoreConfig.node_id must not be empty")
        if self.join:
            if self.voters not in ((), (self.node_id,)) or self.learners:
                raise ValueError("CoreConfig.join: the node knows no configuration; give no peers")
            object.__setattr__(self, "voters", ())
        elif self.node_id not in self.voters and self.node_id not in self.learners:
            raise ValueError(
                f"CoreConfig.node_id {self.node_id!r} is not one of the voters or learners"
            )
        elif not self.voters:
            raise ValueError("CoreConfig.voters must not be empty (use join=True)")
        if len(set(self.voters)) != len(self.voters):
            raise ValueError(f"CoreConfig.voters has duplicates: {self.voters!r}")
        if len(set(self.learners)) != len(self.learners) or set(self.learners) & set(self.voters):
            raise ValueError(f"CoreConfig.learners has duplicates or voters: {self.learners!r}")
        if self.max_entries_per_append < 1 or self.max_inflight_appends < 1:
            raise ValueError("CoreConfig flow-control limits must be at least 1")
        if self.max_bytes_per_append < 1:
            raise ValueError("CoreConfig.max_bytes_per_append must be at least 1")


@dataclass(frozen=True, slots=True)
class StoredState:
    """StoredState is what storage loaded at start: hard state, snapshot base, and the log.

    ``entries`` must be contiguous and start right after ``snapshot_meta.index``
    (or at 1 without a snapshot).
    """

    hard_state: HardState
    snapshot_meta: SnapshotMeta | None
    entries: Sequence[Entry]

    @staticmethod
    def empty() -> StoredState:
        """empty is the state of a node that has never run."""
        return StoredState(HardState(0, None, 0), None, ())


@dataclass(frozen=True, slots=True)
class Ready:
    """Ready is one batch of work for the driver, in the order it must be done.

    1. persist ``hard_state`` (if not None), ``entries`` (truncating the stored
       suffix from ``entries[0].index`` first) and ``snapshot`` — one durable write;
    2. then send ``messages`` (a leader may send appends while its own write
       is in flight, Raft thesis 10.2.1, and report durability via ``persisted``);
    3. apply ``committed`` in order; answer ``reads`` once applied >= read_index;
    4. obey ``timer``; call ``RaftCore.advance(ready)``.

    ``aborted_reads`` lists read request ids that will never be released
    (the node stopped being leader); fail them back to the client.
    """

    hard_state: HardState | None = None
    entries: tuple[Entry, ...] = ()
    snapshot: tuple[SnapshotMeta, bytes] | None = None
    messages: tuple[Envelope, ...] = ()
    committed: tuple[Entry, ...] = ()
    reads: tuple[ReadState, ...] = ()
    timer: TimerCommand | None = None
    role_changed: bool = False
    aborted_reads: tuple[int, ...] = field(default=())

    def is_empty(self) -> bool:
        """is_empty is True when the batch carries no work at all."""
        return (
            self.hard_state is None
            and not self.entries
            and self.snapshot is None
            and not self.messages
            and not self.committed
            and not self.reads
            and self.timer is None
            and not self.role_changed
            and not self.aborted_reads
        )
