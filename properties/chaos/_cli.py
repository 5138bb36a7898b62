"""``python -m properties.chaos``: presets, seed, and the final one-line verdict.

The last line is always ``chaos: ops=N faults=M linearizable=yes|no|unknown lost=L
trace_violations=V transfers=T members_added=A members_removed=R`` summed over the runs
(linearizable=yes only if every run is; transfers counts those whose target became leader),
and the exit code is 0 only if every run passed every check. The seed is printed first; passing it
back with ``--seed`` repeats the same workload choices and fault schedule.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ._run import ChaosConfig, RunReport, run_chaos, summarise
from ._seeded_node import BUGS
from ._workload import WorkloadConfig

__all__ = ["PRESETS", "main"]

# ci: what CI runs (3 and 5 nodes, well under 3 minutes on 2 cores), with leadership
# transfers and membership changes beside the faults (the 3-node run starts at the lower
# voter bound, so its first change is an addition and its second a removal).
# nightly: >= 100,000 operations and >= 1,000 faults per cluster size (a fault about every
# 2 s, so about 40 minutes per size on 2 cores), a transfer or change every 4 s; not for CI.
PRESETS: dict[str, ChaosConfig] = {
    "smoke": ChaosConfig(duration_s=8, max_faults=4, check_seconds=20, mean_gap_s=0.8),
    "ci": ChaosConfig(
        duration_s=35,
        max_faults=30,
        check_seconds=30,
        mean_gap_s=0.7,
        transfers=5,
        member_changes=3,
        member_gap_s=2.0,
    ),
    "nightly": ChaosConfig(
        transfers=600,
        member_changes=300,
        member_gap_s=4.0,
        duration_s=6 * 3600,
        max_ops=100_000,
        max_faults=1_000,
        mean_gap_s=1.0,
        check_seconds=1800,
        snapshot_every=5000,
        workload=WorkloadConfig(clients=8, keys=16),
    ),
}
_NODES = {"smoke": "3", "ci": "3,5", "nightly": "3,5"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m properties.chaos",
        description="Chaos test a real multi-process raftwright cluster: concurrent KV "
        "clients, seeded faults, then linearizability, durability and trace conformance.",
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="ci")
    p.add_argument("--seed", type=int, default=None, help="reproduce a run (default: random)")
    p.add_argument("--nodes", default=None, help="cluster sizes, comma-separated (e.g. 3,5)")
    p.add_argument("--duration", type=float, default=None, help="seconds of chaos per run")
    p.add_argument("--ops", type=int, default=None, help="stop a run after this many operations")
    p.add_argument("--faults", type=int, default=None, help="faults per run (upper bound)")
    p.add_argument("--clients", type=int, default=None, help="concurrent KV clients")
    p.add_argument(
        "--transfers", type=int, default=None, help="leadership transfers per run (upper bound)"
    )
    p.add_argument(
        "--member-changes",
        type=int,
        default=None,
        help="membership changes per run (add, re-add, remove a follower or the leader)",
    )
    p.add_argument("--workdir", type=Path, default=None, help="keep data, traces and logs here")
    p.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    p.add_argument(
        "--seeded-bug",
        choices=BUGS,
        default=None,
        help="run every node with this bug patched in, to show the checks catch it "
        "(the run is then expected to FAIL)",
    )
    return p


def _config(args: argparse.Namespace, nodes: int, seed: int) -> ChaosConfig:
    cfg = replace(PRESETS[args.preset], nodes=nodes, seed=seed, workdir=args.workdir)
    if args.duration is not None:
        cfg = replace(cfg, duration_s=args.duration)
    if args.ops is not None:
        cfg = replace(cfg, max_ops=args.ops)
    if args.faults is not None:
        cfg = replace(cfg, max_faults=args.faults)
    if args.transfers is not None:
        cfg = replace(cfg, transfers=args.transfers)
    if args.member_changes is not None:
        cfg = replace(cfg, member_changes=args.member_changes)
    if args.clients is not None:
        cfg = replace(cfg, workload=replace(cfg.workload, clients=args.clients))
    return replace(cfg, keep=args.keep, seeded_bug=args.seeded_bug)


def final_line(reports: Sequence[RunReport]) -> str:
    """final_line is the verdict line CI greps for."""
    lin = {r.linearizable for r in reports}
    verdict = "no" if "no" in lin else ("unknown" if "unknown" in lin else "yes")
    return (
        f"chaos: ops={sum(r.ops for r in reports)} "
        f"faults={sum(sum(r.faults.values()) for r in reports)} linearizable={verdict} "
        f"lost={sum(r.lost for r in reports)} "
        f"trace_violations={sum(r.trace_violations for r in reports)} "
        f"transfers={sum(r.transfers for r in reports)} "
        f"members_added={sum(r.members_added for r in reports)} "
        f"members_removed={sum(r.members_removed for r in reports)}"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM (and SIGINT, which a shell ignores in background jobs) interrupt the run
    # like Ctrl-C: the run's cleanup stops every node it started instead of leaving them.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    sizes = [int(n) for n in (args.nodes or _NODES[args.preset]).split(",") if n.strip()]
    bug = f" seeded_bug={args.seeded_bug}" if args.seeded_bug else ""
    print(f"chaos: preset={args.preset} seed={seed} nodes={sizes}{bug}", flush=True)

    def say(text: str) -> None:
        print(text, flush=True)

    started = time.monotonic()
    reports = [asyncio.run(run_chaos(_config(args, n, seed), say)) for n in sizes]
    print(summarise(reports))
    for r in reports:
        if not r.ok:
            print(f"run n={r.nodes} failed; data, traces and logs kept in {r.workdir}")
    print(
        f"chaos: reproduce with --preset {args.preset} --seed {seed} --nodes "
        f"{','.join(map(str, sizes))}{' --seeded-bug ' + args.seeded_bug if bug else ''} "
        f"({time.monotonic() - started:.0f}s)"
    )
    print(final_line(reports), flush=True)
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
