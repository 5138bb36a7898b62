"""Membership changes under the chaos harness: a seeded learner-quorum bug is caught.

Real ``raftwright node`` processes run behind the harness's proxies. A fourth node starts
with ``--join`` and is added (AddMember, thesis 4.2.1: it joins as a learner). Then the
leader and the new node are cut off together from the two other voters, and a client
writes through the old leader. A correct leader cannot commit there: a learner is no voter
and never counts for commitment (thesis 4.1, 4.2.1; after a promotion the new node is a
voter, and two of four is no majority either), so those writes time out, unacknowledged.
With the ``learner-quorum`` bug (properties.chaos._seeded_node, patched into the node
processes; impl/ untouched) the leader counts the learner and acknowledges them; the two
voters meanwhile elect a leader without those entries, and after the heal the harness's
own checks report what was acknowledged and then lost: the durability check (Raft paper
section 5.4, State Machine Safety) and the linearizability check (thesis 6.3); trace
conformance, replaying the leader through the spec, sees the commit index it must not have.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from impl import ClientError, KVClient
from properties.chaos import ChaosCluster, MemberNemesis, check_durability
from properties.chaos._durability import DurabilityResult
from properties.conformance import check_traces
from properties.linearizability import CheckResult, History, Operation, OpKind, Verdict, check

# Slow elections (as in test_seeded_bugs): the cut-off leader keeps leading, and writing,
# until its check-quorum round notices the voters are gone.
_TIMEOUTS = (600, 900)


@dataclass
class _Outcome:
    history: History = field(default_factory=History)
    acked: dict[str, bytes] = field(default_factory=dict)
    acked_in_partition: int = 0
    added: bool = False
    detail: str = ""
    durability: DurabilityResult | None = None
    linearizability: CheckResult | None = None
    trace_problems: int = -1
    trace_report: str = ""


async def _put(out: _Outcome, client: KVClient, who: int, key: str, value: bytes) -> bool:
    pending = out.history.begin(who, OpKind.PUT, key, value)
    try:
        await client.put(key, value)
    except ClientError:
        pending.unknown()
        return False
    pending.ok()
    out.acked[key] = value
    return True


async def _get(out: _Outcome, client: KVClient, who: int, key: str) -> Operation:
    pending = out.history.begin(who, OpKind.GET, key)
    try:
        value = await client.get(key)
    except ClientError:
        return pending.unknown()
    return pending.ok(value)


async def _leader_among(cluster: ChaosCluster, nodes: list[str], seconds: float) -> str | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        leader = await cluster.leader()
        if leader in nodes:
            return leader
        await asyncio.sleep(0.2)
    return None


async def _learner_cut_off_with_leader(workdir: Path, bug: str | None) -> _Outcome:
    out = _Outcome()
    cluster = ChaosCluster(
        workdir, 3, random.Random(3), election_timeout_ms=_TIMEOUTS, seeded_bug=bug
    )
    try:
        await cluster.start_proxies()
        cluster.start_all()
        leader = await cluster.wait_for_leader(20)
        assert leader is not None, "no leader"
        async with KVClient(cluster.client_addresses, deadline_s=10.0) as client:
            for i in range(5):  # an entry of the leader's term commits: changes may start
                assert await _put(out, client, 0, f"d-before-{i}", b"before")
        nemesis = MemberNemesis(cluster, [], lambda _: None, lambda _: None, wait_s=10.0)
        # AddMember, then wait until n4 is a voter; with the bug it stays a learner.
        out.added, out.detail = await nemesis._add("n4")
        leader = await cluster.wait_for_leader(10)
        assert leader is not None
        voters = [n for n in cluster.initial if n != leader]
        cluster.partition([{leader, "n4"}, set(voters)])
        t_cut = time.monotonic()
        async with KVClient([cluster.address(leader)], deadline_s=1.0, rpc_timeout_s=0.5) as old:
            i = 0
            while time.monotonic() - t_cut < 1.5:
                i += 1
                if await _put(out, old, 1, f"d-cut-{i}", f"cut:{i}".encode()):
                    out.acked_in_partition += 1
        # The two voters elect a leader of their own while still cut off (with the bug:
        # the learner votes for nobody). In the control n4 is a voter by now, and two of
        # four cannot elect anyone: then nothing happens until the heal.
        await _leader_among(cluster, voters, 10)
        cluster.heal()
        assert await _leader_among(cluster, cluster.ids, 20) is not None
        async with KVClient(cluster.client_addresses, deadline_s=10.0) as client:
            assert await _put(out, client, 2, "d-after", b"after")
            reads = {key: await _get(out, client, 3, key) for key in sorted(out.acked)}
        out.durability = check_durability(out.acked, reads)
        out.linearizability = check(out.history.operations)
    finally:
        await cluster.close()
    traces = check_traces([cluster.trace_dir], jobs=1)
    out.trace_problems = len(traces.divergences) + len(traces.violations) + len(traces.errors)
    out.trace_report = traces.render()
    return out


@pytest.mark.slow
@pytest.mark.network
def test_a_leader_that_counts_its_learner_in_the_quorum_loses_acknowledged_writes(
    tmp_path: Path,
) -> None:
    out = asyncio.run(
        asyncio.wait_for(_learner_cut_off_with_leader(tmp_path, "learner-quorum"), 150)
    )
    assert not out.added and "learner" in out.detail, out.detail  # never promoted
    assert out.acked_in_partition > 0  # the bug: the minority side acknowledged writes
    assert out.durability is not None and out.linearizability is not None
    text = out.durability.render() + "\n" + out.linearizability.render()
    print(text)
    assert out.durability.lost > 0, text
    assert all(k.startswith("d-cut-") for k in out.durability.lost_keys), text
    assert out.linearizability.verdict is Verdict.NOT_LINEARIZABLE, text
    # Trace conformance replays the leader through the spec, which counts voters only.
    print("\n".join(out.trace_report.splitlines()[:16]))
    assert out.trace_problems > 0, out.trace_report


@pytest.mark.slow
@pytest.mark.network
def test_without_the_bug_the_cut_off_leader_acknowledges_nothing(tmp_path: Path) -> None:
    """The control: same add, same partition, same writes; nothing acknowledged is lost."""
    out = asyncio.run(asyncio.wait_for(_learner_cut_off_with_leader(tmp_path, None), 150))
    assert out.added, out.detail  # the learner caught up and was promoted (thesis 4.2.1)
    assert out.acked_in_partition == 0
    assert out.durability is not None and out.linearizability is not None
    text = out.durability.render() + "\n" + out.linearizability.render()
    assert out.durability.lost == 0, text
    assert out.durability.acknowledged >= 6  # the writes before the cut and after the heal
    assert out.linearizability.verdict is Verdict.LINEARIZABLE, text
    assert out.trace_problems == 0, out.trace_report
