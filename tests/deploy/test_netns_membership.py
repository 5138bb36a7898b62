"""Multi-host rehearsal of a membership change: add a fourth machine, retire the leader.

This is the tested form of "Adding and removing nodes" in docs/deploy.md.
Three namespaces run n1-n3 from their TOML files with mutual TLS, as in
test_netns.py (whose Rehearsal this reuses); a fourth machine gets a
certificate naming its address and ``raftwright://<cluster>/n4`` (the
documented openssl commands), starts ``raftwright node --config n4.toml``
with ``join = true`` and no peers, and the operator, on the client machine,
runs ``raftwright member add ... --wait`` while a client keeps writing. Then
``raftwright member remove`` retires the current leader while writes go on,
its process is stopped, and ``raftwright member list --json`` must show
exactly {n2, n3, n4} (the survivors) as voters of a committed config. The new
leader's link is cut: the other two of the new config must elect a leader
that serves writes. Finally every acknowledged write must be in the durable
store of every member of the new config.

The member commands are built by ``member_command`` below, and
tests/deploy/test_docs.py requires that the commands docs/deploy.md gives
are the same ones.

Reference: Raft thesis section 4.1 (one server at a time), 4.2.1 (a new
server catches up as a non-voting learner before it counts), 4.2.2 (a
leader that removes itself steps down once the new config commits), Raft
paper section 5.2 (failover) and 5.4 (committed entries survive leaders).

Skipped, with the reason, when not root, when namespaces cannot be built, or
when openssl is not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ._netns import PrivateNetwork
from ._openssl import make_leaf
from ._procs import ROOT, NodeProcess, cli_command, replay_store, start_node, stop_nodes
from .test_netns import (
    CLUSTER_ID,
    METRICS_PORT,
    NODE_IDS,
    PORT,
    Rehearsal,
    rehearsal_or_skip,
    wait_until,
)

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(180)]

SUBNET = "10.213.8"
NEW_ID = "n4"
WAIT_S = 60  # member add --wait, as docs/deploy.md gives it


def member_command(op: str, cluster: str, tls: Sequence[str], *rest: str) -> list[str]:
    """member_command is ``raftwright member OP --cluster C TLS...`` plus rest (argv after
    ``raftwright``); docs/deploy.md gives these same commands (tests/deploy/test_docs.py)."""
    return ["member", op, "--cluster", cluster, *tls, *rest]


def add_command(cluster: str, tls: Sequence[str], node_id: str, address: str) -> list[str]:
    return member_command("add", cluster, tls, f"{node_id}={address}", "--wait", str(WAIT_S))


def remove_command(cluster: str, tls: Sequence[str], node_id: str) -> list[str]:
    return member_command("remove", cluster, tls, node_id)


def list_command(cluster: str, tls: Sequence[str]) -> list[str]:
    return member_command("list", cluster, tls, "--json")


def join_config(
    node_id: str, listen: str, data_dir: str, cert_dir: str, metrics_listen: str
) -> str:
    """join_config is the TOML of a machine that joins a running cluster.

    ``join = true`` and no ``[peers]``: it learns the config from the leader
    that adds it and never campaigns before (Raft thesis 4.2.1).
    """
    return (
        f'id = "{node_id}"\n'
        f'listen = "{listen}"\n'
        f'data_dir = "{data_dir}"\n'
        f'cluster_id = "{CLUSTER_ID}"\n'
        f'metrics_listen = "{metrics_listen}"\n'
        'log_format = "json"\n'
        "join = true\n"
        f'\n[tls]\ncert = "{cert_dir}/{node_id}.crt"\nkey = "{cert_dir}/{node_id}.key"\n'
        f'ca = "{cert_dir}/ca.crt"\n'
    )


class MembershipRehearsal(Rehearsal):
    """MembershipRehearsal: Rehearsal plus the joining machine and the member commands."""

    def __init__(self, net: PrivateNetwork, root: Path) -> None:
        super().__init__(net, root)
        address = net.machines[NEW_ID].address
        make_leaf(self.certs, NEW_ID, [f"IP:{address}", f"URI:raftwright://{CLUSTER_ID}/{NEW_ID}"])
        self.new_address = f"{address}:{PORT}"

    def start_joiner(self) -> None:
        address = self.net.machines[NEW_ID].address
        path = self.root / f"{NEW_ID}.toml"
        path.write_text(
            join_config(NEW_ID, self.new_address, NEW_ID, "certs", f"{address}:{METRICS_PORT}")
        )
        self.nodes[NEW_ID] = start_node(
            NEW_ID,
            ["--config", str(path)],
            self.root / f"{NEW_ID}.log",
            prefix=self.net.machines[NEW_ID].exec_prefix(),
        )

    def wait_for_key(self, key: str) -> None:
        """wait_for_key waits until key is readable: a background writer has started."""
        wait_until(lambda: self.driver("get", key)["values"][key], 30, f"{key} written")

    def cli(self, argv: list[str], timeout_s: float = 90) -> subprocess.CompletedProcess[str]:
        """cli runs ``raftwright ARGV`` on the client machine."""
        return subprocess.run(
            [*self.client.exec_prefix(), *cli_command(*argv)],
            cwd=ROOT, check=False, capture_output=True, text=True, timeout=timeout_s,
        )  # fmt: skip

    def members(self, cluster: str) -> dict[str, Any] | None:
        """members is ``member list --json`` when it answers (None when it does not)."""
        result = self.cli(list_command(cluster, self.client_tls), timeout_s=30)
        if result.returncode != 0:
            return None
        view: dict[str, Any] = json.loads(result.stdout)
        return view

    def writer(self, prefix: str, cluster: str) -> Writer:
        """writer starts the KV driver on the client machine, writing until stopped."""
        stop = self.root / f"stop-{prefix}"
        process = subprocess.Popen(
            [*self.client.exec_prefix(), sys.executable, "-m", "tests.deploy._driver", "put",
             "--prefix", prefix, "--count", "1", "--until", str(stop), "--deadline", "20",
             "--cluster", cluster, *self.client_tls],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        return Writer(process, stop)


class Writer:
    """Writer is a background KV driver that writes one key after another until finish()."""

    def __init__(self, process: subprocess.Popen[str], stop: Path) -> None:
        self.process = process
        self.stop = stop

    def finish(self) -> dict[str, Any]:
        """finish stops the writer after its current write and returns the driver's JSON."""
        self.stop.touch()
        out, err = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, f"writer failed: {err}"
        result: dict[str, Any] = json.loads(out)
        return result

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=10)


