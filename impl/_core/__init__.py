"""impl._core: the sans-IO Raft core (no I/O, no clock, no randomness).

Drive ``RaftCore`` with discrete inputs and drain ``Ready`` batches; see
``RaftCore`` and ``Ready`` for the contract.
"""

from ._base import SnapshotSource
from ._errors import (
    CommittedConflict,
    ConflictingLeader,
    CoreError,
    MalformedMessage,
    MembershipChangeError,
    NotLeader,
    ProtocolError,
    TransferInProgress,
    UnknownSender,
    WrongCluster,
)
from ._membership import Membership, MembershipRefusal, decode_config, encode_config
from ._messages import (
    AppendRequest,
    AppendResponse,
    Entry,
    EntryKind,
    Envelope,
    HardState,
    Message,
    SnapshotMeta,
    SnapshotRequest,
    SnapshotResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from ._raft import RaftCore
from ._types import (
    CoreConfig,
    PeerProgress,
    ProgressState,
    ReadState,
    Ready,
    Role,
    StoredState,
    TimerCommand,
)

__all__ = [
    "AppendRequest",
    "AppendResponse",
    "CommittedConflict",
    "ConflictingLeader",
    "CoreConfig",
    "CoreError",
    "Entry",
    "EntryKind",
    "Envelope",
    "HardState",
    "MalformedMessage",
    "Membership",
    "MembershipChangeError",
    "MembershipRefusal",
    "Message",
    "NotLeader",
    "PeerProgress",
    "ProgressState",
    "ProtocolError",
    "RaftCore",
    "ReadState",
    "Ready",
    "Role",
    "SnapshotMeta",
    "SnapshotRequest",
    "SnapshotResponse",
    "SnapshotSource",
    "StoredState",
    "TimeoutNow",
    "TimerCommand",
    "TransferInProgress",
    "UnknownSender",
    "VoteRequest",
    "VoteResponse",
    "WrongCluster",
    "decode_config",
    "encode_config",
]
