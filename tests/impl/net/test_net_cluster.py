"""An in-process 3-node cluster of Node objects on 127.0.0.1 (real gRPC, real SQLite).

Each test runs its own event loop with asyncio.run, binds free ports and stops
every node in a finally block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from impl import KVClient, NotLeaderError, ProposalLostError, RaftClient
from impl._kv import decode_get_result, encode_get, encode_put

from ._netutil import LocalCluster, run_cluster, wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def run(root: Path, body: Callable[[LocalCluster], Awaitable[None]], **kw: Any) -> None:
    run_cluster(root, body, **kw)


def test_elects_one_leader_and_replicates(tmp_path: Path) -> None:
    """Reference: sections 5.2 (one leader per term) and 5.3 (replication)."""

    async def body(c: LocalCluster) -> None:
        leader_id = await c.wait_leader()
        leader = c.nodes[leader_id]
        terms = {n.term for n in c.nodes.values()}
        assert len(terms) == 1
        result = await leader.propose(encode_put("k", b"v", "", 0))
        assert result == b"", "a first put reports existed=False (empty KvResult)"
        assert decode_get_result(await leader.read(encode_get("k"))) == b"v"
        index = leader.applied_index
        # Every replica applies the same command at the same index.
        await wait_for(
            lambda: all(n.applied_index >= index for n in c.nodes.values()) or None,
            10,
            "followers apply",
        )
        assert all(m.get("k") == b"v" for m in c.machines.values())
        st = leader.status()
        assert st.role == "leader" and st.leader == leader_id
        assert set(st.peers) == set(c.peers) - {leader_id}

    run(tmp_path, body)


def test_follower_redirects_to_the_leader(tmp_path: Path) -> None:
    async def body(c: LocalCluster) -> None:
        leader_id = await c.wait_leader()
        follower_id = next(n for n in c.nodes if n != leader_id)
        follower = c.nodes[follower_id]
        with pytest.raises(NotLeaderError) as info:
            await follower.propose(b"whatever")
        assert info.value.leader_id == leader_id
        assert info.value.leader_address == c.peers[leader_id]
        with pytest.raises(NotLeaderError):
            await follower.read(encode_get("k"))
        # A client that only knows the follower follows the trailing-metadata redirect.
        async with KVClient([c.peers[follower_id]], deadline_s=10) as kv:
            await kv.put("redirected", b"yes")
            assert kv.raft.leader_address == c.peers[leader_id]
            assert await kv.get("redirected") == b"yes"
            assert await kv.get("absent") is None
            assert await kv.delete("redirected") is True
            assert await kv.delete("redirected") is False

    run(tmp_path, body)


def test_leader_stop_elects_new_leader_and_keeps_acknowledged_writes(tmp_path: Path) -> None:
    """Reference: section 5.4 (Leader Completeness): an acknowledged write survives."""

    async def body(c: LocalCluster) -> None:
        old = await c.wait_leader()
        async with KVClient(c.addresses, deadline_s=15) as kv:
            for i in range(20):
                await kv.put(f"k{i}", str(i).encode())
            await c.stop(old)
            new = await c.wait_leader()
            assert new != old
            assert c.nodes[new].term > 0
            for i in range(20):
                assert await kv.get(f"k{i}") == str(i).encode()
            await kv.put("after", b"failover")
            assert await kv.get("after") == b"failover"

    run(tmp_path, body)


def test_full_restart_keeps_data(tmp_path: Path) -> None:
    """Reference: Figure 2 persistent state; section 7 (snapshots survive restarts)."""

    async def body(c: LocalCluster) -> None:
        await c.wait_leader()
        async with KVClient(c.addresses, deadline_s=15) as kv:
            for i in range(25):
                await kv.put(f"k{i}", str(i).encode())
        leader = c.nodes[await c.wait_leader()]
        assert leader.status().snapshot_index > 0, "snapshot_every=7 compacted the log"
        terms = {n: node.term for n, node in c.nodes.items()}
        await c.stop_all()
        await c.start_all()
        await c.wait_leader()
        for node_id, node in c.nodes.items():
            assert node.term >= terms[node_id], "terms never decrease across restarts"
        async with KVClient(c.addresses, deadline_s=15) as kv:
            for i in range(25):
                assert await kv.get(f"k{i}") == str(i).encode()

    run(tmp_path, body, snapshot_every=7)


def test_lagging_follower_catches_up_by_snapshot(tmp_path: Path) -> None:
    """Reference: section 7 (InstallSnapshot for a follower behind the compacted log)."""

    async def body(c: LocalCluster) -> None:
        leader_id = await c.wait_leader()
        lagging = next(n for n in c.nodes if n != leader_id)
        lagging_applied = c.nodes[lagging].applied_index
        await c.stop(lagging)
        async with KVClient(c.addresses, deadline_s=15) as kv:
            for i in range(30):
                await kv.put(f"k{i}", b"v")
        leader = c.nodes[leader_id]
        # The leader no longer holds the entries right after the follower's log,
        # so only InstallSnapshot can bring the follower up to date.
        assert leader.status().snapshot_index > lagging_applied + 1
        node = await c.start(lagging)
        target = leader.status().commit_index
        await wait_for(lambda: node.applied_index >= target or None, 15, "follower catches up")
        assert node.status().snapshot_index > 0, "it caught up through a snapshot"
        assert all(c.machines[lagging].get(f"k{i}") == b"v" for i in range(30))

    run(tmp_path, body, snapshot_every=10)


def test_status_over_grpc(tmp_path: Path) -> None:
    async def body(c: LocalCluster) -> None:
        leader_id = await c.wait_leader()
        async with RaftClient(c.addresses) as client:
            reports = await client.status_all()
        assert [r.error for r in reports] == [None, None, None]
        by_id = {r.status.id: r.status for r in reports if r.status is not None}
        assert set(by_id) == set(c.peers)
        assert by_id[leader_id].role == "leader"
        assert all(s.leader == leader_id for s in by_id.values())
        assert dict(by_id[leader_id].members) == c.peers

    run(tmp_path, body)


def test_leadership_transfer(tmp_path: Path) -> None:
    """Reference: Raft thesis 3.10 (leadership transfer via TimeoutNow)."""

    async def body(c: LocalCluster) -> None:
        old = await c.wait_leader()
        target = next(n for n in c.nodes if n != old)
        async with KVClient(c.addresses, deadline_s=15) as kv:
            await kv.put("before", b"1")
            c.nodes[old].transfer_leadership(target)
            await wait_for(lambda: c.leader() == target or None, 10, "transfer completes")
            assert await kv.get("before") == b"1"
            await kv.put("after", b"2")
        with pytest.raises(NotLeaderError):
            c.nodes[old].transfer_leadership(old)

    run(tmp_path, body)


def test_concurrent_writers_through_failover_lose_no_acknowledged_write(tmp_path: Path) -> None:
    """Reference: sections 5.4.1-5.4.3 (Leader Completeness, State Machine Safety)."""

    async def body(c: LocalCluster) -> None:
        old = await c.wait_leader()
        acked: dict[str, bytes] = {}
        stop = asyncio.Event()

        async def writer(w: int) -> None:
            async with KVClient(c.addresses, deadline_s=10) as kv:
                i = 0
                while not stop.is_set():
                    key, value = f"w{w}-{i}", f"{w}:{i}".encode()
                    try:
                        await kv.put(key, value)
                    except Exception:
                        continue  # not acknowledged: no claim about it
                    acked[key] = value
                    i += 1

        tasks = [asyncio.create_task(writer(w)) for w in range(4)]
        await asyncio.sleep(0.5)
        await c.stop(old)
        await c.wait_leader()
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
        assert len(acked) > 10
        async with KVClient(c.addresses, deadline_s=15) as kv:
            for key, value in acked.items():
                assert await kv.get(key) == value, key

    run(tmp_path, body)


def test_one_kv_client_with_concurrent_writes_loses_none(tmp_path: Path) -> None:
    """The dedup table keeps one sequence per client; the client must not race itself."""

    async def body(c: LocalCluster) -> None:
        await c.wait_leader()
        async with KVClient(c.addresses, deadline_s=15) as kv:
            await asyncio.gather(*(kv.put(f"c{i}", b"%d" % i) for i in range(40)))
            values = await asyncio.gather(*(kv.get(f"c{i}") for i in range(40)))
        assert values == [b"%d" % i for i in range(40)]

    run(tmp_path, body)


def test_a_deposed_leader_answers_its_pending_proposals(tmp_path: Path) -> None:
    """Reference: section 6.2 (check-quorum) and etcd's "leader changed" error.

    A leader cut off from its followers steps down after an election timeout; a proposal it
    accepted but could not commit must then fail with ProposalLostError instead of hanging.
    """

    async def body(c: LocalCluster) -> None:
        leader_id = await c.wait_leader()
        leader = c.nodes[leader_id]
        for node_id in [n for n in c.peers if n != leader_id]:
            await c.stop(node_id)
        with pytest.raises(ProposalLostError):
            await asyncio.wait_for(leader.propose(encode_put("k", b"v", "", 0)), 10)
        assert leader.role.value != "leader"

    run(tmp_path, body)
