"""`raftwright-check`: the verification toolkit's command line.

Subcommands front each engine; `all` runs every engine and prints the summary table that
`make check` shows. The product's own command is `raftwright` (impl/); this one only reads
the spec, the invariants and impl's trace format.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

__all__ = ["main"]

# subcommand -> (module with a `main(argv) -> int`, one-line help)
_FRONTS: dict[str, tuple[str, str]] = {
    "stateful": ("properties.stateful.__main__", "Hypothesis state machine over the spec"),
    "explore": ("properties.explore._cli", "exhaustive bounded breadth-first explorer"),
    "smt": ("properties.smt.__main__", "Z3: inductive proof, bounded model checking, agreement"),
    "mutants": ("properties.mutants.__main__", "seeded-bug catalogue: which engine caught what"),
    "conformance": ("properties.conformance._cli", "replay implementation traces on the spec"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raftwright-check",
        description="Verify the raftwright spec and check implementation traces against it.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    every = commands.add_parser("all", help="run every engine and print the summary table")
    every.add_argument(
        "--only",
        action="append",
        choices=["hypothesis", "explorer", "smt", "conformance", "mutants"],
        help="run only this engine (repeatable)",
    )
    for name, (_, text) in _FRONTS.items():
        commands.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """main dispatches to an engine's own command line, or runs them all."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in _FRONTS:
        module = importlib.import_module(_FRONTS[args[0]][0])
        front: Callable[[list[str]], int] = module.main
        return front(args[1:])
    parsed = _parser().parse_args(args)
    from properties._summary import run_all

    return run_all(parsed.only)


if __name__ == "__main__":
    sys.exit(main())
