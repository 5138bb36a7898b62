"""Refused membership changes: the contract's gRPC codes, and nothing changes.

Reference: Raft thesis 4.1 (only the leader changes the config, one server per
entry, never while an earlier change is uncommitted), 4.2.2 (the last voter
stays), Ongaro's 2015 fix (no change before an entry of the leader's term commits).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from grpc import aio

from impl import KVClient
from impl._client import LEADER_ADDR_KEY, LEADER_ID_KEY
from impl._node import Node
from impl._node_errors import MembershipBlockedError
from impl.generated import client_pb2, client_pb2_grpc, raft_pb2

from ._memberutil import CLUSTER_ID, MemberCluster

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def run(root: Path, body: Callable[[MemberCluster], Awaitable[None]], **kw: Any) -> None:
    async def main() -> None:
        cluster = MemberCluster(root, **kw)
        try:
            await cluster.start_initial()
            await body(cluster)
        finally:
            await cluster.stop_all()

    asyncio.run(main())


def _state(node: Node) -> tuple[Any, ...]:
    """_state is what a refused change must leave alone: config in use and the log's end."""
    st = node.status()
    m = node.members()
    return (dict(m.voters), dict(m.learners), m.index, st.term, st.commit_index, st.log_size)


async def _call(address: str, method: str, request: Any) -> aio.AioRpcError:
    """_call sends one request that must fail, and returns the error."""
    async with aio.insecure_channel(address) as channel:
        stub = client_pb2_grpc.RaftClientStub(channel)
        with pytest.raises(aio.AioRpcError) as info:
            await getattr(stub, method)(request, timeout=5)
    return info.value


def _add(node_id: str, address: str) -> client_pb2.AddMemberRequest:
    return client_pb2.AddMemberRequest(member=client_pb2.Member(id=node_id, address=address))


