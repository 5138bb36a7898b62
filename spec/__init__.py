"""raftwright's reference spec: a pure, immutable, executable model of Raft.

No I/O, clock or randomness: timers and choices are inputs, and `step(state, input)` returns
the next state with the persist -> send -> apply outputs. `ClusterState` and `cluster_step`
compose nodes with an adversarial network; that is the state space the checkers explore.
"""

from spec._cluster import (
    Action,
    ClusterResult,
    ClusterState,
    Crash,
    Deliver,
    Drop,
    Duplicate,
    Heal,
    NodeInput,
    Partition,
    ReadRecord,
    Recover,
    cluster_step,
    initial_cluster,
)
from spec._commit import quorum_match
from spec._config import Config
from spec._inputs import (
    AddLearner,
    AppendSentinel,
    CheckQuorum,
    ClientRequest,
    ElectionTimeout,
    HeartbeatDue,
    Input,
    PromoteLearner,
    ReadRequest,
    Receive,
    RemoveServer,
    Restart,
    SendAppend,
    TransferLeadership,
)
from spec._inuse import committed_config, config_in_use, members_in_use, voters_in_use
from spec._log import (
    Entry,
    EntryKind,
    Log,
    is_up_to_date,
    last_index,
    last_term,
    latest_config,
    term_at,
)
from spec._membership import change_blocked
from spec._messages import AppendRequest, AppendResponse, Message, VoteRequest, VoteResponse
from spec._outputs import ReadAnswer, StepResult
from spec._quorum import is_quorum, quorum_size
from spec._reads import confirmed_ctx
from spec._state import Durable, NodeState, PendingRead, Role, initial_node
from spec._step import step

__all__ = [
    "Action",
    "AddLearner",
    "AppendRequest",
    "AppendResponse",
    "AppendSentinel",
    "CheckQuorum",
    "ClientRequest",
    "ClusterResult",
    "ClusterState",
    "Config",
    "Crash",
    "Deliver",
    "Drop",
    "Duplicate",
    "Durable",
    "ElectionTimeout",
    "Entry",
    "EntryKind",
    "Heal",
    "HeartbeatDue",
    "Input",
    "Log",
    "Message",
    "NodeInput",
    "NodeState",
    "Partition",
    "PendingRead",
    "PromoteLearner",
    "ReadAnswer",
    "ReadRecord",
    "ReadRequest",
    "Receive",
    "Recover",
    "RemoveServer",
    "Restart",
    "Role",
    "SendAppend",
    "StepResult",
    "TransferLeadership",
    "VoteRequest",
    "VoteResponse",
    "change_blocked",
    "cluster_step",
    "committed_config",
    "config_in_use",
    "confirmed_ctx",
    "initial_cluster",
    "initial_node",
    "is_quorum",
    "is_up_to_date",
    "last_index",
    "last_term",
    "latest_config",
    "members_in_use",
    "quorum_match",
    "quorum_size",
    "step",
    "term_at",
    "voters_in_use",
]
