"""raftwright implementation: asyncio + grpc.aio Raft node.

Public API:

- ``Node(config, state_machine)``: one Raft member (``start``, ``propose``,
  ``read``, ``status``, ``stop``), configured by ``NodeConfig``.
- ``StateMachine``: the protocol your replicated application implements;
  ``KVStateMachine`` is a ready-made key-value store with exactly-once writes.
- ``RaftClient`` / ``KVClient``: asyncio clients that find the leader.
- ``TlsConfig``: certificate paths for TLS (cert + key) or mutual TLS (+ ca), for
  ``NodeConfig.tls`` and the clients' ``tls=``.
- Errors: ``ConfigError``, ``NotLeaderError``, ``ProposalLostError``,
  ``NodeStoppedError``, ``NoLeaderError``, ``ClientError``.
"""

from impl._client import ClientError, KVClient, NodeStatusReport, NoLeaderError, RaftClient
from impl._config import ConfigError, NodeConfig
from impl._kv import KVStateMachine
from impl._node import Node, NodeStatus
from impl._node_errors import NodeError, NodeStoppedError, NotLeaderError, ProposalLostError
from impl._security import TlsConfig
from impl._statemachine import StateMachine

__all__ = [
    "ClientError",
    "ConfigError",
    "KVClient",
    "KVStateMachine",
    "NoLeaderError",
    "Node",
    "NodeConfig",
    "NodeError",
    "NodeStatus",
    "NodeStatusReport",
    "NodeStoppedError",
    "NotLeaderError",
    "ProposalLostError",
    "RaftClient",
    "StateMachine",
    "TlsConfig",
]
