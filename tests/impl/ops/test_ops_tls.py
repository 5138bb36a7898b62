"""TLS and mutual TLS on a real loopback cluster, and who is refused.

A node admits only what passes both gates: the TLS handshake (mutual TLS: a
certificate signed by the cluster's CA) and then the cluster-id and sender
check of every peer message. A member that fails either gate must not move
anyone's state: its messages never reach the core (checked in the receivers'
traces, which record every message the core is given).
Reference: Raft paper section 5 assumes messages come from cluster members;
section 5.1 (servers communicate only with each other and with clients).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from grpc import aio

from impl import ConfigError, KVClient, RaftClient
from impl._security import TlsConfig, load_tls

from ._certs import CertAuthority
from ._opsutil import CLUSTER_ID, NodeSpec, OpsCluster, trace_events, wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]


def test_load_tls_names_the_bad_file(tmp_path: Path) -> None:
    ca = CertAuthority(tmp_path / "a")
    n1, n2 = ca.issue("n1"), ca.issue("n2")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = [
        (TlsConfig(cert=tmp_path / "missing.crt", key=n1.key), "does not exist"),
        (TlsConfig(cert=junk, key=n1.key), "holds no PEM certificate"),
        (TlsConfig(cert=n1.cert, key=junk), "holds no PEM private key"),
        (TlsConfig(cert=n1.cert, key=n2.key), "does not match the certificate"),
        (TlsConfig(cert=n1.cert, key=n1.key, ca=junk), "holds no PEM certificate"),
        (TlsConfig(ca=tmp_path / "nope.pem"), "does not exist"),
    ]
    for config, message in cases:
        with pytest.raises(ConfigError, match=message):
            load_tls(config)
    with pytest.raises(ConfigError, match="together"):
        TlsConfig(cert=n1.cert)
    with pytest.raises(ConfigError, match="give cert and key"):
        TlsConfig()
    loaded = load_tls(n1.tls())
    assert loaded.cert is not None and loaded.ca is not None


async def _refused(address: str, tls: TlsConfig | None) -> str:
    """_refused: one Status call must fail (the handshake or the plaintext is refused)."""
    async with RaftClient([address], tls=tls) as client:
        with pytest.raises(aio.AioRpcError) as info:
            await client.status(address, timeout_s=2.0)
    return info.value.code().name


def test_mutual_tls_cluster_commits_and_refuses_clients_without_the_right_certificate(
    tmp_path: Path,
) -> None:
    good = CertAuthority(tmp_path / "good", "good-ca")
    other = CertAuthority(tmp_path / "other", "other-ca")
    client_leaf = good.issue("client")
    stranger = other.issue("client")

    async def scenario() -> None:
        cluster = OpsCluster(tmp_path)
        try:
            for node_id in cluster.peers:
                leaf = good.issue_node(node_id, CLUSTER_ID)
                await cluster.start(node_id, NodeSpec(tls=leaf.tls()))
            await cluster.wait_leader(list(cluster.peers))
            async with KVClient(cluster.addresses, tls=client_leaf.tls()) as kv:
                for i in range(5):
                    await kv.put(f"k{i}", f"v{i}".encode())
                assert await kv.get("k4") == b"v4"
            leader = cluster.leader()
            assert leader is not None
            # Every member applied the writes: peer traffic is TLS too.
            await wait_for(
                lambda: all(n.applied_index >= 5 for n in cluster.nodes.values()) or None,
                10,
                f"all nodes applied the writes: {[n.status() for n in cluster.nodes.values()]}",
            )
            address = cluster.peers[leader]
            # No client certificate (server-verified TLS only): mTLS refuses the handshake.
            assert await _refused(address, TlsConfig(ca=good.ca_path)) == "UNAVAILABLE"
            # A certificate from another CA.
            assert await _refused(address, stranger.tls(ca=good.ca_path)) == "UNAVAILABLE"
            # Plaintext.
            assert await _refused(address, None) == "UNAVAILABLE"
            # A client that trusts another CA does not accept the node either.
            assert await _refused(address, stranger.tls()) == "UNAVAILABLE"
            # The cluster still serves the right client afterwards.
            async with KVClient(cluster.addresses, tls=client_leaf.tls()) as kv:
                assert await kv.get("k0") == b"v0"
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())


async def _outsider_never_reaches_the_core(
    tmp_path: Path,
    members: dict[str, NodeSpec],
    outsider: NodeSpec,
    client_tls: TlsConfig | None,
) -> None:
    cluster = OpsCluster(tmp_path)
    try:
        for node_id, member in members.items():
            member.trace = True
            await cluster.start(node_id, member)
        await cluster.start("n3", outsider)
        leader = await cluster.wait_leader(["n1", "n2"])
        async with KVClient(cluster.addresses[:2], tls=client_tls) as kv:
            for i in range(3):
                await kv.put(f"k{i}", b"x")
        # Several election timeouts pass: the outsider campaigns again and again.
        await asyncio.sleep(1.5)
        n3 = cluster.nodes["n3"]
        assert n3.leader_id is None
        assert n3.status().commit_index == 0
        assert cluster.nodes[leader].status().peers["n3"][0] == 0  # no append ever matched
        assert cluster.nodes[leader].status().commit_index >= 3
    finally:
        await cluster.stop_all()
    for receiver in ("n1", "n2"):
        events = list(trace_events(tmp_path / "trace" / f"node-{receiver}.ndjson"))
        assert any(e["i"] == "recv" for e in events), "the trace records received messages"
        stepped = [
            e for e in events if e["i"] == "recv" and e["m"]["from"] == "n3" and "err" not in e
        ]
        assert stepped == [], f"{receiver}'s core stepped messages from the outsider"


def test_node_with_a_certificate_from_another_ca_cannot_join(tmp_path: Path) -> None:
    good = CertAuthority(tmp_path / "good", "good-ca")
    other = CertAuthority(tmp_path / "other", "other-ca")
    # n1 and n2 have the cluster CA's leaves; the outsider n3 has its own CA and trusts it.
    members = {i: NodeSpec(tls=good.issue_node(i, CLUSTER_ID).tls()) for i in ("n1", "n2")}
    asyncio.run(
        _outsider_never_reaches_the_core(
            tmp_path,
            members,
            NodeSpec(tls=other.issue_node("n3", CLUSTER_ID).tls()),
            good.issue("client").tls(),
        )
    )


def test_node_of_another_cluster_id_cannot_join(tmp_path: Path) -> None:
    """Reference: the cluster id check on every message (WrongCluster), via the real transport."""
    asyncio.run(
        _outsider_never_reaches_the_core(
            tmp_path,
            {"n1": NodeSpec(), "n2": NodeSpec()},
            NodeSpec(cluster_id="another-cluster"),
            None,
        )
    )


def test_server_tls_without_a_ca_needs_no_client_certificate(tmp_path: Path) -> None:
    """cert + key without ca: encrypted, the server verified by the client, no client cert."""
    ca = CertAuthority(tmp_path / "pki")

    async def scenario() -> None:
        cluster = OpsCluster(tmp_path, n=1)
        try:
            await cluster.start("n1", NodeSpec(tls=ca.issue("n1").tls(mutual=False)))
            await cluster.wait_leader(["n1"])
            async with KVClient(cluster.addresses, tls=TlsConfig(ca=ca.ca_path)) as kv:
                await kv.put("k", b"v")
                assert await kv.get("k") == b"v"
            assert await _refused(cluster.addresses[0], None) == "UNAVAILABLE"
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())
