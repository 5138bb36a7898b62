"""An in-process cluster whose nodes may differ in TLS, cluster id and tracing."""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from impl import KVStateMachine, Node, NodeConfig
from impl._security import TlsConfig
from tests._ports import free_ports, wait_for

__all__ = ["NodeSpec", "OpsCluster", "free_ports", "trace_events", "wait_for"]

CLUSTER_ID = "ops-test"

T = TypeVar("T")


@dataclass
class NodeSpec:
    """NodeSpec: how to start one member (None: the cluster's defaults)."""

    tls: TlsConfig | None = None
    cluster_id: str = CLUSTER_ID
    trace: bool = False
    election_timeout_ms: tuple[int, int] | None = None  # None: the cluster's


@dataclass
class OpsCluster:
    """OpsCluster runs n Nodes on 127.0.0.1 in the test's event loop."""

    root: Path
    n: int = 3
    election_timeout_ms: tuple[int, int] = (150, 300)
    heartbeat_ms: int = 30
    peers: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ports = free_ports(self.n)
        self.peers = {f"n{i + 1}": f"127.0.0.1:{p}" for i, p in enumerate(ports)}

    @property
    def addresses(self) -> list[str]:
        return list(self.peers.values())

    def config(self, node_id: str, spec: NodeSpec) -> NodeConfig:
        return NodeConfig(
            node_id=node_id,
            cluster_id=spec.cluster_id,
            listen=self.peers[node_id],
            peers=self.peers,
            data_dir=self.root / node_id,
            election_timeout_ms=spec.election_timeout_ms or self.election_timeout_ms,
            heartbeat_ms=self.heartbeat_ms,
            trace_dir=self.root / "trace" if spec.trace else None,
            tls=spec.tls,
        )

    async def start(self, node_id: str, spec: NodeSpec | None = None) -> Node:
        node = Node(self.config(node_id, spec or NodeSpec()), KVStateMachine())
        await node.start()
        self.nodes[node_id] = node
        return node

    async def stop_all(self) -> None:
        for node_id in list(self.nodes):
            with contextlib.suppress(Exception):
                await self.nodes.pop(node_id).stop()

    def leader(self) -> str | None:
        leaders = [(n.term, i) for i, n in self.nodes.items() if n.role.value == "leader"]
        return max(leaders)[1] if leaders else None

    async def wait_leader(self, among: list[str], timeout_s: float = 20.0) -> str:
        """wait_leader: one of ``among`` leads and the others of ``among`` follow it."""

        def settled() -> str | None:
            leader = self.leader()
            if leader is None or leader not in among:
                return None
            term = self.nodes[leader].term
            ok = all(
                self.nodes[i].term == term and self.nodes[i].leader_id == leader
                for i in among
                if i != leader
            )
            return leader if ok else None

        return await wait_for(settled, timeout_s, f"no settled leader among {among}")


def trace_events(path: Path) -> Iterator[dict[str, Any]]:
    """trace_events yields the events of one trace file (header skipped)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            obj = json.loads(line)
            if "i" in obj:
                yield obj
