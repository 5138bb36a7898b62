"""One chaos run: cluster up, clients and faults together, then the three checks.

After the faults stop every link is healed and every node restarted (all of
them at once, so only durable state carries over); then each acknowledged
write-once key is read back (``lost`` counts the missing or wrong ones) and
every shared key is read once more, those reads joining the history. The
whole history goes to the linearizability checker and every trace file to
trace conformance (``properties.conformance.check_traces``).

With ``transfers`` or ``member_changes`` set, the membership nemesis (_members) runs
beside the fault injector: leadership transfers and membership changes, meeting the
faults. The final reads go to the members at the end, so the durability check covers
writes acknowledged before, during and after the changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from impl import KVClient
from properties.conformance import check_traces
from properties.linearizability import CheckResult, Operation, Outcome, Verdict, check

from ._durability import check_durability
from ._faults import FaultKind, FaultRecord, Injector, schedule
from ._members import MemberNemesis, MemberRecord, member_schedule
from ._procs import ChaosCluster
from ._workload import Workload, WorkloadConfig, first_after

__all__ = ["ChaosConfig", "RunReport", "run_chaos"]


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """ChaosConfig bounds one run: ``duration_s``, or ``max_ops`` plus all ``max_faults``."""

    nodes: int = 3
    seed: int = 1
    duration_s: float = 60.0
    max_ops: int = 1_000_000
    max_faults: int = 40
    mean_gap_s: float = 1.0
    mean_fault_s: float = 1.0
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    snapshot_every: int = 2000
    check_seconds: float = 60.0
    conformance_jobs: int = 2
    workdir: Path | None = None
    keep: bool = False
    seeded_bug: str | None = None
    transfers: int = 0
    member_changes: int = 0
    member_gap_s: float = 2.0
    max_voters: int = 5
    readd_same_id: bool = False


@dataclass
class RunReport:
    """RunReport: what one run did and what the checks found."""

    nodes: int
    seed: int
    ops: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    fault_records: list[FaultRecord] = field(default_factory=list)
    linearizability: CheckResult | None = None
    acked_once: int = 0
    lost: int = 0
    lost_keys: list[str] = field(default_factory=list)
    trace_violations: int = 0
    trace_report: str = ""
    trace_events: int = 0
    impl_failures: list[str] = field(default_factory=list)
    unavailability: list[tuple[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    workdir: str = ""
    member_records: list[MemberRecord] = field(default_factory=list)
    transfers: int = 0
    transfers_asked: int = 0
    members_added: int = 0
    members_removed: int = 0
    final_members: list[str] = field(default_factory=list)

    @property
    def linearizable(self) -> str:
        lin = self.linearizability
        if lin is None:
            return "unknown"
        match lin.verdict:
            case Verdict.LINEARIZABLE:
                return "yes"
            case Verdict.NOT_LINEARIZABLE:
                return "no"
            case Verdict.UNKNOWN:
                return "unknown"

    @property
    def ok(self) -> bool:
        return (
            self.linearizable == "yes"
            and self.lost == 0
            and self.trace_violations == 0
            and not self.impl_failures
        )


async def run_chaos(cfg: ChaosConfig, say: Callable[[str], None] = print) -> RunReport:
    """run_chaos performs one bounded run and returns its report."""
    started = time.monotonic()
    own_dir = cfg.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="raftwright-chaos-")) if own_dir else cfg.workdir
    assert workdir is not None
    workdir = workdir / f"n{cfg.nodes}-seed{cfg.seed}"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    report = RunReport(cfg.nodes, cfg.seed, workdir=str(workdir))
    cluster = ChaosCluster(
        workdir,
        cfg.nodes,
        random.Random(cfg.seed),
        snapshot_every=cfg.snapshot_every,
        seeded_bug=cfg.seeded_bug,
    )
    try:
        await _exercise(cfg, cluster, report, say)
    finally:
        await cluster.close()
    report.impl_failures.extend(cluster.unexpected_exits)
    _check_traces(cfg, cluster, report, say)
    report.seconds = time.monotonic() - started
    if own_dir and report.ok and not cfg.keep:
        shutil.rmtree(workdir.parent, ignore_errors=True)
    return report


async def _exercise(
    cfg: ChaosConfig, cluster: ChaosCluster, report: RunReport, say: Callable[[str], None]
) -> None:
    await cluster.start_proxies()
    cluster.start_all()
    leader = await cluster.wait_for_leader(20)
    say(f"[n={cfg.nodes} seed={cfg.seed}] cluster up, leader {leader}, workdir {cluster.workdir}")
    workload = Workload(cluster.client_addresses, cfg.workload, cfg.seed)
    faults = schedule(
        cfg.seed, cfg.max_faults, mean_gap_s=cfg.mean_gap_s, mean_duration_s=cfg.mean_fault_s
    )
    injector = Injector(
        cluster,
        faults,
        cfg.seed,
        say,
        probe=lambda node: workload.probe(
            [cluster.address(n) for n in cluster.ids if n != node],
            cluster.address(node),
            lambda: cluster.resume(node),
        ),
    )
    nemesis = MemberNemesis(
        cluster,
        member_schedule(cfg.seed, cfg.transfers, cfg.member_changes, mean_gap_s=cfg.member_gap_s),
        say,
        workload.set_addresses,
        min_voters=min(3, cfg.nodes),
        max_voters=max(cfg.max_voters, cfg.nodes),
        readd_same_id=cfg.readd_same_id,
    )
    clients = asyncio.create_task(workload.run())
    chaos = asyncio.create_task(injector.run())
    members = asyncio.create_task(nemesis.run())
    t0 = time.monotonic()
    next_progress = t0 + 5
    try:
        # The run ends at the duration, or once both the operation target is met and the
        # whole fault schedule has run (so the nightly size reaches both of its counts).
        while time.monotonic() - t0 < cfg.duration_s:
            await asyncio.sleep(0.2)
            if clients.done() or (
                len(workload.history) >= cfg.max_ops and chaos.done() and members.done()
            ):
                break
            now = time.monotonic()
            if now >= next_progress:
                next_progress = now + 5
                ops = workload.history.operations
                unknown = sum(1 for o in ops if o.outcome is Outcome.UNKNOWN)
                say(
                    f"[n={cfg.nodes}] t={now - t0:5.1f}s ops={len(ops)} unknown={unknown} "
                    f"faults={len(injector.records)}/{len(faults)} "
                    f"members={','.join(cluster.ids)}"
                )
        injector.stop.set()
        nemesis.stop.set()
        await chaos
        await members
        cluster.heal()
        for node in cluster.ids:
            cluster.resume(node)
        workload.stop.set()
        with contextlib.suppress(TimeoutError):  # wait_for cancels: in-flight ops become unknown
            await asyncio.wait_for(clients, cfg.workload.op_deadline_s * 3)
    except BaseException:  # interrupted: no fault may fire, no client run, after this
        chaos.cancel()
        members.cancel()
        clients.cancel()
        raise
    report.fault_records = injector.records
    report.member_records = nemesis.records
    report.transfers = nemesis.transfers
    report.transfers_asked = sum(1 for r in nemesis.records if r.op.value == "transfer")
    report.members_added = nemesis.added
    report.members_removed = nemesis.removed
    report.final_members = list(cluster.ids)
    report.faults.update(r.kind.value for r in injector.records)
    for note in cluster.check_exits():
        say(f"IMPL FAILURE: {note}")
    # Unavailability after each fault that hit the leader: until the next acknowledged write.
    completions = workload.write_completions()
    for record in injector.records:
        if record.hit_leader and record.kind is not FaultKind.LOSS:
            first = first_after(completions, record.start)
            if first is not None:
                report.unavailability.append((record.kind.value, first - record.start))
    await _durability(cfg, cluster, workload, report, say)
    ops = workload.history.operations
    report.ops = len(ops)
    report.outcomes.update(o.outcome.value for o in ops)
    report.acked_once = len(workload.acked_once)
    say(f"[n={cfg.nodes}] checking linearizability of {len(ops)} operations")
    report.linearizability = check(ops, seconds=cfg.check_seconds)
    say(report.linearizability.render())


async def _durability(
    cfg: ChaosConfig,
    cluster: ChaosCluster,
    workload: Workload,
    report: RunReport,
    say: Callable[[str], None],
) -> None:
    """_durability restarts every node, then reads back what was acknowledged."""
    cluster.stop_all()
    cluster.start_all()
    leader = await cluster.wait_for_leader(30)
    if leader is None:
        # Reading thousands of keys with a 20 s deadline each would take hours; a
        # cluster that cannot elect a leader with every link healed has failed anyway.
        for note in cluster.check_exits():
            say(f"IMPL FAILURE: {note}")
        failure = "no leader within 30 s of restarting every node; durability not checked"
        say(f"IMPL FAILURE: {failure}")
        for node in cluster.ids:
            say(f"--- {node} log tail\n{cluster.log_tail(node)}")
        report.impl_failures.append(failure)
        return
    say(f"[n={cfg.nodes}] all nodes restarted, leader {leader}; reading back")
    keys = sorted(workload.acked_once)
    shared = [f"k{i}" for i in range(cfg.workload.keys)]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for key in shared + keys:
        queue.put_nowait(key)
    final_reads: dict[str, Operation] = {}

    async def reader(index: int) -> None:
        async with KVClient(cluster.client_addresses, deadline_s=20.0) as client:
            while not queue.empty():
                key = queue.get_nowait()
                final_reads[key] = await workload.get(client, 1000 + index, key)

    await asyncio.gather(*(reader(i) for i in range(8)))
    result = check_durability(workload.acked_once, final_reads)
    report.lost = result.lost
    report.lost_keys = list(result.lost_keys[:20])
    if result.lost:
        say(f"[n={cfg.nodes}] LOST {result.lost} acknowledged writes")
        say(result.render())


def _check_traces(
    cfg: ChaosConfig, cluster: ChaosCluster, report: RunReport, say: Callable[[str], None]
) -> None:
    say(f"[n={cfg.nodes}] checking trace conformance in {cluster.trace_dir}")
    try:
        result = check_traces([cluster.trace_dir], jobs=cfg.conformance_jobs)
    except Exception as exc:  # a checker that crashed has not shown the traces conform
        report.trace_violations += 1
        report.trace_report = f"conformance checker crashed: {exc!r}"
        say(report.trace_report)
        return
    report.trace_violations = len(result.divergences) + len(result.violations) + len(result.errors)
    report.trace_events = result.events
    report.trace_report = result.render()
    lines = report.trace_report.splitlines()
    say("\n".join(lines[:40] + (["..."] if len(lines) > 41 else []) + lines[-1:]))


def summarise(reports: list[RunReport]) -> str:
    """summarise renders the per-run figures (the final ``chaos:`` line is printed by the CLI)."""
    lines = []
    for r in reports:
        unavail = "n/a"
        if r.unavailability:
            times = [t for _, t in r.unavailability]
            by_kind: dict[str, float] = {}
            for kind, t in r.unavailability:
                by_kind[kind] = max(by_kind.get(kind, 0.0), t)
            unavail = (
                f"max {max(times):.2f}s median {statistics.median(times):.2f}s over "
                f"{len(times)} (max by kind: "
                + ", ".join(f"{k} {v:.2f}s" for k, v in sorted(by_kind.items()))
                + ")"
            )
        lin = r.linearizability
        lines.append(
            f"run n={r.nodes} seed={r.seed}: ops={r.ops} "
            f"({', '.join(f'{k}={v}' for k, v in sorted(r.outcomes.items()))}), "
            f"checked={lin.checked if lin else 0}, faults={sum(r.faults.values())} "
            f"({', '.join(f'{k}={v}' for k, v in sorted(r.faults.items()))}), "
            f"linearizable={r.linearizable}, acked write-once={r.acked_once} lost={r.lost}, "
            f"trace events={r.trace_events} violations={r.trace_violations}, "
            f"impl failures={len(r.impl_failures)}, unavailability after leader faults: "
            f"{unavail}, transfers={r.transfers}/{r.transfers_asked} "
            f"members_added={r.members_added} members_removed={r.members_removed} "
            f"(members at the end: {','.join(r.final_members)}), {r.seconds:.0f}s"
        )
        lines.extend(f"  impl failure: {f}" for f in r.impl_failures)
    return "\n".join(lines)
