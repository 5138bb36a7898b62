"""The gRPC transport refuses bad input without touching the node.

Malformed protobufs and impossible messages get INVALID_ARGUMENT; an unknown
sender or another cluster's id gets PERMISSION_DENIED; in every case the
receiver's observable state (term, vote, leader, commit, log) is unchanged.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio

from impl import Node
from impl.generated import client_pb2, raft_pb2

from ._netutil import CLUSTER_ID, LocalCluster

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def observable(node: Node) -> tuple[Any, ...]:
    st = node.status()
    core = node._core
    assert core is not None
    return (st.term, core.voted_for, st.leader, st.commit_index, core.last_index, core.last_term)


async def call_raw(channel: aio.Channel, method: str, payload: bytes) -> grpc.StatusCode:
    try:
        await channel.unary_unary(method, None, None)(payload, timeout=5)
    except aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def test_bad_peer_input_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        cluster = LocalCluster(tmp_path)
        try:
            await cluster.start_all()
            leader_id = await cluster.wait_leader()
            follower_id = next(n for n in cluster.nodes if n != leader_id)
            follower = cluster.nodes[follower_id]
            # The leader keeps heartbeating (no writes), which changes nothing observable.
            await asyncio.sleep(0.1)
            before = observable(follower)
            append = "/raftwright.v1.RaftPeer/AppendEntries"
            vote = "/raftwright.v1.RaftPeer/RequestVote"
            async with aio.insecure_channel(cluster.peers[follower_id]) as ch:
                garbage = b"\xff\xff\xff\xff"
                assert await call_raw(ch, append, garbage) == grpc.StatusCode.INVALID_ARGUMENT
                assert await call_raw(ch, vote, garbage) == grpc.StatusCode.INVALID_ARGUMENT
                intruder = raft_pb2.VoteRequest(
                    cluster_id=CLUSTER_ID, sender="intruder", term=99, last_log_index=99
                )
                code = await call_raw(ch, vote, intruder.SerializeToString())
                assert code == grpc.StatusCode.PERMISSION_DENIED
                foreign = raft_pb2.VoteRequest(
                    cluster_id="other", sender=leader_id, term=99, last_log_index=99
                )
                code = await call_raw(ch, vote, foreign.SerializeToString())
                assert code == grpc.StatusCode.PERMISSION_DENIED
                # Entries with a gap: decodes fine, but the core calls it malformed.
                gap = raft_pb2.AppendRequest(
                    cluster_id=CLUSTER_ID, sender=leader_id, term=before[0] + 5
                )
                gap.entries.add(index=before[4] + 1, term=before[0] + 5, data=b"a")
                gap.entries.add(index=before[4] + 3, term=before[0] + 5, data=b"b")
                code = await call_raw(ch, append, gap.SerializeToString())
                assert code == grpc.StatusCode.INVALID_ARGUMENT
                odd_kind = raft_pb2.AppendRequest(
                    cluster_id=CLUSTER_ID, sender=leader_id, term=before[0] + 5
                )
                odd_kind.entries.add(index=before[4] + 1, term=before[0] + 5, kind=42)
                code = await call_raw(ch, append, odd_kind.SerializeToString())
                assert code == grpc.StatusCode.INVALID_ARGUMENT
                propose = "/raftwright.v1.RaftClient/Propose"
                assert await call_raw(ch, propose, garbage) == grpc.StatusCode.INVALID_ARGUMENT
                # A well-formed client call to a follower is a redirect, not an error.
                req = client_pb2.ProposeRequest(command=b"x").SerializeToString()
                assert await call_raw(ch, propose, req) == grpc.StatusCode.FAILED_PRECONDITION
            await asyncio.sleep(0.05)
            assert observable(follower) == before
        finally:
            await cluster.stop_all()

    asyncio.run(main())