def test_refusals_carry_the_contract_codes_and_change_nothing(tmp_path: Path) -> None:
    """Reference: thesis 4.1; every refusal leaves the config and the log as they were."""

    async def body(c: MemberCluster) -> None:
        lead = await c.wait_leader(["n1", "n2", "n3"])
        async with KVClient(list(c.initial.values()), deadline_s=15) as kv:
            await kv.put("k", b"v")  # an entry of the leader's term commits (2015 fix)
        follower = next(i for i in ("n1", "n2", "n3") if i != lead)
        leader = c.nodes[lead]
        before = _state(leader)
        # Not the leader: FAILED_PRECONDITION naming the leader and its address.
        err = await _call(c.address(follower), "AddMember", _add("n4", c.address("n4")))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        meta = dict(cast("Iterable[tuple[str, str]]", err.trailing_metadata()))
        assert meta[LEADER_ID_KEY] == lead and meta[LEADER_ADDR_KEY] == c.address(lead)
        err = await _call(
            c.address(follower), "RemoveMember", client_pb2.RemoveMemberRequest(id=lead)
        )
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        # Add of a member: ALREADY_EXISTS.
        err = await _call(c.address(lead), "AddMember", _add(follower, c.address(follower)))
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS, err.details()
        # Remove of a non-member: NOT_FOUND.
        err = await _call(c.address(lead), "RemoveMember", client_pb2.RemoveMemberRequest(id="n9"))
        assert err.code() == grpc.StatusCode.NOT_FOUND, err.details()
        # Bad id or address: INVALID_ARGUMENT.
        for request in (_add("bad id!", c.address("n4")), _add("n4", "nowhere"), _add("n4", "")):
            err = await _call(c.address(lead), "AddMember", request)
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        err = await _call(c.address(lead), "AddMember", _add("n4", c.address(follower)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, "address of another member"
        err = await _call(c.address(lead), "RemoveMember", client_pb2.RemoveMemberRequest(id=""))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _state(leader) == before
        for node_id in ("n1", "n2", "n3"):
            assert set(c.nodes[node_id].members().voters) == {"n1", "n2", "n3"}

    run(tmp_path, body)


def test_change_while_one_is_pending_is_aborted(tmp_path: Path) -> None:
    """Reference: thesis 4.1: no new config entry while an earlier one is uncommitted.

    Both followers are stopped, so the first change cannot commit; the second,
    asked at once, is refused (ABORTED over gRPC) and appends nothing.
    """

    async def body(c: MemberCluster) -> None:
        lead = await c.wait_leader(["n1", "n2", "n3"])
        async with KVClient(list(c.initial.values()), deadline_s=15) as kv:
            await kv.put("k", b"v")
        leader = c.nodes[lead]
        for node_id in ("n1", "n2", "n3"):
            if node_id != lead:
                await c.stop(node_id)
        first = leader.add_member("n4", c.address("n4"))
        before = _state(leader)
        assert before[1] == {"n4": c.address("n4")} and before[2] == first
        with pytest.raises(MembershipBlockedError, match="not committed"):
            leader.remove_member("n4")
        assert _state(leader) == before
        if leader.role.value == "leader":  # check-quorum may depose it meanwhile
            err = await _call(c.address(lead), "AddMember", _add("n5", "127.0.0.1:1"))
            assert err.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION)
            if err.code() == grpc.StatusCode.ABORTED:
                assert "not committed" in (err.details() or "")
        assert set(_state(leader)[1]) == {"n4"}
        # Status reports the config in use, uncommitted learner included.
        async with aio.insecure_channel(c.address(lead)) as channel:
            stub = client_pb2_grpc.RaftClientStub(channel)
            status = await stub.Status(client_pb2.StatusRequest(), timeout=5)
        assert dict(status.learners) == {"n4": c.address("n4")}
        assert set(status.members) == {"n1", "n2", "n3"}

    run(tmp_path, body)


def test_last_voter_cannot_be_removed(tmp_path: Path) -> None:
    """Reference: thesis 4.2.2: a config needs a voter; removing the last one is refused."""

    async def body(c: MemberCluster) -> None:
        await c.wait_leader(["n1"])
        async with KVClient([c.address("n1")], deadline_s=15) as kv:
            await kv.put("k", b"v")
        before = _state(c.nodes["n1"])
        err = await _call(c.address("n1"), "RemoveMember", client_pb2.RemoveMemberRequest(id="n1"))
        assert err.code() == grpc.StatusCode.ABORTED
        assert "voter" in (err.details() or "")
        assert _state(c.nodes["n1"]) == before

    run(tmp_path, body, n=1, spare=0)


def test_list_members_on_every_node(tmp_path: Path) -> None:
    """Reference: thesis 4.1: every node answers from the config it uses; the leader has match."""

    async def body(c: MemberCluster) -> None:
        lead = await c.wait_leader(["n1", "n2", "n3"])
        for node_id in ("n1", "n2", "n3"):
            async with aio.insecure_channel(c.address(node_id)) as channel:
                stub = client_pb2_grpc.RaftClientStub(channel)
                resp = await stub.ListMembers(client_pb2.ListMembersRequest(), timeout=5)
            assert [(m.member.id, m.member.address, m.voter) for m in resp.members] == [
                (i, c.address(i), True) for i in ("n1", "n2", "n3")
            ]
            assert resp.config_index == 0 and resp.committed and resp.leader == lead
            status = c.nodes[node_id].status()
            assert dict(status.voters) == c.initial and dict(status.learners) == {}

    run(tmp_path, body)


def test_joiner_waits_and_strangers_stay_out(tmp_path: Path) -> None:
    """Reference: thesis 4.2.1: a joining node knows no config, never campaigns, and waits.

    Messages from a node outside the config in use are refused (PERMISSION_DENIED),
    except a leader's append of the current term or later, which a new member must obey;
    a stale one from a stranger is refused too, and nothing changes.
    """

    async def body(c: MemberCluster) -> None:
        lead = await c.wait_leader(["n1", "n2", "n3"])
        joiner = await c.start("n4", join=True)
        await asyncio.sleep(1.0)  # several election timeouts
        assert joiner.term == 0 and joiner.role.value == "follower"
        assert joiner.members().voters == {} and joiner.dialed_peers == {}
        follower = next(i for i in ("n1", "n2", "n3") if i != lead)
        node = c.nodes[follower]
        before = _state(node)
        term = node.term
        vote = raft_pb2.VoteRequest(
            cluster_id=CLUSTER_ID, sender="n4", term=term + 5, last_log_index=99, last_log_term=1
        )
        stale = raft_pb2.AppendRequest(cluster_id=CLUSTER_ID, sender="n9", term=max(0, term - 1))
        async with aio.insecure_channel(c.address(follower)) as channel:
            for method, pb in (("RequestVote", vote), ("AppendEntries", stale)):
                call = channel.unary_unary(f"/raftwright.v1.RaftPeer/{method}", None, None)
                with pytest.raises(aio.AioRpcError) as info:
                    await call(pb.SerializeToString(), timeout=5)
                assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, method
        assert _state(node) == before

    run(tmp_path, body)
