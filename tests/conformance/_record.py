"""Recording real traces: an in-process cluster of impl Nodes on 127.0.0.1 with tracing on.

Used by the tests (fresh traces every run) and, through ``python -m
tests.conformance._record DIR``, to refresh the committed corpus in tests/traces/.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from impl import (
    KVStateMachine,
    MembershipBlockedError,
    Node,
    NodeConfig,
    NotLeaderError,
    ProposalLostError,
    TransferInProgressError,
)
from impl._kv import encode_get, encode_put

CLUSTER_ID = "conformance"


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class TracedCluster:
    """TracedCluster runs n traced Nodes in this event loop; traces go to ``trace_dir``."""

    def __init__(
        self,
        root: Path,
        trace_dir: Path | None,
        n: int = 3,
        *,
        snapshot_every: int = 10000,
        spare: int = 0,
    ) -> None:
        ports = _free_ports(n + spare)
        everyone = {f"n{i + 1}": f"127.0.0.1:{port}" for i, port in enumerate(ports)}
        self.peers = dict(list(everyone.items())[:n])
        self.spare = dict(list(everyone.items())[n:])  # ids and addresses for joiners
        self.root = root
        self.trace_dir = trace_dir
        self.nodes: dict[str, Node] = {}
        self.snapshot_every = snapshot_every
        self._sequence = 0

    def address(self, node_id: str) -> str:
        return self.peers[node_id] if node_id in self.peers else self.spare[node_id]

    def config(self, node_id: str, *, join: bool = False) -> NodeConfig:
        return NodeConfig(
            node_id=node_id,
            cluster_id=CLUSTER_ID,
            listen=self.address(node_id),
            peers={node_id: self.address(node_id)} if join else self.peers,
            join=join,
            data_dir=self.root / node_id,
            election_timeout_ms=(150, 300),
            heartbeat_ms=30,
            trace_dir=self.trace_dir,
            snapshot_every=self.snapshot_every,
        )

    async def start(self, node_id: str, *, join: bool = False) -> Node:
        node = Node(self.config(node_id, join=join), KVStateMachine())
        await node.start()
        self.nodes[node_id] = node
        return node

    async def start_all(self) -> None:
        for node_id in self.peers:
            await self.start(node_id)

    async def stop(self, node_id: str) -> None:
        await self.nodes.pop(node_id).stop()

    async def stop_all(self) -> None:
        for node_id in list(self.nodes):
            with contextlib.suppress(Exception):
                await self.stop(node_id)

    async def wait_leader(self, timeout_s: float = 15.0) -> str:
        """wait_leader waits until one running node leads and every other follows it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            leaders = [(n.term, i) for i, n in self.nodes.items() if n.role.value == "leader"]
            if leaders:
                term, leader = max(leaders)
                if all(
                    n.term == term and n.leader_id == leader
                    for i, n in self.nodes.items()
                    if i != leader and n.members().voters  # a joiner not yet added: no config
                ):
                    return leader
            await asyncio.sleep(0.02)
        raise AssertionError(f"no settled leader within {timeout_s}s")

    async def put(self, key: str, value: str, attempts: int = 50) -> None:
        """put writes through whichever node leads, retrying across elections and transfers.

        A write during a leadership transfer is refused until it ends (thesis 3.10), as a
        client of the real service sees it (UNAVAILABLE, retried).
        """
        self._sequence += 1
        command = encode_put(key, value.encode(), "recorder", self._sequence)
        for _ in range(attempts):
            leader = await self.wait_leader()
            try:
                await self.nodes[leader].propose(command)
                return
            except (NotLeaderError, ProposalLostError, TransferInProgressError):
                await asyncio.sleep(0.05)
        raise AssertionError(f"put {key} never succeeded")

    async def read(self, key: str) -> bytes:
        leader = await self.wait_leader()
        return await self.nodes[leader].read(encode_get(key))


Scenario = Callable[[TracedCluster], Awaitable[None]]


