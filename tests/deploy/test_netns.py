"""Multi-host rehearsal: three machines in three network namespaces, one link cut.

This is the tested form of the three-machine deployment in docs/deploy.md.
Each node runs as ``raftwright node --config nI.toml`` in its own namespace
with its own address on a private 10.213.7.0/24 subnet, its own data dir and
its own certificate (made with the openssl commands of docs/deploy.md), with
mutual TLS on for peer and client traffic; a fourth namespace is the client
machine. The test requires that a client without a certificate is refused,
writes through the KV client, cuts the leader's link, requires a new leader
among the two that still form a majority and that it serves writes and
linearizable reads, requires that the cut-off old leader acknowledges
nothing, heals the link, hands the leadership back to the old leader with
``raftwright transfer`` and reads every write from it, scrapes every node's
/metrics, and finally requires that every acknowledged write is in every
node's durable store. A second test runs n2's certificate on n3's machine
and requires that the impostor is refused both ways: its requests because
the certificate does not name n3, its address because it names n2's.

Reference: Raft paper section 5.2 (a new leader is elected when the old one
is unreachable), section 5.3 and 5.4 (a committed entry is in the logs of all
future leaders and every replica applies it), thesis section 6.4 (reads).

Skipped, with the reason, when not root, when namespaces cannot be built, or
when openssl is not installed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ._netns import Machine, NetnsUnavailable, PrivateNetwork
from ._openssl import OpensslUnavailable, make_ca, make_leaf
from ._procs import (
    ROOT,
    NodeProcess,
    cli_command,
    cluster_status,
    replay_store,
    start_node,
    stop_nodes,
)

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(240)]

SUBNET = "10.213.7"
PORT = 7000
METRICS_PORT = 9100
NODE_IDS = ("n1", "n2", "n3")
CLUSTER_ID = "netns-rehearsal"

T = TypeVar("T")


def wait_until(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """wait_until polls probe (every 0.2 s) until it returns a value, or fails saying what."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except AssertionError as exc:
            last_error = exc
            value = None
        if value is not None:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last_error})")


R = TypeVar("R", bound="Rehearsal")


def rehearsal_or_skip(
    net: PrivateNetwork, root: Path, make: Callable[[PrivateNetwork, Path], R]
) -> R:
    """rehearsal_or_skip builds the namespaces and ``make(net, root)``'s rehearsal on them.

    The test is skipped, with the reason, where namespaces or certificates cannot be made;
    no namespace is left behind when either fails.
    """
    try:
        net.build()
    except NetnsUnavailable as exc:
        net.destroy()
        pytest.skip(f"network namespaces unavailable: {exc}")
    try:
        return make(net, root)
    except OpensslUnavailable as exc:
        net.destroy()
        pytest.skip(f"certificates cannot be made: {exc}")
    except BaseException:
        net.destroy()
        raise


