"""raftwright implementation: asyncio + grpc.aio Raft node.

Public API:

- ``Node(config, state_machine)``: one Raft member (``start``, ``propose``,
  ``read``, ``status``, ``stop``), configured by ``NodeConfig``.
- ``StateMachine``: the protocol your replicated application implements;
  ``KVStateMachine`` is a ready-made key-value store with exactly-once writes.
- ``RaftClient`` / ``KVClient``: asyncio clients that find the leader.
- ``TlsConfig``: certificate paths for TLS (cert + key) or mutual TLS (+ ca), for
  ``NodeConfig.tls`` and the clients' ``tls=``.
- Membership (Raft thesis 4.1, 4.2): ``Node.add_member`` / ``remove_member`` / ``members``
  (a ``Members`` of ``MemberInfo``), ``RaftClient.add_member`` / ``remove_member`` /
  ``list_members``; a node started with ``NodeConfig(join=True)`` waits to be added.
- Errors: ``ConfigError``, ``NotLeaderError``, ``ProposalLostError``,
  ``TransferInProgressError``, ``NodeStoppedError``, ``NoLeaderError``, ``ClientError``;
  membership refusals are ``MembershipError`` (``MemberExistsError``, ``NotAMemberError``,
  ``MembershipBlockedError``).
"""

from impl._client import ClientError, KVClient, NodeStatusReport, NoLeaderError, RaftClient
from impl._config import ConfigError, NodeConfig
from impl._kv import KVStateMachine
from impl._node import Node, NodeStatus
from impl._node_errors import (
    MemberExistsError,
    MembershipBlockedError,
    MembershipError,
    NodeError,
    NodeStoppedError,
    NotAMemberError,
    NotLeaderError,
    ProposalLostError,
    TransferInProgressError,
)
from impl._node_members import MemberInfo, Members
from impl._security import TlsConfig
from impl._statemachine import StateMachine

__all__ = [
    "ClientError",
    "ConfigError",
    "KVClient",
    "KVStateMachine",
    "MemberExistsError",
    "MemberInfo",
    "Members",
    "MembershipBlockedError",
    "MembershipError",
    "NoLeaderError",
    "Node",
    "NodeConfig",
    "NodeError",
    "NodeStatus",
    "NodeStatusReport",
    "NodeStoppedError",
    "NotAMemberError",
    "NotLeaderError",
    "ProposalLostError",
    "RaftClient",
    "StateMachine",
    "TlsConfig",
    "TransferInProgressError",
]
