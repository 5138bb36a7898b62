"""Mutual TLS bound to node identity: a peer's certificate must name the node it speaks for.

The identity is the subjectAltName URI ``raftwright://<cluster-id>/<node-id>``
(impl/_security.py). A node refuses, with PERMISSION_DENIED and before
anything reaches its core, every peer message (on the stream or a unary peer
RPC) whose sender its caller's certificate does not name; it counts and logs
each refusal. Client calls need no identity. "Nothing reached the core" is
checked where the core would show it: a real RequestVote of a higher term
would raise the node's term (and is refused under a foreign certificate,
accepted under the sender's own), and the receivers' traces record every
message the core was given.
Reference: Raft paper section 5 (servers exchange RequestVote and
AppendEntries among the cluster's members only); section 5.1 (a server's
term rises on any RPC with a higher term, so a forged sender could depose
a leader).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest
from grpc import aio

from impl import ConfigError, KVClient, RaftClient
from impl._metrics import metrics_for
from impl._security import (
    PeerIdentityCheck,
    TlsConfig,
    certificate_node_ids,
    node_identity_uri,
)
from impl.generated import raft_pb2

from ._certs import CertAuthority, Leaf
from ._opsutil import CLUSTER_ID, NodeSpec, OpsCluster, trace_events, wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]


# ------------------------------------------------------------ the rule itself


def _ctx(*uris: str) -> dict[str, list[bytes]]:
    """_ctx is a grpc auth context as context.auth_context() returns it."""
    return {"transport_security_type": [b"ssl"], "peer_uri": [u.encode() for u in uris]}


def test_certificate_names_only_nodes_of_this_cluster() -> None:
    uri = node_identity_uri("prod kv/1", "n1")
    assert uri == "raftwright://prod%20kv%2F1/n1"
    assert certificate_node_ids(_ctx(uri), "prod kv/1") == {"n1"}
    assert certificate_node_ids(_ctx(uri), "prod") == frozenset()
    names = certificate_node_ids(
        _ctx(
            "raftwright://c/n2",
            "RAFTWRIGHT://c/n3",  # the scheme is case-insensitive (RFC 3986)
            "raftwright://other/n4",  # another cluster's node
            "spiffe://c/n5",
            "raftwright://c/a/b",  # not one node id
            "raftwright://c/",
            "raftwright:c/n6",
        ),
        "c",
    )
    assert names == {"n2", "n3"}
    assert certificate_node_ids({}, "c") == frozenset()  # plaintext: no certificate


def test_peer_identity_check_refuses_what_the_certificate_does_not_name() -> None:
    check = PeerIdentityCheck("c", enabled=True)
    n2 = check.names(_ctx("raftwright://c/n2"))
    assert check.refusal(n2, "n2") is None
    why = check.refusal(n2, "n3")
    assert why is not None and "['n2'] only" in why and "raftwright://c/n3" in why
    why = check.refusal(check.names(_ctx()), "n2")
    assert why is not None and "names no node of cluster 'c'" in why
    off = PeerIdentityCheck("c", enabled=False)
    assert off.names(_ctx()) is None and off.refusal(None, "n3") is None


def test_verify_peer_id_defaults_on_under_mutual_tls_and_is_validated() -> None:
    cert, key, ca = Path("n1.crt"), Path("n1.key"), Path("ca.pem")
    assert TlsConfig(cert=cert, key=key, ca=ca).verifies_peer_id
    assert not TlsConfig(cert=cert, key=key).verifies_peer_id  # server-only TLS
    assert not TlsConfig(cert=cert, key=key, ca=ca, verify_peer_id=False).verifies_peer_id
    with pytest.raises(ConfigError, match="verify_peer_id needs ca"):
        TlsConfig(cert=cert, key=key, verify_peer_id=True)
    with pytest.raises(ConfigError, match="verify_peer_id must be true or false"):
        TlsConfig(cert=cert, key=key, ca=ca, verify_peer_id="yes")  # type: ignore[arg-type]


# ------------------------------------------------------------ one node, direct calls


def _channel(address: str, leaf: Leaf) -> aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        leaf.ca.read_bytes(), leaf.key.read_bytes(), leaf.cert.read_bytes()
    )
    return aio.secure_channel(address, credentials)


def _vote(sender: str, term: int, *, prevote: bool) -> raft_pb2.VoteRequest:
    return raft_pb2.VoteRequest(
        cluster_id=CLUSTER_ID, sender=sender, term=term, prevote=prevote, last_log_index=0
    )


async def _unary_vote(address: str, leaf: Leaf, sender: str) -> grpc.StatusCode:
    """_unary_vote: a prevote (changes nothing) claiming sender, under leaf's certificate."""
    async with _channel(address, leaf) as channel:
        call = channel.unary_unary(
            "/raftwright.v1.RaftPeer/RequestVote",
            request_serializer=raft_pb2.VoteRequest.SerializeToString,
            response_deserializer=raft_pb2.VoteResponse.FromString,
        )
        try:
            await call(_vote(sender, 1, prevote=True), timeout=5)
        except aio.AioRpcError as err:
            return err.code()
        return grpc.StatusCode.OK


