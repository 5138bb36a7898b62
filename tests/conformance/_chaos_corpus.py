"""Recording corpus runs under faults: real ``raftwright node`` processes driven by the chaos
harness (properties.chaos), its traces gzipped into tests/traces/<run>/.

Each corpus run is a named, seeded chaos configuration (``RUNS``): the seed fixes the fault
schedule (kinds, targets, durations, gaps) and the workload's choices; which node leads when,
and the OS interleaving, are not under its control, so a re-recording repeats the schedule,
not the exact execution. The harness checks linearizability and conformance itself; this
module keeps only runs whose traces conform and cover what the run is for (``covers``).

``python -m tests.conformance._chaos_corpus OUT_DIR [RUN...]`` records the named runs (all by
default) into ``OUT_DIR/<run>/node-<id>.ndjson.gz``.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from properties.chaos import ChaosConfig, WorkloadConfig, run_chaos

__all__ = ["RUNS", "CorpusRun", "coverage", "record_chaos_run"]


@dataclass(frozen=True, slots=True)
class CorpusRun:
    """CorpusRun is one seeded chaos configuration and the fault kinds it must cover."""

    seed: int
    duration_s: float
    faults: int
    snapshot_every: int
    clients: int
    covers: tuple[str, ...]  # fault kinds (FaultKind values), "snapshot-install", "transfer"
    # (a TimeoutNow obeyed) and "membership" (a membership change made)
    transfers: int = 0
    member_changes: int = 0


RUNS: dict[str, CorpusRun] = {
    # partition and heal, every node SIGKILLed and restarted at once, message loss
    "chaos-partition-restart-all": CorpusRun(
        seed=33,
        duration_s=7,
        faults=4,
        snapshot_every=40,
        clients=2,
        covers=("partition", "restart_all", "loss"),
    ),
    # unreliable network: 5% loss on every link of one node, three times, then a partition
    "chaos-lossy-churn": CorpusRun(
        seed=56,
        duration_s=7,
        faults=4,
        snapshot_every=40,
        clients=2,
        covers=("loss", "partition"),
    ),
    # leadership transfers (TimeoutNow) and membership changes beside partitions and restarts
    "chaos-transfer-membership": CorpusRun(
        seed=72,
        duration_s=12,
        faults=3,
        snapshot_every=10000,
        clients=2,
        covers=("transfer", "membership"),
        transfers=4,
        member_changes=3,
    ),
}


def coverage(trace_dir: Path) -> set[str]:
    """coverage is what the traces show: ``snapshot-install`` if a follower installed one,
    ``transfer`` if a node obeyed TimeoutNow, ``membership`` if a leader made a change."""
    found: set[str] = set()
    for path in sorted(trace_dir.glob("node-*.ndjson")):
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                accepted = '"err"' not in line
                if line.startswith('{"i":"recv","m":{"k":"snap"') and accepted:
                    found.add("snapshot-install")
                if line.startswith('{"i":"recv","m":{"k":"tnow"') and '"vreq"' in line:
                    found.add("transfer")
                if line.startswith('{"i":"member"') and accepted:
                    found.add("membership")
    return found


async def record_chaos_run(
    run: CorpusRun, workdir: Path, say: Callable[[str], None] = print
) -> tuple[Path, list[str]]:
    """record_chaos_run runs the chaos harness once; returns its trace dir and fault kinds."""
    cfg = ChaosConfig(
        nodes=3,
        seed=run.seed,
        duration_s=run.duration_s,
        max_faults=run.faults,
        mean_gap_s=0.8,
        check_seconds=30,
        snapshot_every=run.snapshot_every,
        workload=WorkloadConfig(clients=run.clients, keys=4),
        transfers=run.transfers,
        member_changes=run.member_changes,
        conformance_jobs=1,
        workdir=workdir,
        keep=True,
    )
    report = await run_chaos(cfg, say)
    if not report.ok:
        raise AssertionError(f"chaos run failed:\n{report.trace_report}")
    kinds = [r.kind.value for r in report.fault_records]
    return Path(report.workdir) / "traces", kinds


def gzip_traces(source: Path, target: Path) -> None:
    """gzip_traces copies ``source/node-*.ndjson`` to ``target/node-*.ndjson.gz``."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("node-*.ndjson")):
        with path.open("rb") as raw, gzip.open(target / (path.name + ".gz"), "wb", 9) as out:
            shutil.copyfileobj(raw, out)


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    names = argv[1:] or list(RUNS)
    for name in names:
        run = RUNS[name]
        with tempfile.TemporaryDirectory() as tmp:
            traces, kinds = asyncio.run(record_chaos_run(run, Path(tmp)))
            covered = set(kinds) | coverage(traces)
            missing = set(run.covers) - covered
            print(f"{name}: seed {run.seed}, faults {kinds}, covered {sorted(covered)}")
            if missing:
                print(f"{name}: does not cover {sorted(missing)}; not kept")
                continue
            target = out / name
            if target.exists():
                shutil.rmtree(target)
            gzip_traces(traces, target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
