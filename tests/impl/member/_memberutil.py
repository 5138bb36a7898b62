"""An in-process cluster on 127.0.0.1 whose membership changes: joiners, removals, restarts."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from impl import KVStateMachine, Node, NodeConfig, RaftClient, TlsConfig
from tests._ports import free_ports, wait_for

__all__ = ["CLUSTER_ID", "MemberCluster", "change_members", "wait_for"]

CLUSTER_ID = "member-test"


class MemberCluster:
    """MemberCluster: n initial voters n1..nN, plus spare ids/ports for joiners."""

    def __init__(
        self,
        root: Path,
        n: int = 3,
        spare: int = 1,
        *,
        snapshot_every: int = 10000,
        tls: Mapping[str, TlsConfig] | None = None,
    ):
        ports = free_ports(n + spare)
        self.all = {f"n{i + 1}": f"127.0.0.1:{port}" for i, port in enumerate(ports)}
        self.initial = dict(list(self.all.items())[:n])
        self.root = root
        self.snapshot_every = snapshot_every
        self.tls = dict(tls or {})
        self.nodes: dict[str, Node] = {}
        self.machines: dict[str, KVStateMachine] = {}

    def config(self, node_id: str, *, join: bool = False) -> NodeConfig:
        return NodeConfig(
            node_id=node_id,
            cluster_id=CLUSTER_ID,
            listen=self.all[node_id],
            peers={node_id: self.all[node_id]} if join else self.initial,
            data_dir=self.root / node_id,
            election_timeout_ms=(150, 300),
            heartbeat_ms=30,
            snapshot_every=self.snapshot_every,
            join=join,
            tls=self.tls.get(node_id),
        )

    async def start(self, node_id: str, *, join: bool = False) -> Node:
        machine = KVStateMachine()
        node = Node(self.config(node_id, join=join), machine)
        await node.start()
        self.nodes[node_id] = node
        self.machines[node_id] = machine
        return node

    async def start_initial(self) -> None:
        for node_id in self.initial:
            await self.start(node_id)

    async def stop(self, node_id: str) -> None:
        await self.nodes.pop(node_id).stop()

    async def stop_all(self) -> None:
        for node_id in list(self.nodes):
            with contextlib.suppress(Exception):
                await self.stop(node_id)

    def address(self, node_id: str) -> str:
        return self.all[node_id]

    def leader(self) -> str | None:
        leaders = [(n.term, i) for i, n in self.nodes.items() if n.role.value == "leader"]
        return max(leaders)[1] if leaders else None

    async def wait_leader(self, among: list[str], timeout_s: float = 15.0) -> str:
        """wait_leader: one of ``among`` leads and every other of ``among`` follows it."""

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

    async def wait_voters(self, node_id: str, voters: set[str], timeout_s: float = 15.0) -> None:
        """wait_voters: node_id uses a committed config whose voters are exactly ``voters``."""

        def done() -> bool | None:
            m = self.nodes[node_id].members()
            return True if set(m.voters) == voters and m.committed else None

        await wait_for(done, timeout_s, f"{node_id} never used voters {sorted(voters)}")

    async def wait_applied(self, node_id: str, index: int, timeout_s: float = 15.0) -> None:
        node = self.nodes[node_id]
        await wait_for(
            lambda: True if node.applied_index >= index else None,
            timeout_s,
            f"{node_id} never applied index {index}",
        )


async def change_members(
    addresses: list[str],
    call: Callable[[RaftClient], Awaitable[int]],
    tls: TlsConfig | None = None,
) -> int:
    """change_members runs one membership change through RaftClient.

    The core refuses a change until an entry of the leader's term has committed (the
    2015 fix); on an idle cluster the node appends a no-op of its term for it and answers
    ABORTED, which the client retries until its deadline.
    """
    async with RaftClient(addresses, deadline_s=15, tls=tls) as client:
        return await call(client)
