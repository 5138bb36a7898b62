"""Helpers for the loopback tests: free ports and an in-process cluster of Nodes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from impl import KVStateMachine, Node, NodeConfig
from tests._ports import consecutive_free_ports, free_ports, wait_for

__all__ = [
    "CLUSTER_ID",
    "LocalCluster",
    "consecutive_free_ports",
    "free_ports",
    "run_cluster",
    "wait_for",
]

CLUSTER_ID = "net-test"

T = TypeVar("T")


class LocalCluster:
    """LocalCluster runs n Node objects in this event loop on 127.0.0.1."""

    def __init__(
        self,
        root: Path,
        n: int = 3,
        *,
        snapshot_every: int = 10000,
        election_timeout_ms: tuple[int, int] = (150, 300),
    ) -> None:
        ports = free_ports(n)
        self.peers = {f"n{i + 1}": f"127.0.0.1:{port}" for i, port in enumerate(ports)}
        self.root = root
        self.snapshot_every = snapshot_every
        self.election_timeout_ms = election_timeout_ms
        self.nodes: dict[str, Node] = {}
        self.machines: dict[str, KVStateMachine] = {}

    @property
    def addresses(self) -> list[str]:
        return list(self.peers.values())

    def config(self, node_id: str) -> NodeConfig:
        return NodeConfig(
            node_id=node_id,
            cluster_id=CLUSTER_ID,
            listen=self.peers[node_id],
            peers=self.peers,
            data_dir=self.root / node_id,
            election_timeout_ms=self.election_timeout_ms,
            heartbeat_ms=30,
            snapshot_every=self.snapshot_every,
        )

    async def start(self, node_id: str) -> Node:
        machine = KVStateMachine()
        node = Node(self.config(node_id), machine)
        await node.start()
        self.nodes[node_id] = node
        self.machines[node_id] = machine
        return node

    async def start_all(self) -> None:
        for node_id in self.peers:
            await self.start(node_id)

    async def stop(self, node_id: str) -> None:
        node = self.nodes.pop(node_id)
        await node.stop()

    async def stop_all(self) -> None:
        for node_id in list(self.nodes):
            with contextlib.suppress(Exception):
                await self.stop(node_id)

    def leader(self) -> str | None:
        """leader is the running node that leads the highest term, if any."""
        leaders = [
            (n.term, node_id) for node_id, n in self.nodes.items() if n.role.value == "leader"
        ]
        return max(leaders)[1] if leaders else None

    async def wait_leader(self, timeout_s: float = 15.0) -> str:
        """wait_leader waits until exactly one running node leads and the rest follow it."""

        def settled() -> str | None:
            leader = self.leader()
            if leader is None:
                return None
            term = self.nodes[leader].term
            others_follow = sum(
                1
                for node_id, n in self.nodes.items()
                if node_id != leader and n.term == term and n.leader_id == leader
            )
            return leader if others_follow == len(self.nodes) - 1 else None

        return await wait_for(settled, timeout_s, "no settled leader")


def run_cluster(root: Path, body: Callable[[LocalCluster], Awaitable[None]], **kw: Any) -> None:
    """run_cluster starts a LocalCluster(root, **kw), runs ``body`` on it, and stops it."""

    async def main() -> None:
        cluster = LocalCluster(root, **kw)
        try:
            await cluster.start_all()
            await body(cluster)
        finally:
            await cluster.stop_all()

    asyncio.run(main())
