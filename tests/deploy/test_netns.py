"""Multi-host rehearsal: three machines in three network namespaces, one link cut.

This is the tested form of the three-machine deployment in docs/deploy.md.
Each node runs as ``raftwright node`` in its own namespace with its own
address on a private 10.213.7.0/24 subnet and its own data dir; a fourth
namespace is the client machine. The test writes through the KV client, cuts
the leader's link, requires a new leader among the two that still form a
majority and that it serves writes and linearizable reads, requires that the
cut-off old leader acknowledges nothing, heals the link, and finally requires
that every acknowledged write is in every node's durable store.

Reference: Raft paper section 5.2 (a new leader is elected when the old one
is unreachable), section 5.3 and 5.4 (a committed entry is in the logs of all
future leaders and every replica applies it), thesis section 6.4 (reads).

Skipped, with the reason, when not root or when namespaces cannot be built.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ._netns import Machine, NetnsUnavailable, PrivateNetwork
from ._procs import ROOT, NodeProcess, cluster_status, replay_store, start_node, stop_nodes

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(240)]

SUBNET = "10.213.7"
PORT = 7000
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


class Rehearsal:
    """Rehearsal holds the network, the node processes and the client machine."""

    def __init__(self, net: PrivateNetwork, root: Path) -> None:
        self.net = net
        self.root = root
        self.nodes: dict[str, NodeProcess] = {}
        self.addresses = {i: f"{net.machines[i].address}:{PORT}" for i in NODE_IDS}

    @property
    def client(self) -> Machine:
        return self.net.machines["client"]

    def node_args(self, node_id: str) -> list[str]:
        peers = ",".join(f"{i}={a}" for i, a in self.addresses.items())
        return [
            "--id",
            node_id,
            "--listen",
            self.addresses[node_id],
            "--peers",
            peers,
            "--data-dir",
            str(self.root / node_id),
            "--cluster-id",
            CLUSTER_ID,
        ]

    def start(self, node_id: str) -> None:
        machine = self.net.machines[node_id]
        self.nodes[node_id] = start_node(
            node_id,
            self.node_args(node_id),
            self.root / f"{node_id}.log",
            prefix=machine.exec_prefix(),
        )

    def status(self) -> list[dict[str, Any]]:
        return cluster_status(list(self.addresses.values()), prefix=self.client.exec_prefix())

    def leader(self, among: tuple[str, ...] = NODE_IDS) -> str | None:
        """leader is the id that the reachable nodes among `among` all follow, if they agree."""
        nodes = [n for n in self.status() if n["id"] in among]
        leaders = {n["leader"] for n in nodes if n["role"] != "unreachable"}
        reachable = [n for n in nodes if n["role"] != "unreachable"]
        if len(reachable) != len(among) or len(leaders) != 1:
            return None
        (leader,) = leaders
        return leader if leader in among else None

    def driver(self, *args: str, cluster: list[str] | None = None) -> dict[str, Any]:
        """driver runs tests/deploy/_driver.py on the client machine and parses its JSON."""
        addresses = cluster if cluster is not None else list(self.addresses.values())
        cmd = [
            *self.client.exec_prefix(),
            sys.executable,
            "-m",
            "tests.deploy._driver",
            *args,
            "--cluster",
            ",".join(addresses),
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
    try:
        net.build()
    except NetnsUnavailable as exc:
        net.destroy()
        pytest.skip(f"network namespaces unavailable: {exc}")
    rehearsal = Rehearsal(net, tmp_path)
    try:
        for node_id in NODE_IDS:
            rehearsal.start(node_id)
        first = wait_until(rehearsal.leader, 60, "a leader all three nodes follow")

        before = rehearsal.driver("put", "--prefix", "before-", "--count", "10")
        assert not before["failed"], before
        acked: dict[str, str] = dict(before["acked"])

        # Cut the leader off: the other two are a majority and must elect one of themselves.
        rest = tuple(i for i in NODE_IDS if i != first)
        net.cut(first)
        second = wait_until(lambda: rehearsal.leader(among=rest), 60, f"a new leader among {rest}")
        assert second != first

        during = rehearsal.driver("put", "--prefix", "during-", "--count", "10")
        assert not during["failed"], during
        acked.update(during["acked"])

        # The cut-off old leader must acknowledge nothing (it cannot reach a majority).
        alone = rehearsal.driver(
            "put",
            "--prefix",
            "isolated-",
            "--count",
            "1",
            "--deadline",
            "3",
            cluster=[rehearsal.addresses[first]],
        )
        assert alone["acked"] == {}, alone

        read = rehearsal.driver("get", *sorted(acked))
        assert read["values"] == acked

        net.heal(first)
        wait_until(rehearsal.leader, 60, "all three nodes following one leader after healing")

        def converged() -> int | None:
            nodes = rehearsal.status()
            applied = {n["applied_index"] for n in nodes}
            commits = {n["commit_index"] for n in nodes}
            if len(applied) == 1 and applied == commits and None not in applied:
                (index,) = applied
                return int(index)
            return None

        applied = wait_until(converged, 60, "every node applying the same commit index")
        codes = stop_nodes(list(rehearsal.nodes.values()))
        assert codes == dict.fromkeys(NODE_IDS, 0), (codes, rehearsal.logs())

        for node_id in NODE_IDS:
            machine = replay_store(tmp_path / node_id, applied)
            for key, value in acked.items():
                got = machine.get(key)
                assert got == value.encode(), (node_id, key, got)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{rehearsal.logs()}") from None
    finally:
        stop_nodes(list(rehearsal.nodes.values()), timeout_s=5)
        failures = net.destroy()
        assert not failures, failures