_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """parse_metrics reads Prometheus text samples into {(name, labels): value}."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        samples[match["name"], labels] = float(match["value"])
    return samples


class Rehearsal:
    """Rehearsal holds the network, certificates, node processes and the client machine."""

    def __init__(self, net: PrivateNetwork, root: Path) -> None:
        self.net = net
        self.root = root
        self.nodes: dict[str, NodeProcess] = {}
        self.addresses = {i: f"{net.machines[i].address}:{PORT}" for i in NODE_IDS}
        self.certs = root / "certs"
        make_ca(self.certs)
        for node_id in NODE_IDS:
            # The address peers dial, and the node it is (impl/_security.py, docs/deploy.md).
            sans = [
                f"IP:{net.machines[node_id].address}",
                f"URI:raftwright://{CLUSTER_ID}/{node_id}",
            ]
            make_leaf(self.certs, node_id, sans)
        make_leaf(self.certs, "client", [], server=False)
        self.client_tls = [
            "--tls-ca", str(self.certs / "ca.crt"),
            "--tls-cert", str(self.certs / "client.crt"),
            "--tls-key", str(self.certs / "client.key"),
        ]  # fmt: skip

    @property
    def client(self) -> Machine:
        return self.net.machines["client"]

    def write_config(self, node_id: str, cert_of: str | None = None) -> Path:
        """write_config writes nI.toml as docs/deploy.md shows it (one file per node).

        cert_of gives the node another node's certificate (an impostor).
        """
        cert = cert_of or node_id
        address = self.net.machines[node_id].address
        peers = "\n".join(f'{i} = "{a}"' for i, a in self.addresses.items())
        path = self.root / f"{node_id}.toml"
        path.write_text(
            f'id = "{node_id}"\n'
            f'listen = "{address}:{PORT}"\n'
            f'data_dir = "{node_id}"\n'  # relative to the file's folder
            f'cluster_id = "{CLUSTER_ID}"\n'
            f'metrics_listen = "{address}:{METRICS_PORT}"\n'
            'log_format = "json"\n'
            f"\n[peers]\n{peers}\n"
            f'\n[tls]\ncert = "certs/{cert}.crt"\nkey = "certs/{cert}.key"\n'
            'ca = "certs/ca.crt"\n'
        )
        return path

    def start(self, node_id: str, cert_of: str | None = None) -> None:
        machine = self.net.machines[node_id]
        config = self.write_config(node_id, cert_of)
        self.nodes[node_id] = start_node(
            node_id,
            ["--config", str(config)],
            self.root / f"{node_id}.log",
            prefix=machine.exec_prefix(),
        )

    def status(self) -> list[dict[str, Any]]:
        return cluster_status(
            list(self.addresses.values()), prefix=self.client.exec_prefix(), extra=self.client_tls
        )

    def metrics(self, node_id: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """metrics scrapes node_id's /metrics from the client machine."""
        url = f"http://{self.net.machines[node_id].address}:{METRICS_PORT}/metrics"
        script = (
            f"import urllib.request as u; print(u.urlopen({url!r}, timeout=10).read().decode())"
        )
        result = subprocess.run(
            [*self.client.exec_prefix(), sys.executable, "-c", script],
            check=False, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 0, f"scrape of {url} failed: {result.stderr}"
        return parse_metrics(result.stdout)

    def leader(self, among: tuple[str, ...] = NODE_IDS) -> str | None:
        """leader is the id that the reachable nodes among `among` all follow, if they agree."""
        nodes = [n for n in self.status() if n["id"] in among]
        leaders = {n["leader"] for n in nodes if n["role"] != "unreachable"}
        reachable = [n for n in nodes if n["role"] != "unreachable"]
        if len(reachable) != len(among) or len(leaders) != 1:
            return None
        (leader,) = leaders
        return leader if leader in among else None

    def driver(
        self,
        *args: str,
        cluster: list[str] | None = None,
        tls: list[str] | None = None,
        on: str = "client",
    ) -> dict[str, Any]:
        """driver runs tests/deploy/_driver.py on machine `on` and parses its JSON.

        tls defaults to the client certificate (mutual TLS); pass [] for none.
        """
        addresses = cluster if cluster is not None else list(self.addresses.values())
        cmd = [
            *self.net.machines[on].exec_prefix(),
            sys.executable,
            "-m",
            "tests.deploy._driver",
            *args,
            "--cluster",
            ",".join(addresses),
            *(self.client_tls if tls is None else tls),
        ]
        result = subprocess.run(
            cmd, cwd=ROOT, check=False, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"driver {args} failed: {result.stderr}"
        out: dict[str, Any] = json.loads(result.stdout)
        return out

    def logs(self) -> str:
        return "\n".join(f"--- {i}\n{n.output()[-3000:]}" for i, n in self.nodes.items())


def test_three_namespaces_failover_and_no_lost_write(tmp_path: Path) -> None:
    net = PrivateNetwork(SUBNET, [*NODE_IDS, "client"], host_numbers=(1, 2, 3, 100))
    rehearsal = rehearsal_or_skip(net, tmp_path, Rehearsal)
    try:
        for node_id in NODE_IDS:
            rehearsal.start(node_id)
        first = wait_until(rehearsal.leader, 60, "a leader all three nodes follow")

        # Mutual TLS: a client with no certificate, or none at all, gets nothing written.
        ca_only = ["--tls-ca", str(rehearsal.certs / "ca.crt")]
        for tls in (ca_only, []):
            refused = rehearsal.driver(
                "put", "--prefix", "outsider-", "--count", "1", "--deadline", "3", tls=tls
            )
            assert refused["acked"] == {}, refused
        # A client certificate is not a node's: it cannot speak the peer protocol as n2.
        posed = rehearsal.driver(
            "peer-vote", "--sender", "n2", "--cluster-id", CLUSTER_ID,
            cluster=[rehearsal.addresses["n1"]],
        )  # fmt: skip
        assert posed["codes"] == {rehearsal.addresses["n1"]: "PERMISSION_DENIED"}, posed

        before = rehearsal.driver("put", "--prefix", "before-", "--count", "10")
        assert not before["failed"], before
        acked: dict[str, str] = dict(before["acked"])

        # Cut the leader off: the other two are a majority and must elect one of themselves.
        rest = tuple(i for i in NODE_IDS if i != first)
        net.cut(first)

        # A client on the cut-off machine still reaches the old leader (its own address is
        # local), which may still think it leads; it must acknowledge nothing, as it cannot
        # reach a majority. Reference: Raft paper sections 5.3 and 8, thesis 6.2.
        alone = rehearsal.driver(
            "put", "--prefix", "isolated-", "--count", "1", "--deadline", "3",
            cluster=[rehearsal.addresses[first]], on=first,
        )  # fmt: skip
        assert alone["acked"] == {}, alone

        second = wait_until(lambda: rehearsal.leader(among=rest), 60, f"a new leader among {rest}")
        assert second != first

        during = rehearsal.driver("put", "--prefix", "during-", "--count", "10")
        assert not during["failed"], during
        acked.update(during["acked"])

        read = rehearsal.driver("get", *sorted(acked))
        assert read["values"] == acked

        net.heal(first)
        wait_until(rehearsal.leader, 60, "all three nodes following one leader after healing")

        # The healed old leader caught up: hand it the leadership and read everything from it.
        # Reference: Raft thesis section 3.10 (leadership transfer).
        transfer = subprocess.run(
            [*rehearsal.client.exec_prefix(),
             *cli_command("transfer", "--cluster", ",".join(rehearsal.addresses.values()),
                          "--to", first, "--timeout", "20", *rehearsal.client_tls)],
            cwd=ROOT, check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert transfer.returncode == 0, transfer.stderr
        assert wait_until(rehearsal.leader, 30, f"{first} leading again") == first
        back = rehearsal.driver("get", *sorted(acked), cluster=[rehearsal.addresses[first]])
        assert back["values"] == acked

        def converged() -> int | None:
            nodes = rehearsal.status()
            applied = {n["applied_index"] for n in nodes}
            commits = {n["commit_index"] for n in nodes}
            if len(applied) == 1 and applied == commits and None not in applied:
                (index,) = applied
                return int(index)
            return None

        applied = wait_until(converged, 60, "every node applying the same commit index")

        # Scrape every node: the gauges agree with status, and the new leader saw an election.
        final = {n["id"]: n for n in rehearsal.status()}
        for node_id in NODE_IDS:
            samples = rehearsal.metrics(node_id)
            me = frozenset({("node", node_id)})
            assert samples["raftwright_applied_index", me] == applied
            assert samples["raftwright_term", me] == final[node_id]["term"]
            role = frozenset({("node", node_id), ("role", final[node_id]["role"])})
            assert samples["raftwright_role", role] == 1
            if node_id == second:
                assert samples["raftwright_elections_total", me] >= 1
            if node_id != first:  # the peer stream: first's appends (the writes, its no-op)
                kind = frozenset({("node", node_id), ("peer", first), ("kind", "append")})
                assert samples["raftwright_peer_stream_messages_total", kind] > 0
        identity = frozenset({("node", "n1"), ("method", "RequestVote"), ("reason", "identity")})
        assert rehearsal.metrics("n1")["raftwright_peer_refusals_total", identity] == 1
        codes = stop_nodes(list(rehearsal.nodes.values()))
        assert codes == dict.fromkeys(NODE_IDS, 0), (codes, rehearsal.logs())

        for node_id in NODE_IDS:
            machine = replay_store(tmp_path / node_id, applied)
            for key, value in acked.items():
                got = machine.get(key)
                assert got == value.encode(), (node_id, key, got)
            # The old leader's unacknowledged write was overwritten (section 5.3).
            assert machine.get("isolated-0") is None, node_id
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{rehearsal.logs()}") from None
    finally:
        stop_nodes(list(rehearsal.nodes.values()), timeout_s=5)
        failures = net.destroy()
        assert not failures, failures


def test_a_node_with_another_nodes_certificate_is_refused_both_ways(tmp_path: Path) -> None:
    """n3's machine runs a node with n2's certificate: it is refused in both directions.

    Its own requests (it campaigns: nobody answers it) are refused by n1 and
    n2, because n2's certificate does not name n3 (impl/_security.py); and n1,
    n2 and the client cannot reach it, because n2's certificate does not name
    n3's address (the TLS hostname check). n1 and n2 still form a majority
    and serve writes. Reference: Raft paper section 5.2 (two of three elect
    a leader), section 5 (servers exchange RPCs among the cluster's members).
    """
    net = PrivateNetwork(SUBNET, [*NODE_IDS, "client"], host_numbers=(1, 2, 3, 100))
    rehearsal = rehearsal_or_skip(net, tmp_path, Rehearsal)
    try:
        rehearsal.start("n1")
        rehearsal.start("n2")
        rehearsal.start("n3", cert_of="n2")
        refusal = frozenset({("method", "Stream"), ("reason", "identity")})

        def refused_by_both() -> bool | None:
            for node_id in ("n1", "n2"):
                key = ("raftwright_peer_refusals_total", refusal | {("node", node_id)})
                if rehearsal.metrics(node_id).get(key, 0) == 0:
                    return None
            return True

        wait_until(refused_by_both, 60, "n1 and n2 refusing the impostor's requests")
        wrote = rehearsal.driver("put", "--prefix", "k", "--count", "5")
        assert not wrote["failed"] and len(wrote["acked"]) == 5, wrote
        wait_until(lambda: rehearsal.leader(among=("n1", "n2")), 30, "a leader of n1 and n2")
        # The client cannot even reach the impostor: its certificate names 10.213.7.2.
        roles = {n["address"]: n["role"] for n in rehearsal.status()}
        assert roles[rehearsal.addresses["n3"]] == "unreachable", roles
        # The impostor never got an append in: it knows no leader and committed nothing.
        m3 = rehearsal.metrics("n3")
        me = frozenset({("node", "n3")})
        assert m3["raftwright_commit_index", me] == 0
        assert m3["raftwright_is_leader_known", me] == 0
        codes = stop_nodes(list(rehearsal.nodes.values()))
        assert codes == dict.fromkeys(NODE_IDS, 0), (codes, rehearsal.logs())
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{rehearsal.logs()}") from None
    finally:
        stop_nodes(list(rehearsal.nodes.values()), timeout_s=5)
        failures = net.destroy()
        assert not failures, failures