async def election_and_writes(cluster: TracedCluster) -> None:
    """Three nodes elect a leader (with prevote), take writes and serve reads."""
    await cluster.start_all()
    for i in range(5):
        await cluster.put(f"k{i}", f"v{i}")
    for i in range(3):
        await cluster.read(f"k{i}")


async def failover(cluster: TracedCluster) -> None:
    """The leader stops; the others elect a new one and keep taking writes."""
    await cluster.start_all()
    await cluster.put("a", "1")
    leader = await cluster.wait_leader()
    await cluster.stop(leader)
    await cluster.put("b", "2")
    await cluster.read("a")


async def restart(cluster: TracedCluster) -> None:
    """A follower stops, misses writes, restarts from its disk and catches up."""
    await cluster.start_all()
    await cluster.put("a", "1")
    leader = await cluster.wait_leader()
    follower = next(i for i in cluster.nodes if i != leader)
    await cluster.stop(follower)
    await cluster.put("b", "2")
    await cluster.start(follower)
    await cluster.put("c", "3")
    await cluster.read("c")
    await asyncio.sleep(0.2)


async def snapshot_catch_up(cluster: TracedCluster) -> None:
    """With snapshots every 4 entries, a follower that missed writes is sent a snapshot."""
    cluster.snapshot_every = 4
    await cluster.start_all()
    await cluster.put("a", "1")
    leader = await cluster.wait_leader()
    follower = next(i for i in cluster.nodes if i != leader)
    await cluster.stop(follower)
    for i in range(12):
        await cluster.put(f"k{i}", str(i))
    await cluster.start(follower)
    await cluster.put("z", "26")
    await asyncio.sleep(0.3)


async def snapshot_restart(cluster: TracedCluster) -> None:
    """With snapshots every 4 entries, a follower restarts from its own snapshot and log."""
    cluster.snapshot_every = 4
    await cluster.start_all()
    for i in range(6):
        await cluster.put(f"k{i}", str(i))
    leader = await cluster.wait_leader()
    follower = next(i for i in cluster.nodes if i != leader)
    await asyncio.sleep(0.2)  # let the follower apply (and snapshot) what it has
    await cluster.stop(follower)
    await cluster.start(follower)
    await cluster.put("z", "26")
    await asyncio.sleep(0.3)


async def _caught_up(cluster: TracedCluster, node_id: str, timeout_s: float = 10.0) -> None:
    """_caught_up waits until node_id has applied everything the leader has committed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        leader = cluster.nodes[await cluster.wait_leader()]
        core = leader._core
        if core is not None and cluster.nodes[node_id].applied_index >= core.commit_index:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{node_id} did not catch up within {timeout_s}s")


async def snapshot_install_restart(cluster: TracedCluster) -> None:
    """A follower installs a snapshot, applies past its base, then restarts from a snapshot.

    Its replay is global-only after the install, so the checker never saw the entries under
    the base it restarts from: that segment is global-only too, but the Ready discipline
    must start again from what the restart loaded (applying restarts at the base).
    """
    cluster.snapshot_every = 4
    await cluster.start_all()
    await cluster.put("a", "1")
    leader = await cluster.wait_leader()
    follower = next(i for i in cluster.nodes if i != leader)
    await cluster.stop(follower)
    for i in range(12):
        await cluster.put(f"k{i}", str(i))
    node = await cluster.start(follower)
    for i in range(12):
        await cluster.put(f"z{i}", str(i))
        await _caught_up(cluster, follower)
        core = node._core
        assert core is not None
        base = core.status()["first_index"] - 1
        if 0 < base < node.applied_index:
            break
    else:
        raise AssertionError("the follower never applied past its snapshot base")
    await cluster.stop(follower)
    await cluster.start(follower)
    await cluster.put("after", "1")
    await _caught_up(cluster, follower)
    await asyncio.sleep(0.2)


async def transfer_to(cluster: TracedCluster, node_id: str, timeout_s: float = 10.0) -> None:
    """transfer_to asks the leader to hand over to ``node_id`` until it leads.

    The leader drops a transfer that has not completed within an election timeout (thesis
    3.10), so the request is repeated, as ``raftwright transfer`` does.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        leader = await cluster.wait_leader()
        if leader == node_id:
            return
        with contextlib.suppress(NotLeaderError):
            cluster.nodes[leader].transfer_leadership(node_id)
        await asyncio.sleep(0.25)
    raise AssertionError(f"{node_id} did not take over within {timeout_s}s")


