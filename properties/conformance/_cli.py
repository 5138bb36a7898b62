"""The command line: ``python -m properties.conformance TRACE_FILE_OR_DIR...``."""

from __future__ import annotations

import argparse

from properties.conformance._check import check_traces

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """main checks the traces named; exit 0 only if every one conforms, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog="raftwright-check conformance",
        description="Replay recorded raftwright node traces through the reference spec.",
    )
    parser.add_argument("paths", nargs="+", metavar="TRACE_FILE_OR_DIR")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="also fail when part of a trace could be checked globally only",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="replay the node files in N processes (default 1)",
    )
    args = parser.parse_args(argv)
    result = check_traces(args.paths, jobs=max(1, args.jobs))
    print(result.render())
    if not result.ok:
        return 1
    if args.strict and result.global_only:
        print("strict: some trace segments were checked globally only")
        return 1
    return 0
