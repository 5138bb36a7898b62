"""Log entries, persistent state records and peer messages of the Raft core.

Every record is a frozen, slotted dataclass: the core hands them to the driver
and receives them from the network, so they must never change underneath
either side (h11 style "events"). The field names mirror the protobuf
messages in protos/raft.proto one for one, so conversion is mechanical.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._membership import Membership

__all__ = [
    "AppendRequest",
    "AppendResponse",
    "Entry",
    "EntryKind",
    "Envelope",
    "HardState",
    "Message",
    "SnapshotMeta",
    "SnapshotRequest",
    "SnapshotResponse",
    "TimeoutNow",
    "VoteRequest",
    "VoteResponse",
]


class EntryKind(enum.IntEnum):
    """EntryKind says what a log entry carries.

    NORMAL entries carry a state-machine command. NOOP is the leader's
    term-change "sentinel" entry (Raft thesis 6.4: a new leader commits an
    entry of its own term before it answers reads). CONFIG is reserved for
    membership changes and is never produced yet.
    """

    NORMAL = 0
    NOOP = 1
    CONFIG = 2


@dataclass(frozen=True, slots=True)
class Entry:
    """Entry is one log entry: its position, the term that created it, and its payload."""

    index: int
    term: int
    kind: EntryKind
    data: bytes


@dataclass(frozen=True, slots=True)
class HardState:
    """HardState is the state that must be durable before messages that depend on it leave.

    Reference: Raft paper Figure 2 ("Persistent state on all servers"); commit
    is persisted too so that a restart re-applies exactly the committed prefix.
    """

    term: int
    vote: str | None
    commit: int


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """SnapshotMeta names the last log entry a snapshot covers and the configuration there.

    ``config`` is the configuration in use at ``index`` (voters, learners, addresses; its
    ``index`` is that of the CONFIG entry it came from): a node that restores or installs the
    snapshot uses it until a later CONFIG entry arrives (thesis 4.1, section 7). None means
    a snapshot written before membership changes existed: ``voters`` is then the whole
    configuration and addresses come from the node's own settings.
    ``RaftCore.snapshot_meta(index)`` builds a complete one.
    """

    index: int
    term: int
    voters: tuple[str, ...]
    config: Membership | None = None


@dataclass(frozen=True, slots=True)
class VoteRequest:
    """VoteRequest asks for a (pre)vote.

    For a prevote, ``term`` is the asker's *current* term (the seed's
    behaviour); the election term will be ``term + 1``. Reference: section
    5.2 and Raft thesis 9.6 (Preventing disruptions when a server rejoins).
    """

    cluster_id: str
    sender: str
    term: int
    prevote: bool
    last_log_index: int
    last_log_term: int


@dataclass(frozen=True, slots=True)
class VoteResponse:
    """VoteResponse answers a VoteRequest.

    ``term`` is the responder's current term; ``request_term`` echoes the term
    the request carried, so the asker counts a vote only for the election it
    is running (etcd#8243).
    """

    cluster_id: str
    sender: str
    term: int
    prevote: bool
    granted: bool
    request_term: int


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """AppendRequest replicates a batch of entries, or is a heartbeat when ``entries`` is empty.

    ``read_ctx`` is the leader's read-confirmation sequence number (0 = none);
    the follower echoes it so the leader can confirm its authority for
    ReadIndex (Raft thesis 6.4).
    """

    cluster_id: str
    sender: str
    term: int
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    leader_commit: int
    read_ctx: int


@dataclass(frozen=True, slots=True)
class AppendResponse:
    """AppendResponse answers an AppendRequest.

    On success ``match_index`` is the index of the last entry the follower now
    knows matches the leader (prev_log_index + len(entries)). On rejection
    ``match_index`` echoes the rejected prev_log_index, and
    (``reject_hint_index``, ``reject_hint_term``) name the follower's last
    entry that could still match: its last index if its log is shorter, else
    the last index whose term is not above the rejected prev_log_term. The
    leader uses the hint to skip a whole term per round trip (section 5.3,
    "the follower can include the term of the conflicting entry").
    """

    cluster_id: str
    sender: str
    term: int
    success: bool
    match_index: int
    reject_hint_index: int
    reject_hint_term: int
    read_ctx: int


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """SnapshotRequest installs a leader snapshot on a follower behind the compacted log.

    Reference: section 7 (InstallSnapshot RPC); sent whole, chunking is the
    transport's business.
    """

    cluster_id: str
    sender: str
    term: int
    meta: SnapshotMeta
    data: bytes


@dataclass(frozen=True, slots=True)
class SnapshotResponse:
    """SnapshotResponse tells the leader the follower's log now matches up to ``match_index``."""

    cluster_id: str
    sender: str
    term: int
    match_index: int


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """TimeoutNow tells a caught-up follower to start an election at once (thesis 3.10)."""

    cluster_id: str
    sender: str
    term: int


Message = (
    VoteRequest
    | VoteResponse
    | AppendRequest
    | AppendResponse
    | SnapshotRequest
    | SnapshotResponse
    | TimeoutNow
)
"""Message is any peer-to-peer Raft message."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """Envelope is an outbound message and the id of the peer it goes to."""

    to: str
    message: Message
