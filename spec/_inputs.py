"""Inputs to a single node: every event that can change its state, as an explicit value.

Timers and randomness live outside the spec; a timer firing is just an input. The cluster model
decides when inputs happen, which is exactly the non-determinism the checkers explore.
"""

from __future__ import annotations

from dataclasses import dataclass

from spec._messages import Message
from spec._state import Durable

__all__ = [
    "AddLearner",
    "AppendSentinel",
    "CheckQuorum",
    "ClientRequest",
    "ElectionTimeout",
    "HeartbeatDue",
    "Input",
    "PromoteLearner",
    "ReadRequest",
    "Receive",
    "RemoveServer",
    "Restart",
    "SendAppend",
    "TransferLeadership",
]


@dataclass(frozen=True, slots=True)
class ElectionTimeout:
    """ElectionTimeout: the (versioned) election timer fired and nothing reset it since."""


@dataclass(frozen=True, slots=True)
class HeartbeatDue:
    """HeartbeatDue: a leader's heartbeat interval elapsed; send an empty append to every peer."""


@dataclass(frozen=True, slots=True)
class CheckQuorum:
    """CheckQuorum: an election timeout passed; a leader checks it heard from a quorum.

    On a non-leader it expires the "heard from a live leader recently" lease that makes it
    refuse prevotes (leader stickiness).
    """


@dataclass(frozen=True, slots=True)
class Receive:
    """Receive: a message arrived from the network."""

    message: Message


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """ClientRequest: a client proposes a command; only a leader accepts it."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """ReadRequest: a client asks for a linearizable read, named by `read_id`."""

    read_id: int


@dataclass(frozen=True, slots=True)
class SendAppend:
    """SendAppend: the leader decides to replicate to `peer`.

    `prev_index` (default: the peer's next index minus one) and `count` (default: everything
    after it) choose the range, so batching, pipelining and heartbeats are all spec steps.
    """

    peer: int
    prev_index: int | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class Restart:
    """Restart: the process crashed and came back with what its storage holds.

    The durable state is part of the input because the node's memory is exactly what a crash
    loses: the environment (the cluster model, or a trace) says what reached the disk.
    """

    durable: Durable


@dataclass(frozen=True, slots=True)
class AddLearner:
    """AddLearner: an operator asks the leader to add `node` as a non-voting learner.

    A leader-only request (thesis 4.2.1), refused while an earlier configuration entry is
    uncommitted, before an entry of the leader's term has committed, or during a transfer.
    """

    node: int


@dataclass(frozen=True, slots=True)
class PromoteLearner:
    """PromoteLearner: make learner `node` a voter (thesis 4.1, one voter at a time).

    Allowed only once the learner's match index has caught up to the leader's commit index
    (thesis 4.2.1), and under the same conditions as every configuration change.
    """

    node: int


@dataclass(frozen=True, slots=True)
class RemoveServer:
    """RemoveServer: remove voter or learner `node`, possibly the leader itself (thesis 4.2.2)."""

    node: int


@dataclass(frozen=True, slots=True)
class AppendSentinel:
    """AppendSentinel: the leader appends a term-change sentinel because a change waits for one.

    A membership change waits until an entry of the leader's own term has committed (the 2015
    fix). A leader elected with a fully committed log appends no sentinel (the seed appends one
    only when its commit index is behind its log), so on an idle cluster the change would wait
    for a client write; this input lets the operator's request supply that entry. Refused
    unless the node is the leader and its log holds no entry of its term yet.
    """


@dataclass(frozen=True, slots=True)
class TransferLeadership:
    """TransferLeadership: the leader hands leadership to voter `target` (thesis 3.10).

    While transferring the leader refuses client requests; it catches the target up with
    ordinary appends and then sends TimeoutNow. Its next ElectionTimeout or CheckQuorum input
    ends the transfer (an election timeout has passed without the target taking over).
    """

    target: int


Input = (
    ElectionTimeout
    | HeartbeatDue
    | CheckQuorum
    | Receive
    | ClientRequest
    | ReadRequest
    | SendAppend
    | Restart
    | AddLearner
    | PromoteLearner
    | RemoveServer
    | AppendSentinel
    | TransferLeadership
)