async def _stream(
    address: str, leaf: Leaf, messages: Sequence[raft_pb2.PeerMessage]
) -> tuple[grpc.StatusCode, str, list[raft_pb2.PeerBatch]]:
    """_stream writes one batch on RaftPeer.Stream, half-closes, reads to the end."""
    async with _channel(address, leaf) as channel:
        stub = channel.stream_stream(
            "/raftwright.v1.RaftPeer/Stream",
            request_serializer=raft_pb2.PeerBatch.SerializeToString,
            response_deserializer=raft_pb2.PeerBatch.FromString,
        )
        call = stub(iter([raft_pb2.PeerBatch(messages=list(messages))]), timeout=10)
        replies: list[raft_pb2.PeerBatch] = []
        try:
            async for batch in call:
                replies.append(batch)
        except aio.AioRpcError as err:
            return err.code(), err.details() or "", replies
        return grpc.StatusCode.OK, "", replies


def test_peer_rpcs_refuse_a_sender_the_certificate_does_not_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = CertAuthority(tmp_path / "pki")
    leaves = {i: ca.issue_node(i, CLUSTER_ID) for i in ("n1", "n2", "n3")}
    client = ca.issue("client")  # a client certificate: no node identity
    cn_only = ca.issue("n2", stem="n2-cn-only")  # CN = n2 but no identity URI
    foreign = ca.issue("n2", uris=[node_identity_uri("another", "n2")], stem="n2-foreign")
    shared = ca.issue(
        "shared", uris=[node_identity_uri(CLUSTER_ID, i) for i in ("n2", "n3")]
    )  # one certificate for two nodes (a StatefulSet's shared secret)
    denied, ok = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.OK

    async def scenario() -> None:
        # Only n1 runs; it cannot win an election alone, and a prevote changes no term.
        cluster = OpsCluster(tmp_path, election_timeout_ms=(2000, 4000), heartbeat_ms=100)
        try:
            n1 = await cluster.start("n1", NodeSpec(tls=leaves["n1"].tls()))
            address = cluster.peers["n1"]
            metrics = metrics_for(n1)
            # Unary: n2's certificate may speak for n2 only.
            assert await _unary_vote(address, leaves["n2"], "n2") == ok
            assert await _unary_vote(address, leaves["n2"], "n3") == denied
            assert await _unary_vote(address, client, "n2") == denied
            assert await _unary_vote(address, cn_only, "n2") == denied  # a CN is not an id
            assert await _unary_vote(address, foreign, "n2") == denied  # another cluster's n2
            assert await _unary_vote(address, shared, "n2") == ok
            assert await _unary_vote(address, shared, "n3") == ok
            assert metrics.peer_refusals.value("RequestVote", "identity") == 4
            # A client certificate is fine for client calls.
            async with RaftClient([address], tls=client.tls()) as raft:
                assert (await raft.status(address, timeout_s=5)).id == "n1"

            # Stream: a real vote of term 5 "from n3" under n2's certificate is refused
            # and n1's term does not move: nothing reached the core (section 5.1).
            term_before = n1.term
            vote_n3 = raft_pb2.PeerMessage(vote_request=_vote("n3", 5, prevote=False))
            vote_n2 = raft_pb2.PeerMessage(vote_request=_vote("n2", 5, prevote=False))
            code, details, replies = await _stream(address, leaves["n2"], [vote_n2, vote_n3])
            assert (code, replies) == (denied, [])
            assert "raftwright://ops-test/n3" in details
            assert n1.term == term_before < 5  # n2's vote of the same batch was not let in
            assert metrics.peer_refusals.value("Stream", "identity") == 1
            # The same vote under the sender's own certificate reaches the core.
            code, _, replies = await _stream(address, leaves["n2"], [vote_n2])
            assert code == ok and n1.term == 5
            (reply,) = [m.vote_response for b in replies for m in b.messages]
            assert (reply.sender, reply.granted, reply.request_term) == ("n1", True, 5)
            # ... and the stream's metrics saw one batch of one vote and its reply.
            assert metrics.stream_messages.value("n2", "vote") == 1
            assert metrics.stream_replies.value("n2", "vote_response") == 1
            assert metrics.stream_batch.count("n2") == 1
            assert metrics.stream_batch_messages.count("n2") == 1
            assert metrics.stream_messages.value("n3", "vote") == 0
            text = metrics.render(n1.status())
            assert (
                'raftwright_peer_refusals_total{node="n1",method="Stream",reason="identity"} 1'
            ) in text
        finally:
            await cluster.stop_all()

    with caplog.at_level(logging.WARNING, logger="raftwright.transport"):
        asyncio.run(scenario())
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any("(identity): sender 'n3' refused" in m for m in refusals), refusals