def acked_between(result: dict[str, Any], start: float, end: float) -> int:
    """acked_between counts the writes acknowledged in [start, end] (time.monotonic())."""
    return sum(1 for at in result["acked_at"].values() if start <= at <= end)


def test_add_a_machine_retire_the_leader_and_fail_over(tmp_path: Path) -> None:
    machines = [*NODE_IDS, NEW_ID, "client"]
    net = PrivateNetwork(SUBNET, machines, host_numbers=(1, 2, 3, 4, 100))
    rehearsal = rehearsal_or_skip(net, tmp_path, MembershipRehearsal)
    writers: list[Writer] = []
    retired: list[NodeProcess] = []
    try:
        for node_id in NODE_IDS:
            rehearsal.start(node_id)
        rehearsal.start_joiner()
        old = ",".join(rehearsal.addresses[i] for i in NODE_IDS)
        first = wait_until(rehearsal.leader, 60, "a leader all three nodes follow")
        acked: dict[str, str] = {}
        before = rehearsal.driver("put", "--prefix", "before-", "--count", "5", cluster=[old])
        assert not before["failed"], before
        acked.update(before["acked"])

        # The joiner waits: it never campaigned, knows no leader, and has nothing.
        m4 = rehearsal.metrics(NEW_ID)
        me = frozenset({("node", NEW_ID)})
        assert m4["raftwright_elections_total", me] == 0, m4
        assert m4["raftwright_is_leader_known", me] == 0, m4
        assert m4["raftwright_commit_index", me] == 0, m4

        # Add n4 while a client writes (thesis 4.2.1: it catches up as a learner first).
        writers.append(rehearsal.writer("adding-", old))
        rehearsal.wait_for_key("adding-0")
        start = time.monotonic()
        added = rehearsal.cli(add_command(old, rehearsal.client_tls, NEW_ID, rehearsal.new_address))
        end = time.monotonic()
        assert added.returncode == 0, added.stdout + added.stderr
        assert f"{NEW_ID} is a voter" in added.stdout, added.stdout
        during_add = writers.pop().finish()
        assert acked_between(during_add, start, end) > 0, (start, end, during_add)
        acked.update(during_add["acked"])
        rehearsal.addresses[NEW_ID] = rehearsal.new_address

        # Retire the leader while a client writes (thesis 4.2.2: it steps down once the
        # config without it commits), then stop its process, as the procedure says.
        everyone = ",".join(rehearsal.addresses.values())
        survivors = tuple(i for i in (*NODE_IDS, NEW_ID) if i != first)
        new = ",".join(rehearsal.addresses[i] for i in survivors)
        writers.append(rehearsal.writer("removing-", everyone))
        rehearsal.wait_for_key("removing-0")
        start = time.monotonic()
        removed = rehearsal.cli(remove_command(everyone, rehearsal.client_tls, first))
        assert removed.returncode == 0, removed.stdout + removed.stderr

        def retired_config() -> dict[str, Any] | None:
            view = rehearsal.members(new)
            if view is None or not view["committed"] or view["leader"] is None:
                return None
            return view

        view = wait_until(retired_config, 60, f"a committed config without {first}")
        end = time.monotonic()
        voters = {m["id"] for m in view["members"] if m["voter"]}
        assert voters == set(survivors), view
        assert {m["id"] for m in view["members"]} == set(survivors), view
        during_remove = writers.pop().finish()
        assert acked_between(during_remove, start, end) > 0, (start, end, during_remove)
        acked.update(during_remove["acked"])
        old_leader = rehearsal.nodes.pop(first)
        retired.append(old_leader)
        del rehearsal.addresses[first]
        assert stop_nodes([old_leader]) == {first: 0}, old_leader.output()[-3000:]

        second = wait_until(lambda: rehearsal.leader(among=survivors), 60, "a leader of the rest")
        after = rehearsal.driver("put", "--prefix", "after-", "--count", "5", cluster=[new])
        assert not after["failed"], after
        acked.update(after["acked"])

        # Failover in the new config: cut the new leader off; the other two are its majority.
        rest = tuple(i for i in survivors if i != second)
        net.cut(second)
        third = wait_until(lambda: rehearsal.leader(among=rest), 60, f"a new leader among {rest}")
        assert third != second
        cut = rehearsal.driver("put", "--prefix", "cut-", "--count", "5", cluster=[new])
        assert not cut["failed"], cut
        acked.update(cut["acked"])
        net.heal(second)
        wait_until(lambda: rehearsal.leader(among=survivors), 60, "all three following one leader")
        read = rehearsal.driver("get", *sorted(acked), cluster=[new])
        assert read["values"] == acked

        def converged() -> int | None:
            nodes = rehearsal.status()
            applied = {n["applied_index"] for n in nodes}
            commits = {n["commit_index"] for n in nodes}
            if len(nodes) == len(survivors) and len(applied) == 1 and applied == commits:
                (index,) = applied
                return None if index is None else int(index)
            return None

        applied = wait_until(converged, 60, "the new config applying one commit index")
        codes = stop_nodes(list(rehearsal.nodes.values()))
        assert codes == dict.fromkeys(survivors, 0), (codes, rehearsal.logs())
        for node_id in survivors:
            machine = replay_store(tmp_path / node_id, applied)
            for key, value in acked.items():
                got = machine.get(key)
                assert got == value.encode(), (node_id, key, got)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{rehearsal.logs()}") from None
    finally:
        for writer in writers:
            writer.kill()
        stop_nodes([*rehearsal.nodes.values(), *retired], timeout_s=5)
        failures = net.destroy()
        assert not failures, failures
