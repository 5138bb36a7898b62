"""The chaos harness's own parts, and one short real run.

Reference: Raft paper section 5.1 (servers fail by stopping and restart from stable
storage; the network may lose, delay and partition messages), thesis section 6.3-6.4
(linearizable client operations) and 3.10 (availability after a leader failure).
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from properties.chaos import (
    ChaosConfig,
    FaultKind,
    Network,
    NodeProxy,
    RunReport,
    WorkloadConfig,
    final_line,
    member_schedule,
    run_chaos,
    schedule,
)


def test_schedule_is_a_function_of_the_seed() -> None:
    a = schedule(7, 200)
    assert a == schedule(7, 200)
    assert a != schedule(8, 200)
    assert {f.kind for f in a} == set(FaultKind)  # every kind is drawn
    assert all(f.duration_s > 0 and f.gap_s > 0 for f in a)


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass  # the proxy reset the connection
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _roundtrip(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1024), 2)
    except ConnectionResetError:
        return b""  # a cut link resets the connection
    finally:
        writer.close()


@pytest.mark.network
def test_node_proxy_cuts_only_the_partitioned_callers_and_heals() -> None:
    """The proxy knows the calling node of each connection and applies the link rules.

    This test process registers itself as node "a"; a connection from "a" to "b" is cut by
    a partition {a} | {b} and forwarded again once healed; one from an unregistered
    process (a client) is never cut. Reference: paper section 5.1 (the network may lose and
    partition messages between servers).
    """

    async def scenario() -> None:
        server, port = await _echo_server()
        net = Network()
        proxy = NodeProxy("b", port, net, random.Random(1))
        await proxy.start()
        try:
            assert await _roundtrip(proxy.port, b"hello") == b"hello"  # nobody: a client
            net.register(os.getpid(), "a")
            assert await _roundtrip(proxy.port, b"from a") == b"from a"
            net.partition([{"a"}, {"b"}], ["a", "b"])
            assert ("a", "b") in net.blocked and ("b", "a") in net.blocked
            assert await _roundtrip(proxy.port, b"lost") == b""
            assert proxy.refused >= 1
            net.forget(os.getpid())  # a client is not partitioned
            assert await _roundtrip(proxy.port, b"client") == b"client"
            net.register(os.getpid(), "a")
            net.heal()
            assert await _roundtrip(proxy.port, b"again") == b"again"
            net.lossy("b", 1.0)  # every chunk on a link of b kills its connection
            assert await _roundtrip(proxy.port, b"dropped") == b""
            assert proxy.killed >= 1
        finally:
            await proxy.close()
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(scenario(), 30))


@pytest.mark.network
def test_an_open_connection_is_reset_when_its_link_is_cut() -> None:
    async def scenario() -> None:
        server, port = await _echo_server()
        net = Network()
        proxy = NodeProxy("b", port, net, random.Random(1))
        await proxy.start()
        net.register(os.getpid(), "a")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"x")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(10), 2) == b"x"
            net.partition([{"a", "c"}, {"b"}], ["a", "b", "c"])
            try:
                got = await asyncio.wait_for(reader.read(10), 2)
            except ConnectionResetError:
                got = b""
            assert got == b""
            writer.close()
        finally:
            await proxy.close()
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_member_schedule_is_seeded_and_keeps_its_counts() -> None:
    a = member_schedule(3, transfers=4, changes=3)
    assert a == member_schedule(3, transfers=4, changes=3)
    assert sum(1 for x in a if x.change) == 3 and sum(1 for x in a if not x.change) == 4
    assert member_schedule(3, 0, 0) == []
    # The fault schedule of a seed does not depend on the membership nemesis.
    assert schedule(3, 10) == schedule(3, 10)


def test_final_line_counts_transfers_and_membership_changes() -> None:
    r = RunReport(nodes=3, seed=1, transfers=2, members_added=1, members_removed=3)
    line = final_line([r, RunReport(nodes=5, seed=1, transfers=1)])
    assert line.endswith("transfers=3 members_added=1 members_removed=3"), line


@pytest.mark.slow
@pytest.mark.network
def test_short_chaos_run_is_linearizable_and_loses_nothing(tmp_path: Path) -> None:
    """A real 3-node run with faults; the checks of ``make chaos`` on a smaller scale.

    Trace conformance runs too and its count is reported; it is not asserted here because
    the conformance checker still reports known false positives on SIGKILL restarts (see
    RELIABILITY.md), which belong to the conformance suite, not to this harness.
    """
    messages: list[str] = []
    cfg = ChaosConfig(
        nodes=3,
        seed=11,
        duration_s=60,  # an upper bound: the run ends after 150 operations and 6 faults
        max_ops=150,
        max_faults=6,
        mean_gap_s=0.6,
        check_seconds=30,
        workload=WorkloadConfig(clients=4, keys=4),
        workdir=tmp_path,
    )
    report = asyncio.run(run_chaos(cfg, messages.append))
    assert report.ops > 100
    assert sum(report.faults.values()) >= 3
    assert report.linearizable == "yes", report.linearizability and report.linearizability.render()
    assert report.acked_once > 0 and report.lost == 0
    assert not report.impl_failures, report.impl_failures
    assert report.trace_events > 0
    line = final_line([report])
    assert line.startswith(f"chaos: ops={report.ops} faults=")
    assert "linearizable=yes lost=0" in line


@pytest.mark.slow
@pytest.mark.network
def test_a_run_with_transfers_and_membership_changes_passes_every_check(tmp_path: Path) -> None:
    """Transfers and changes beside a fault or two: added, removed, nothing lost.

    The 3-node run starts at the lower voter bound, so the first change is an addition (a
    node started with --join, thesis 4.2.1) and the next one a removal (a follower or the
    leader, thesis 4.2.2). Reference: thesis 3.10 (leadership transfer), 4.1-4.2.
    """
    messages: list[str] = []
    cfg = ChaosConfig(
        nodes=3,
        seed=4,
        duration_s=40,
        max_ops=300,
        max_faults=2,
        mean_gap_s=4.0,
        check_seconds=30,
        workload=WorkloadConfig(clients=3, keys=4),
        workdir=tmp_path,
        transfers=3,
        member_changes=2,
        member_gap_s=1.0,
    )
    report = asyncio.run(run_chaos(cfg, messages.append))
    log = "\n".join(messages)
    assert report.members_added >= 1 and report.members_removed >= 1, log
    assert report.transfers_asked == 3, log
    assert report.linearizable == "yes" and report.lost == 0, log
    assert report.trace_violations == 0, report.trace_report
    assert not report.impl_failures, report.impl_failures
    assert len(report.final_members) == 3, report.final_members
    assert "members_added=" in final_line([report])


def test_unavailability_is_measured_to_the_first_acknowledged_write_after_the_fault() -> None:
    """Reference: thesis section 3.10 (availability); only acknowledged writes end an outage."""
    from properties.chaos import Workload
    from properties.linearizability import OpKind

    clock = iter([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]).__next__
    w = Workload([], WorkloadConfig(), seed=1)
    w.history.clock = clock
    w.history.begin(0, OpKind.PUT, "a", b"1").ok()  # 0 -> 1
    w.history.begin(0, OpKind.GET, "a").ok(b"1")  # 2 -> 3: a read ends nothing
    w.history.begin(0, OpKind.PUT, "a", b"2").unknown()  # 4 -> 5: not acknowledged
    w.history.begin(0, OpKind.DELETE, "a").ok(True)  # 6 -> 7
    assert w.write_completions() == [1.0, 7.0]
    assert w.writes_ok_after(0.5) == 1.0
    assert w.writes_ok_after(1.0) == 7.0
    assert w.writes_ok_after(7.0) is None


def test_the_caller_socket_is_found_in_tcp6_as_a_v4_mapped_address(tmp_path: Path) -> None:
    """gRPC dials from dual-stack sockets: 127.0.0.1 appears as ::ffff:127.0.0.1 in tcp6."""
    from properties.chaos import socket_owner_inode

    header = "  sl  local_address rem_address st tx_queue rx_queue tr tm->when uid inode\n"
    v6 = (
        "   0: 0000000000000000FFFF00000100007F:B81E 0000000000000000FFFF00000100007F:A741 "
        "01 00000000:00000000 00:00000000 00000000     0        0 778899 1 0 20 4 30 10 -1\n"
    )
    v4 = (
        "   0: 0100007F:1F90 0100007F:A741 01 00000000:00000000 00:00000000 00000000"
        "     0        0 112233 1 0 20 4 30 10 -1\n"
    )
    (tmp_path / "tcp6").write_text(header + v6)
    (tmp_path / "tcp").write_text(header + v4)
    tables = (str(tmp_path / "tcp"), str(tmp_path / "tcp6"))
    assert socket_owner_inode(0xB81E, 0xA741, tables) == 778899
    assert socket_owner_inode(0x1F90, 0xA741, tables) == 112233
    assert socket_owner_inode(0x1F90, 0xA742, tables) is None  # another listener
    assert socket_owner_inode(0xB81E, 0xA741, (str(tmp_path / "missing"),)) is None


@pytest.mark.slow
@pytest.mark.network
def test_changes_without_faults_remove_the_leader_re_add_and_keep_every_write(
    tmp_path: Path,
) -> None:
    """Six changes in a row under two writing clients: add, remove the leader, re-add, ...

    Reference: thesis 4.2.1 (a new server joins as a learner, promoted once caught up),
    4.2.2 (a removed leader steps down once the configuration without it commits), and
    section 5.4 (every acknowledged write survives). A re-added node gets a fresh data dir.
    """
    from properties.chaos import (
        ChaosCluster,
        MemberNemesis,
        MemberOp,
        Workload,
        check_durability,
    )
    from properties.conformance import check_traces

    async def scenario() -> tuple[MemberNemesis, int, int, list[str]]:
        cluster = ChaosCluster(tmp_path, 3, random.Random(2))
        messages: list[str] = []
        try:
            await cluster.start_proxies()
            cluster.start_all()
            assert await cluster.wait_for_leader(20) is not None
            workload = Workload(cluster.client_addresses, WorkloadConfig(clients=2, keys=2), 2)
            clients = asyncio.create_task(workload.run())
            await asyncio.sleep(1.0)  # a write of the leader's term commits (the 2015 rule)
            nemesis = MemberNemesis(
                cluster,
                member_schedule(2, 0, 6, mean_gap_s=0.3),
                messages.append,
                workload.set_addresses,
            )
            await nemesis.run()
            await asyncio.sleep(0.5)
            workload.stop.set()
            await asyncio.wait_for(clients, 15)
            async with KVClient(cluster.client_addresses, deadline_s=10.0) as reader:
                reads = {k: await workload.get(reader, 99, k) for k in sorted(workload.acked_once)}
            result = check_durability(workload.acked_once, reads)
            return nemesis, result.acknowledged, result.lost, messages
        finally:
            await cluster.close()

    from impl import KVClient

    nemesis, acknowledged, lost, messages = asyncio.run(asyncio.wait_for(scenario(), 150))
    log = "\n".join(messages)
    done = [r.op for r in nemesis.records if r.ok]
    assert MemberOp.REMOVE_LEADER in done and MemberOp.ADD in done, log
    assert nemesis.added >= 2 and nemesis.removed >= 2, log
    assert acknowledged > 20 and lost == 0, log
    traces = check_traces([tmp_path / "traces"], jobs=1)
    assert not (traces.divergences or traces.violations or traces.errors), traces.render()
