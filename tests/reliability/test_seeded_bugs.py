"""The checks fail when the implementation is wrong: seeded bugs in a real cluster.

A checker only ever shown a correct implementation has not shown it can find anything.
Here real ``raftwright node`` processes run through ``properties.chaos._seeded_node``,
which patches one bug into impl/ in that process (impl/ is not edited), and the
harness's own checks must report it.

Reference: Raft thesis section 6.4 (a leader must confirm it still leads, by a round of
heartbeats, before answering a read: ReadIndex) and section 6.2 (check-quorum: a
deposed leader may go on believing it leads for up to an election timeout); Raft paper
section 5.4 (State Machine Safety: an acknowledged, committed write is never lost).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from impl import ClientError, KVClient, RaftClient
from properties.chaos import (
    ChaosCluster,
    ChaosConfig,
    WorkloadConfig,
    check_durability,
    drops_write,
    final_line,
    run_chaos,
)
from properties.linearizability import CheckResult, History, OpKind, Outcome, Verdict, check

# Slow elections: check-quorum runs every 600 ms, so an old leader woken from a pause
# keeps believing it leads for up to 600 ms: ample time to send it one read.
_TIMEOUTS = (600, 900)


@dataclass
class _Scenario:
    """What the isolated-old-leader scenario did, for the assertions."""

    history: History = field(default_factory=History)
    attempts: int = 0
    old_leader: str = ""
    new_leader: str = ""
    stale_read: Outcome | None = None
    stale_value: bytes | None = None


async def _put(h: History, client: KVClient, who: int, key: str, value: bytes) -> None:
    pending = h.begin(who, OpKind.PUT, key, value)
    try:
        await client.put(key, value)
    except ClientError:
        pending.unknown()
        raise
    pending.ok()


async def _get(h: History, client: KVClient, who: int, key: str) -> Outcome:
    pending = h.begin(who, OpKind.GET, key)
    try:
        value = await client.get(key)
    except ClientError:
        pending.unknown()
        return Outcome.UNKNOWN
    pending.ok(value)
    return Outcome.OK


async def _role(cluster: ChaosCluster, node: str) -> tuple[str, int]:
    async with RaftClient([cluster.address(node)]) as raft:
        (report,) = await raft.status_all(2.0)
    assert report.status is not None, report.error
    return report.status.role, report.status.term


async def _isolated_old_leader(workdir: Path, bug: str | None) -> _Scenario:
    """Freeze the leader, cut it off, write through the new leader, read through the old.

    The freeze (SIGSTOP) is what makes this deterministic: the frozen leader's last
    check-quorum round saw its followers, so on waking it still believes it leads (its
    status says so, in the old term) until its next round, and the read lands then. If
    the freeze happened to fall right after a round (the old leader steps down as soon as
    it wakes), the attempt does not count and is repeated, with the partition healed.
    """
    out = _Scenario()
    cluster = ChaosCluster(
        workdir, 3, random.Random(7), election_timeout_ms=_TIMEOUTS, seeded_bug=bug
    )
    try:
        await cluster.start_proxies()
        cluster.start_all()
        for attempt in range(1, 5):
            out.attempts = attempt
            cluster.heal()
            old = await cluster.wait_for_leader(20)
            assert old is not None, "no leader"
            async with KVClient([cluster.address(old)], deadline_s=10.0) as first:
                await _put(out.history, first, 0, "x", f"old-{attempt}".encode())
            stale_client = KVClient([cluster.address(old)], deadline_s=2.0, rpc_timeout_s=1.0)
            async with stale_client:
                await _get(out.history, stale_client, 2, "x")  # connects before the freeze
                cluster.pause(old)
                cluster.partition([{old}, set(cluster.ids) - {old}])
                new = await cluster.wait_for_leader(20)
                assert new is not None and new != old, (old, new)
                async with KVClient([cluster.address(new)], deadline_s=10.0) as second:
                    await _put(out.history, second, 1, "x", f"new-{attempt}".encode())
                _, new_term = await _role(cluster, new)
                cluster.resume(old)
                role, term = await _role(cluster, old)
                if role != "leader" or term >= new_term:
                    continue  # it stepped down on waking: not the scenario, try again
                out.old_leader, out.new_leader = old, new
                out.stale_read = await _get(out.history, stale_client, 2, "x")
                last = out.history.operations[-1]
                out.stale_value = last.output if isinstance(last.output, bytes) else None
                return out
        raise AssertionError(f"the old leader stepped down on waking {out.attempts} times")
    finally:
        await cluster.close()


@pytest.mark.slow
@pytest.mark.network
def test_a_stale_read_by_an_isolated_old_leader_is_caught(tmp_path: Path) -> None:
    """With the ReadIndex confirmation skipped, the old leader serves the overwritten value."""
    sc = asyncio.run(asyncio.wait_for(_isolated_old_leader(tmp_path, "stale-read"), 90))
    assert sc.stale_read is Outcome.OK
    assert sc.stale_value == f"old-{sc.attempts}".encode()  # the value before the new write
    result: CheckResult = check(sc.history.operations)
    text = result.render()
    print(text)
    assert result.verdict is Verdict.NOT_LINEARIZABLE, text
    (failure,) = result.failures
    assert failure.key == "x"
    # The minimal failing window is the new leader's acknowledged write and the stale read.
    window = [(op.kind, op.output, op.value) for op in failure.window]
    assert window == [
        (OpKind.PUT, None, f"new-{sc.attempts}".encode()),
        (OpKind.GET, f"old-{sc.attempts}".encode(), None),
    ], text
    assert "minimal failing window (2 of" in text


@pytest.mark.slow
@pytest.mark.network
def test_without_the_bug_the_old_leader_cannot_answer(tmp_path: Path) -> None:
    """The control: same freeze, partition and writes; ReadIndex cannot confirm, no answer."""
    sc = asyncio.run(asyncio.wait_for(_isolated_old_leader(tmp_path, None), 90))
    assert sc.stale_read is Outcome.UNKNOWN  # failed or timed out, never a value
    result = check(sc.history.operations)
    assert result.verdict is Verdict.LINEARIZABLE, result.render()
    ops = sc.history.operations
    assert any(o.kind is OpKind.GET and o.outcome is Outcome.OK for o in ops)  # before freezes


def test_durability_check_reports_a_missing_acknowledged_write() -> None:
    """An acknowledged write missing after the restart is lost=1, named by its key."""
    h = History()
    acked = {"d-0-1": b"0:1", "d-0-2": b"0:2", "d-1-1": b"1:1"}
    reads = {
        "d-0-1": h.begin(1000, OpKind.GET, "d-0-1").ok(b"0:1"),
        "d-0-2": h.begin(1001, OpKind.GET, "d-0-2").ok(None),  # gone
        "d-1-1": h.begin(1002, OpKind.GET, "d-1-1").ok(b"1:1"),
    }
    result = check_durability(acked, reads)
    assert result.acknowledged == 3
    assert result.lost == 1 and result.lost_keys == ("d-0-2",)
    assert "lost=1" in result.render() and "'d-0-2'" in result.render()


def test_durability_check_counts_wrong_unread_and_unknown_reads_as_lost() -> None:
    h = History()
    acked = {"a": b"1", "b": b"2", "c": b"3", "d": b"4"}
    reads = {
        "a": h.begin(0, OpKind.GET, "a").ok(b"other"),
        "b": h.begin(0, OpKind.GET, "b").unknown(),
        "d": h.begin(0, OpKind.GET, "d").ok(b"4"),
    }
    result = check_durability(acked, reads)
    assert result.lost_keys == ("a", "b", "c")
    assert [r.split()[0] for r in result.reasons] == ["holds", "the", "never"]
    assert check_durability(acked, {k: v for k, v in reads.items() if k == "d"}).lost == 3
    assert check_durability({}, {}).lost == 0


@pytest.mark.slow
@pytest.mark.network
def test_a_state_machine_that_drops_acknowledged_puts_is_reported_lost(tmp_path: Path) -> None:
    """End to end: every replica drops the same acknowledged puts; the harness says lost>0."""
    messages: list[str] = []
    cfg = ChaosConfig(
        nodes=3,
        seed=5,
        duration_s=60,  # an upper bound: the run ends at 250 operations (a few seconds)
        max_ops=250,
        max_faults=0,
        check_seconds=20,
        workload=WorkloadConfig(clients=4, keys=4, write_once_share=0.5),
        workdir=tmp_path,
        seeded_bug="lose-write",
    )
    report = asyncio.run(run_chaos(cfg, messages.append))
    expected = [k for k in report.lost_keys if drops_write(k)]
    assert report.acked_once > 20
    assert report.lost > 0, "\n".join(messages)
    assert expected == report.lost_keys  # exactly the dropped keys, nothing else
    assert not report.ok
    assert f"lost={report.lost}" in final_line([report])
    assert any("LOST" in m for m in messages)


def test_the_cli_passes_the_seeded_bug_to_every_node_launch(tmp_path: Path) -> None:
    """``--seeded-bug`` reaches the cluster's launch command; an unknown bug is refused."""
    from properties.chaos._cli import _config, build_parser

    args = build_parser().parse_args(["--preset", "smoke", "--seeded-bug", "stale-read"])
    cfg = _config(args, 3, 1)
    assert cfg.seeded_bug == "stale-read"
    assert _config(build_parser().parse_args([]), 3, 1).seeded_bug is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--seeded-bug", "no-such-bug"])
    cluster = ChaosCluster(tmp_path, 3, random.Random(1), seeded_bug="lose-write")
    assert cluster._launcher[1:] == [
        "-m",
        "properties.chaos._seeded_node",
        "--bug",
        "lose-write",
        "--",
    ]
    with pytest.raises(ValueError, match="unknown seeded bug"):
        ChaosCluster(tmp_path, 3, random.Random(1), seeded_bug="typo")


def test_lose_write_drops_only_some_write_once_keys() -> None:
    keys = [f"d-{c}-{n}" for c in range(8) for n in range(200)]
    dropped = [k for k in keys if drops_write(k)]
    assert 0.05 < len(dropped) / len(keys) < 0.2  # about one in LOSE_ONE_IN
    assert not any(drops_write(f"k{i}") for i in range(100))  # shared keys never
