"""RaftClient.ProposeBatch on a real loopback cluster: order, results, caps, redirects.

Reference: Raft paper section 5.3 (the leader appends client commands to its log
and answers once they are applied, in log order) and section 8 (clients talk to the
leader; a follower rejects and names the leader it knows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import cast

import grpc
import pytest
from grpc import aio

from impl import ClientError, KVClient, RaftClient
from impl._batch_service import MAX_BATCH_BYTES, MAX_BATCH_COMMANDS
from impl._client import LEADER_ADDR_KEY, LEADER_ID_KEY, NOT_APPENDED_KEY
from impl._kv import encode_delete, encode_put
from impl.generated import client_pb2, client_pb2_grpc, kv_pb2

from ._netutil import LocalCluster, free_ports, run_cluster, wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


def run(root: Path, body: Callable[[LocalCluster], Awaitable[None]]) -> None:
    # three nodes share one event loop: a 4,096-command batch must not look like a dead
    # leader on a loaded machine (the assertions count exact log indexes)
    run_cluster(root, body, election_timeout_ms=(1000, 2000))


def _pairs(err: aio.AioRpcError) -> list[tuple[str, str | bytes]]:
    # grpc.aio returns an aio.Metadata, which iterates as (key, value) pairs.
    return list(cast("Iterable[tuple[str, str | bytes]]", err.trailing_metadata() or ()))


def existed(result: bytes) -> bool:
    return kv_pb2.KvResult.FromString(result).existed


def test_batch_is_applied_in_order_with_every_result(tmp_path: Path) -> None:
    """Reference: section 5.3 (entries applied in log order, results to the client)."""

    async def body(c: LocalCluster) -> None:
        leader_id = await c.wait_leader()
        leader = c.nodes[leader_id]
        before = leader.applied_index
        # Each result depends on the ones before it: only in-order application
        # gives False, True, True, False, False.
        commands = [
            encode_put("k", b"1", "", 0),
            encode_put("k", b"2", "", 0),
            encode_delete("k", "", 0),
            encode_delete("k", "", 0),
            encode_put("k", b"last", "", 0),
        ]
        async with RaftClient(c.addresses, deadline_s=10) as client:
            results = await client.propose_many(commands)
        assert [existed(r) for r in results] == [False, True, True, False, False]
        assert len(results) == len(commands)
        # One batch, consecutive indexes: exactly five entries were appended and applied.
        assert leader.applied_index == before + len(commands)
        await wait_for(
            lambda: all(n.applied_index >= before + 5 for n in c.nodes.values()) or None,
            10,
            "followers apply the batch",
        )
        assert all(m.get("k") == b"last" for m in c.machines.values())

    run(tmp_path, body)


def test_empty_batch_answers_an_empty_list(tmp_path: Path) -> None:
    async def body(c: LocalCluster) -> None:
        leader = c.nodes[await c.wait_leader()]
        before = leader.applied_index
        async with RaftClient(c.addresses, deadline_s=10) as client:
            assert await client.propose_many([]) == []
        assert leader.applied_index == before

    run(tmp_path, body)


def test_oversized_batch_is_refused_and_nothing_applied(tmp_path: Path) -> None:
    """A batch over either cap is INVALID_ARGUMENT, and not one of its commands is in the log."""

    async def body(c: LocalCluster) -> None:
        leader_id = await c.wait_leader()
        leader = c.nodes[leader_id]
        before = leader.applied_index
        too_many = [encode_put(f"n{i}", b"v", "", 0) for i in range(MAX_BATCH_COMMANDS + 1)]
        big = b"x" * (MAX_BATCH_BYTES // 2 + 1)
        too_big = [encode_put("b1", big, "", 0), encode_put("b2", big, "", 0)]
        async with RaftClient(c.addresses, deadline_s=10) as client:
            for batch, why in ((too_many, "commands"), (too_big, "bytes")):
                with pytest.raises(ClientError, match="INVALID_ARGUMENT") as info:
                    await client.propose_many(batch)
                assert why in str(info.value) and "cap" in str(info.value)
            # The very next entry the leader appends is the one right after `before`.
            await client.propose_many([encode_put("after", b"1", "", 0)])
        assert leader.applied_index == before + 1
        machine = c.machines[leader_id]
        assert machine.get("n0") is None and machine.get("b1") is None
        assert machine.get("after") == b"1"
        # At the cap itself the batch is accepted (the cap is inclusive).
        at_cap = [encode_put(f"c{i}", b"v", "", 0) for i in range(MAX_BATCH_COMMANDS)]
        async with RaftClient([c.peers[leader_id]], deadline_s=20, rpc_timeout_s=15) as client:
            assert len(await client.propose_many(at_cap)) == MAX_BATCH_COMMANDS
        assert machine.get(f"c{MAX_BATCH_COMMANDS - 1}") == b"v"

    run(tmp_path, body)


def test_follower_answers_failed_precondition_with_the_leader_hint(tmp_path: Path) -> None:
    """Reference: section 8 (a follower rejects client requests and names the leader)."""

    async def body(c: LocalCluster) -> None:
        leader_id = await c.wait_leader()
        follower_id = next(n for n in c.nodes if n != leader_id)
        before = c.nodes[leader_id].applied_index
        channel = aio.insecure_channel(c.peers[follower_id])
        try:
            stub = client_pb2_grpc.RaftClientStub(channel)
            with pytest.raises(aio.AioRpcError) as info:
                await stub.ProposeBatch(
                    client_pb2.ProposeBatchRequest(commands=[encode_put("f", b"1", "", 0)]),
                    timeout=5,
                )
        finally:
            await channel.close(None)
        err = info.value
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        trailing: dict[str, str | bytes] = dict(_pairs(err))
        assert trailing[LEADER_ID_KEY] == leader_id
        assert trailing[LEADER_ADDR_KEY] == c.peers[leader_id]
        assert c.nodes[leader_id].applied_index == before, "the refused batch was not appended"
        # RaftClient follows that hint (nothing was appended, so moving on is safe).
        async with RaftClient([c.peers[follower_id]], deadline_s=10) as client:
            assert await client.propose_many([encode_put("f", b"2", "", 0)]) == [b""]
            assert client.leader_address == c.peers[leader_id]

    run(tmp_path, body)


def test_batch_moves_on_from_an_unreachable_node(tmp_path: Path) -> None:
    """A node that cannot be reached was never sent the batch: the client tries the next."""

    async def body(c: LocalCluster) -> None:
        leader_id = await c.wait_leader()
        (dead_port,) = free_ports(1)
        addresses = [f"127.0.0.1:{dead_port}", c.peers[leader_id]]
        async with RaftClient(addresses, deadline_s=10, rpc_timeout_s=2) as client:
            assert await client.propose_many([encode_put("m", b"1", "", 0)]) == [b""]
            assert client.leader_address == c.peers[leader_id]

    run(tmp_path, body)


def test_kv_put_many_and_a_resent_batch_is_applied_once(tmp_path: Path) -> None:
    """put_many writes in order; the same batch sent twice changes nothing the second time."""

    async def body(c: LocalCluster) -> None:
        leader_id = await c.wait_leader()
        async with KVClient(c.addresses, deadline_s=10) as kv:
            await kv.put_many([("a", b"1"), ("b", b"2"), ("a", b"3")])
            assert await kv.get("a") == b"3" and await kv.get("b") == b"2"
            await kv.put_many([])
            await kv.put("c", b"single")
            assert await kv.get("c") == b"single"
        # A re-send of a batch with the same (client_id, sequence) tags, after another
        # client overwrote the key, is de-duplicated: the later value stays.
        batch = [encode_put("d", b"old", "resender", 1), encode_put("e", b"old", "resender", 2)]
        async with RaftClient(c.addresses, deadline_s=10) as client, KVClient(c.addresses) as kv2:
            await client.propose_many(batch)
            await kv2.put("d", b"new")
            await client.propose_many(batch)
            assert await kv2.get("d") == b"new"
        assert c.machines[leader_id].get("e") == b"old"

    run(tmp_path, body)


def test_batch_refused_during_a_transfer_is_marked_and_retried(tmp_path: Path) -> None:
    """Reference: thesis 3.10 (a leader handing over stops taking new commands).

    A transfer to a stopped follower cannot finish, so the leader stays in the
    transfer until its next check-quorum round forgets it. Meanwhile a batch is
    refused whole (UNAVAILABLE, marked not-appended), and RaftClient.propose_many
    moves on and succeeds once writes are taken again.
    """

    async def body(c: LocalCluster) -> None:
        leader_id = await c.wait_leader()
        leader = c.nodes[leader_id]
        target = next(n for n in c.nodes if n != leader_id)
        await c.stop(target)
        channel = aio.insecure_channel(c.peers[leader_id])
        refused: aio.AioRpcError | None = None
        refused_key = ""
        try:
            await asyncio.wait_for(channel.channel_ready(), 10)
            stub = client_pb2_grpc.RaftClientStub(channel)
            # The window lasts until the leader's next check-quorum round (150 ms here),
            # so a loaded machine may miss it: try a few times, each with a new key.
            for attempt in range(30):
                refused_key = f"t{attempt}"
                leader.transfer_leadership(target)
                request = client_pb2.ProposeBatchRequest(
                    commands=[encode_put(refused_key, b"1", "", 0)]
                )
                try:
                    await stub.ProposeBatch(request, timeout=5)
                except aio.AioRpcError as err:
                    refused = err
                    break
        finally:
            await channel.close(None)
        assert refused is not None, "no batch fell into a transfer window in 30 tries"
        assert refused.code() == grpc.StatusCode.UNAVAILABLE
        assert dict(_pairs(refused)).get(NOT_APPENDED_KEY) == "1"
        async with RaftClient([c.peers[leader_id]], deadline_s=15) as client:
            assert await client.propose_many([encode_put("t", b"2", "", 0)]) == [b""]
        assert c.machines[leader_id].get("t") == b"2"
        assert c.machines[leader_id].get(refused_key) is None, "the refused batch was not applied"

    run(tmp_path, body)