async def transfer(cluster: TracedCluster) -> None:
    """Leadership moves by TimeoutNow (thesis 3.10), with writes before, during and after.

    The first target has missed writes while stopped, so the leader catches it up before it
    sends TimeoutNow; then leadership moves on to the third node, and writes keep coming.
    """
    await cluster.start_all()
    await cluster.put("a", "1")
    leader = await cluster.wait_leader()
    target = next(i for i in cluster.nodes if i != leader)
    await cluster.stop(target)
    for i in range(5):
        await cluster.put(f"k{i}", str(i))
    await cluster.start(target)
    cluster.nodes[leader].transfer_leadership(target)
    await cluster.put("during", "1")
    await transfer_to(cluster, target)
    await cluster.put("b", "2")
    third = next(i for i in cluster.nodes if i not in (leader, target))
    await transfer_to(cluster, third)
    await cluster.put("c", "3")
    await cluster.read("c")
    await asyncio.sleep(0.2)


async def change_membership(
    cluster: TracedCluster, change: Callable[[Node], int], done: Callable[[], bool]
) -> None:
    """change_membership asks the leader for a change until ``done()`` (thesis 4.1).

    A change is refused while an earlier one is uncommitted or before an entry of the
    leader's term has committed (the 2015 fix); the writes between attempts supply one.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20.0
    accepted = False
    while loop.time() < deadline:
        if done():
            return
        leader = await cluster.wait_leader()
        if not accepted:
            with contextlib.suppress(NotLeaderError, MembershipBlockedError):
                change(cluster.nodes[leader])
                accepted = True
        await cluster.put("membership", str(loop.time()))
        await asyncio.sleep(0.1)
    raise AssertionError("the membership change never completed")


async def membership_transfer(cluster: TracedCluster) -> None:
    """n4 joins (``join``), is added as a learner and promoted once caught up (thesis
    4.2.1); leadership moves to it by TimeoutNow (3.10); the old leader is removed (4.2.2)."""
    await cluster.start_all()
    for i in range(3):
        await cluster.put(f"k{i}", str(i))
    joiner = next(iter(cluster.spare))
    await cluster.start(joiner, join=True)
    address = cluster.spare[joiner]

    def voter() -> bool:
        return all(joiner in n.members().voters for n in cluster.nodes.values())

    await change_membership(cluster, lambda n: n.add_member(joiner, address), voter)
    await cluster.put("with", joiner)
    first = await cluster.wait_leader()
    await transfer_to(cluster, joiner)
    await cluster.put("led by", joiner)

    def removed() -> bool:
        # the removed node itself need not learn its removal (the leader stops sending)
        others = [n for i, n in cluster.nodes.items() if i != first]
        return all(first not in n.members().voters for n in others)

    await change_membership(cluster, lambda n: n.remove_member(first), removed)
    await cluster.stop(first)
    await cluster.put("without", first)
    await cluster.read("without")
    await asyncio.sleep(0.2)


SCENARIOS: dict[str, Scenario] = {
    "election": election_and_writes,
    "failover": failover,
    "restart": restart,
    "snapshot": snapshot_catch_up,
    "snapshot-restart": snapshot_restart,
    "snapshot-install-restart": snapshot_install_restart,
    "transfer": transfer,
    "membership-transfer": membership_transfer,
}


async def record(scenario: Scenario, root: Path, trace_dir: Path, n: int = 3) -> None:
    """record runs one scenario on a fresh traced cluster and stops every node."""
    cluster = TracedCluster(root, trace_dir, n, spare=1)
    try:
        await asyncio.wait_for(scenario(cluster), timeout=60)
    finally:
        await cluster.stop_all()


def main(argv: list[str]) -> int:
    import tempfile

    out = Path(argv[0])
    names = argv[1:] or list(SCENARIOS)
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(record(SCENARIOS[name], Path(tmp), out / name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
