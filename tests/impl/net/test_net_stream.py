"""The peer stream (RaftPeer.Stream): batching, replies, and refusal of bad input.

Every Raft message between peers travels on one long-lived bidirectional call
per peer; a refused batch aborts the call with the status the unary methods
use (malformed: INVALID_ARGUMENT; unknown sender or other cluster:
PERMISSION_DENIED) and none of the batch reaches the node, so the receiver's
observable state (term, vote, leader, commit, log) is unchanged.
Reference: Raft section 5.1 (RPCs may be lost and are retried; a dropped call is
no safety issue), section 5.2 (RequestVote), section 5.3 (AppendEntries).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio

from impl import Node
from impl._core import Message, VoteRequest, VoteResponse
from impl._kv import encode_put
from impl._peer_stream import PeerStream
from impl.generated import raft_pb2

from ._netutil import CLUSTER_ID, LocalCluster, wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

STREAM = "/raftwright.v1.RaftPeer/Stream"


def observable(node: Node) -> tuple[Any, ...]:
    st = node.status()
    core = node._core
    assert core is not None
    return (st.term, core.voted_for, st.leader, st.commit_index, core.last_index, core.last_term)


async def stream_raw(channel: aio.Channel, payloads: list[bytes]) -> grpc.StatusCode:
    """stream_raw writes raw batches on one Stream call; returns the call's final status."""
    call = channel.stream_stream(STREAM, None, None)(None, timeout=5)
    try:
        for p in payloads:
            await call.write(p)
        await call.done_writing()
        while await call.read() is not aio.EOF:  # type: ignore[attr-defined]
            pass
    except aio.AioRpcError as err:
        return err.code()
    code: grpc.StatusCode = await call.code()
    return code


def batch(*messages: raft_pb2.PeerMessage) -> bytes:
    data: bytes = raft_pb2.PeerBatch(messages=list(messages)).SerializeToString()
    return data


def test_bad_stream_input_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        cluster = LocalCluster(tmp_path)
        try:
            await cluster.start_all()
            leader_id = await cluster.wait_leader()
            follower_id = next(n for n in cluster.nodes if n != leader_id)
            follower = cluster.nodes[follower_id]
            await asyncio.sleep(0.1)
            before = observable(follower)
            term = before[0]
            async with aio.insecure_channel(cluster.peers[follower_id]) as ch:
                invalid = grpc.StatusCode.INVALID_ARGUMENT
                denied = grpc.StatusCode.PERMISSION_DENIED
                assert await stream_raw(ch, [b"\xff\xff\xff\xff"]) == invalid
                assert await stream_raw(ch, [batch(raft_pb2.PeerMessage())]) == invalid
                intruder = raft_pb2.PeerMessage(
                    vote_request=raft_pb2.VoteRequest(
                        cluster_id=CLUSTER_ID, sender="intruder", term=term + 9, last_log_index=99
                    )
                )
                assert await stream_raw(ch, [batch(intruder)]) == denied
                foreign = raft_pb2.PeerMessage(
                    vote_request=raft_pb2.VoteRequest(
                        cluster_id="other", sender=leader_id, term=term + 9, last_log_index=99
                    )
                )
                assert await stream_raw(ch, [batch(foreign)]) == denied
                # A batch is checked whole before any of it is delivered: the valid vote
                # request of a higher term first would otherwise move the follower's term.
                real = raft_pb2.PeerMessage(
                    vote_request=raft_pb2.VoteRequest(
                        cluster_id=CLUSTER_ID, sender=leader_id, term=term + 9, last_log_index=99
                    )
                )
                assert await stream_raw(ch, [batch(real, intruder)]) == denied
                # Entries with a gap decode fine, but the core calls them malformed.
                gap = raft_pb2.AppendRequest(cluster_id=CLUSTER_ID, sender=leader_id, term=term)
                gap.entries.add(index=before[4] + 1, term=term, data=b"a")
                gap.entries.add(index=before[4] + 3, term=term, data=b"b")
                code = await stream_raw(ch, [batch(raft_pb2.PeerMessage(append_request=gap))])
                assert code == invalid
            await asyncio.sleep(0.05)
            assert observable(follower) == before
        finally:
            await cluster.stop_all()

    asyncio.run(main())


def test_messages_queued_together_go_as_one_batch_and_each_is_answered(tmp_path: Path) -> None:
    """Three vote requests queued before the writer runs: one write, three replies.

    They carry a stale term, so the follower refuses them (section 5.2: a vote
    request of an older term is denied) and nothing changes.
    """

    async def main() -> None:
        cluster = LocalCluster(tmp_path)
        try:
            await cluster.start_all()
            leader_id = await cluster.wait_leader()
            follower_id = next(n for n in cluster.nodes if n != leader_id)
            follower = cluster.nodes[follower_id]
            term = follower.term
            assert term >= 1
            before = observable(follower)
            replies: list[Message] = []
            async with aio.insecure_channel(cluster.peers[follower_id]) as ch:
                method = ch.stream_stream(
                    STREAM,
                    request_serializer=bytes,
                    response_deserializer=raft_pb2.PeerBatch.FromString,
                )
                stream = PeerStream(
                    follower_id,
                    lambda: method(None),
                    replies.append,
                    max_queued=16,
                    stall_timeout_s=5.0,
                )
                for _ in range(3):
                    stream.send(
                        VoteRequest(
                            cluster_id=CLUSTER_ID,
                            sender=leader_id,
                            term=term - 1,
                            prevote=False,
                            last_log_index=0,
                            last_log_term=0,
                        )
                    )
                await wait_for(lambda: len(replies) == 3 or None, 10, "three vote replies")
                assert stream.batches_sent == 1 and stream.messages_sent == 3
                assert stream.calls_opened == 1 and stream.dropped == 0
                for reply in replies:
                    assert isinstance(reply, VoteResponse)
                    assert not reply.granted and reply.sender == follower_id
                    assert reply.term == term
                await stream.close()
            assert observable(follower) == before
        finally:
            await cluster.stop_all()

    asyncio.run(main())


def test_cluster_replicates_over_one_stream_per_peer(tmp_path: Path) -> None:
    """Writes commit with the leader's appends on one long-lived call per follower."""

    async def main() -> None:
        cluster = LocalCluster(tmp_path)
        try:
            await cluster.start_all()
            leader_id = await cluster.wait_leader()
            leader = cluster.nodes[leader_id]
            senders = leader._senders
            assert senders is not None
            # Calls opened before every peer was up (votes to a node still starting) failed;
            # count from a settled cluster on.
            await asyncio.sleep(0.2)
            opened = {peer: calls for peer, (calls, _, _) in senders.stream_stats().items()}
            await asyncio.gather(
                *(leader.propose(encode_put(f"k{i}", b"v", "", 0)) for i in range(50))
            )
            stats = senders.stream_stats()
            assert set(stats) == set(cluster.nodes) - {leader_id}
            for peer, (calls, batches, messages) in stats.items():
                assert calls == opened[peer]  # no reconnects in a healthy cluster
                assert messages >= batches >= 1
        finally:
            await cluster.stop_all()

    asyncio.run(main())
