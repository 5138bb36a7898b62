"""`python -m properties.explore`: run a preset or a custom bounded exploration.

Exit status 0 when every invariant held on everything explored, 1 on a violation (the
shortest counterexample is printed), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace

from properties.explore._config import CONFIGS, config_by_name
from properties.explore._fast import explore

__all__ = ["build_parser", "main"]

_INT_BOUNDS = (
    ("nodes", "cluster size"),
    ("max_term", "highest term a node may reach"),
    ("max_log", "longest log a node may hold"),
    ("max_messages", "most messages in flight"),
    ("max_requests", "client requests per run"),
    ("max_reads", "linearizable reads per run"),
    ("max_crashes", "crashes per run"),
    ("max_duplicates", "message duplications per run"),
    ("max_changes", "membership changes (add learner, promote, remove) per run"),
    ("max_transfers", "leadership transfer requests per run"),
    ("max_elections", "election timeouts per run (default: unbounded)"),
    ("max_drops", "message drops per run (default: unbounded)"),
    ("max_depth", "stop after this many BFS levels (0: no depth limit)"),
    ("max_states", "stop after this many distinct states"),
    ("workers", "processes exploring each level (fork)"),
    ("cross_check", "edges per process recomputed with spec.cluster_step (fast engine)"),
)

_SWITCHES = (
    ("partitions", "explore network partitions and heals"),
    ("heartbeats", "offer HeartbeatDue to leaders"),
    ("check_quorum", "offer CheckQuorum ticks"),
    ("append_ranges", "offer every SendAppend range, not only the default"),
    ("prefilter", "skip node inputs whose role guard fails"),
    ("symmetry", "reduce by node relabelling"),
    ("fast", "interned, memoised engine (off: every step through spec.cluster_step)"),
)


def build_parser() -> argparse.ArgumentParser:
    """build_parser is the command line: a preset plus optional overrides of any bound."""
    parser = argparse.ArgumentParser(
        prog="python -m properties.explore",
        description="Exhaustive bounded BFS over the spec cluster model, checking every "
        "invariant on every state and transition.",
    )
    parser.add_argument(
        "--config", "--preset", choices=sorted(CONFIGS), default="ci", help="preset", dest="config"
    )
    for name, help_text in _INT_BOUNDS:
        parser.add_argument("--" + name.replace("_", "-"), type=int, dest=name, help=help_text)
    parser.add_argument("--max-seconds", type=float, dest="max_seconds", help="time limit")
    for name, help_text in _SWITCHES:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=help_text,
        )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """main runs the exploration and prints the summary (and any counterexample)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {name: getattr(args, name) for name, _ in _INT_BOUNDS}
    overrides.update({name: getattr(args, name) for name, _ in _SWITCHES})
    overrides["max_seconds"] = args.max_seconds
    unlimited_depth = args.max_depth is not None and args.max_depth <= 0
    if unlimited_depth:
        overrides["max_depth"] = None
    try:
        config = config_by_name(args.config).with_overrides(progress=not args.quiet, **overrides)
        if unlimited_depth:
            config = replace(config, max_depth=None)
    except ValueError as error:
        parser.error(str(error))
    print(f"explore [{args.config}]: {config.describe()}", flush=True)
    result = explore(config)
    if result.counterexample is not None:
        print(result.counterexample)
    print(result.summary(), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