def test_verify_peer_id_off_admits_any_certificate_of_the_ca(tmp_path: Path) -> None:
    """The switch: with verify_peer_id = false, mutual TLS alone decides (the old rule)."""
    ca = CertAuthority(tmp_path / "pki")
    client = ca.issue("client")

    async def scenario() -> None:
        cluster = OpsCluster(tmp_path, election_timeout_ms=(2000, 4000), heartbeat_ms=100)
        try:
            tls = ca.issue_node("n1", CLUSTER_ID).tls(verify_peer_id=False)
            await cluster.start("n1", NodeSpec(tls=tls))
            address = cluster.peers["n1"]
            assert await _unary_vote(address, client, "n2") == grpc.StatusCode.OK
            # The sender must still be a member (the unknown-sender gate is separate).
            assert await _unary_vote(address, client, "n9") == grpc.StatusCode.PERMISSION_DENIED
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


# ------------------------------------------------------------ a real cluster


def test_n2s_certificate_cannot_speak_for_n3_and_n3s_own_certificate_joins(
    tmp_path: Path,
) -> None:
    """A process claiming n3 with n2's certificate gets no request into a core; n3's own joins.

    The impostor campaigns first (a short election timeout): its prevotes are
    refused on n1 and n2, so it can neither disrupt the leader nor be
    elected, and no request of it is stepped by their cores (their traces
    record every message a core is given). What this does not cover: the
    replies the impostor writes back on the streams n1 and n2 open to n3's
    address. A dialer verifies the server by the address its certificate
    names (the TLS hostname check), and here every test certificate names
    127.0.0.1; where each node's certificate names only its own host, n2's
    certificate at n3's address fails that check (docs/deploy.md).
    Reference: section 5.2 (elections), 5.3 (a follower that was unreachable
    catches up from the leader once it can be reached).
    """
    ca = CertAuthority(tmp_path / "pki")
    leaves = {i: ca.issue_node(i, CLUSTER_ID) for i in ("n1", "n2", "n3")}
    client = ca.issue("client")  # no identity: still a good client
    requests = {"vreq", "app", "snap", "tnow"}  # trace kinds of the requests

    async def scenario() -> None:
        # n1 and n2 wait long before they campaign; the impostor does not.
        cluster = OpsCluster(tmp_path, election_timeout_ms=(1500, 2500), heartbeat_ms=50)
        try:
            for node_id in ("n1", "n2"):
                await cluster.start(node_id, NodeSpec(tls=leaves[node_id].tls(), trace=True))
            impostor = NodeSpec(tls=leaves["n2"].tls(), election_timeout_ms=(150, 300))
            await cluster.start("n3", impostor)

            def refused() -> dict[str, int] | None:
                counts = {
                    i: metrics_for(cluster.nodes[i]).peer_refusals.value("Stream", "identity")
                    for i in ("n1", "n2")
                }
                return counts if all(counts.values()) else None

            await wait_for(refused, 10, "n1 and n2 refused the impostor's requests")
            leader = await cluster.wait_leader(["n1", "n2"])
            assert cluster.nodes["n3"].status().role != "leader"
            async with KVClient(cluster.addresses[:2], tls=client.tls()) as kv:
                for i in range(3):
                    await kv.put(f"k{i}", b"x")
            assert cluster.nodes[leader].status().commit_index >= 3
        finally:
            await cluster.stop_all()
        for receiver in ("n1", "n2"):
            events = list(trace_events(tmp_path / "trace" / f"node-{receiver}.ndjson"))
            assert any(e["i"] == "recv" for e in events), "the trace records received messages"
            stepped = [
                e
                for e in events
                if e["i"] == "recv" and e["m"]["from"] == "n3" and e["m"]["k"] in requests
            ]
            assert stepped == [], f"{receiver}'s core stepped requests from the impostor"

        # The same n3 (same address and data dir), now with its own certificate, catches up.
        peers = cluster.peers
        cluster = OpsCluster(tmp_path)
        cluster.peers = peers
        try:
            for node_id in ("n1", "n2", "n3"):
                await cluster.start(node_id, NodeSpec(tls=leaves[node_id].tls()))
            await cluster.wait_leader(["n1", "n2", "n3"])
            async with KVClient(cluster.addresses, tls=client.tls()) as kv:
                await kv.put("after", b"y")
            await wait_for(
                lambda: all(n.applied_index >= 4 for n in cluster.nodes.values()) or None,
                15,
                "every node, n3 included, applied the writes",
            )
            assert all(metrics_for(n).peer_refusals.total() == 0 for n in cluster.nodes.values())
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())
