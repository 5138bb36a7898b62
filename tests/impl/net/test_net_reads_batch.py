"""Node batches: reads (and proposals) that arrive between two driver turns go in together.

Reference: Raft thesis 6.4 — every read that arrived before a leadership
confirmation round started may be served at that round's read index. The node
hands all reads queued since its last turn to the core as one request, so one
quorum round (not one per read) confirms them, and each read still sees every
write that completed before it was issued. Proposals queued the same way enter
the log with one ``propose_many`` (one append per follower, section 5.3).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from impl import NodeConfig, NodeStoppedError, NotLeaderError
from impl._kv import decode_get_result, encode_get, encode_put

from ._netutil import LocalCluster

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


class _TracedCluster(LocalCluster):
    """_TracedCluster records every node's core inputs (impl trace files, one per node)."""

    def config(self, node_id: str) -> NodeConfig:
        return dataclasses.replace(super().config(node_id), trace_dir=self.root / "traces")


def _inputs(cluster: LocalCluster, node_id: str, kind: str) -> list[dict[str, object]]:
    path = cluster.root / "traces" / f"node-{node_id}.ndjson"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("i") == kind]


def test_concurrent_reads_share_one_read_index_request(tmp_path: Path) -> None:
    """Reference: thesis 6.4 — 200 reads issued together cost one ReadIndex request."""

    async def main() -> None:
        cluster = LocalCluster(tmp_path)
        await cluster.start_all()
        try:
            leader_id = await cluster.wait_leader()
            leader = cluster.nodes[leader_id]
            await leader.propose(encode_put("k", b"v1", "", 0))
            requests_before = leader._next_read_id
            results = await asyncio.gather(*(leader.read(encode_get("k")) for _ in range(200)))
            assert {decode_get_result(r) for r in results} == {b"v1"}
            assert leader._next_read_id - requests_before == 1
            # a read issued after a write completed sees it (linearizability)
            for i in range(5):
                value = b"v%d" % (i + 2)
                await leader.propose(encode_put("k", value, "", 0))
                batch = await asyncio.gather(*(leader.read(encode_get("k")) for _ in range(20)))
                assert {decode_get_result(r) for r in batch} == {value}
        finally:
            await cluster.stop_all()

    asyncio.run(main())


def test_reads_fail_off_the_leader_and_on_stop(tmp_path: Path) -> None:
    """A follower refuses reads at once; reads queued at a stopping leader fail, none hang."""

    async def main() -> None:
        cluster = LocalCluster(tmp_path)
        await cluster.start_all()
        try:
            leader_id = await cluster.wait_leader()
            follower = next(n for i, n in cluster.nodes.items() if i != leader_id)
            with pytest.raises(NotLeaderError) as info:
                await follower.read(encode_get("k"))
            assert info.value.leader_id == leader_id
            leader = cluster.nodes[leader_id]
            reads = [asyncio.ensure_future(leader.read(encode_get("k"))) for _ in range(50)]
            await asyncio.sleep(0)  # the reads are queued, the driver has not run yet
            await cluster.stop(leader_id)
            outcomes = await asyncio.wait_for(asyncio.gather(*reads, return_exceptions=True), 10)
            for outcome in outcomes:
                # answered before the stop took effect, or failed by it; never left hanging
                assert isinstance(outcome, bytes | NodeStoppedError), outcome
        finally:
            await cluster.stop_all()

    asyncio.run(main())


def test_concurrent_proposals_enter_the_log_together(tmp_path: Path) -> None:
    """Reference: section 5.3 — 200 proposals issued together are one log append, in order."""

    async def main() -> None:
        cluster = _TracedCluster(tmp_path)
        await cluster.start_all()
        try:
            leader_id = await cluster.wait_leader()
            leader = cluster.nodes[leader_id]
            await leader.propose(encode_put("warm", b"up", "", 0))
            puts = [encode_put(f"k{i}", b"%d" % i, "", 0) for i in range(200)]
            await asyncio.gather(*(leader.propose(p) for p in puts))
            machine = cluster.machines[leader_id]
            assert all(machine.get(f"k{i}") == b"%d" % i for i in range(200))
            results = await asyncio.gather(*(leader.read(encode_get(f"k{i}")) for i in range(200)))
            assert [decode_get_result(r) for r in results] == [b"%d" % i for i in range(200)]
        finally:
            await cluster.stop_all()
        proposals = _inputs(cluster, leader_id, "propose")
        sizes = [len(p["data"]) for p in proposals]  # type: ignore[arg-type]
        assert sizes[-1] == 200  # the 200 came in as one propose_many, after the warm-up one
        assert sum(sizes) == 201
        assert len(_inputs(cluster, leader_id, "read")) == 1

    asyncio.run(main())
