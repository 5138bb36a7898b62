"""`python -m properties.mutants`: run the seeded-bug catalogue and print the table.

`--one NAME` runs a single mutant (or `baseline`) in this process; the catalogue run uses it
to give each mutant its own process. Exits non-zero if a mutant survives or the baseline fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from properties.mutants._catalogue import CATALOGUE
from properties.mutants._engines import verdicts_without_shrinking
from properties.mutants._harness import BASELINE, run_catalogue, run_one
from properties.mutants._table import format_table


def main(argv: Sequence[str] | None = None) -> int:
    """main is the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m properties.mutants",
        description="Apply each seeded bug to the spec and report which engine caught it.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="stop at the first engine that catches"
    )
    parser.add_argument("--one", metavar="NAME", help=f"run one mutant here (or {BASELINE!r})")
    parser.add_argument("--only", metavar="NAME", action="append", help="run only these mutants")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    args = parser.parse_args(argv)
    if args.list:
        for mutant in CATALOGUE:
            print(f"{mutant.name:30} {mutant.bug}  [{mutant.mirrors}]")
        return 0
    if args.one is not None:
        # This process exists for one mutant: verdicts matter, minimal runs do not.
        verdicts_without_shrinking()
        row = run_one(args.one, quick=args.quick)
        if args.json:
            print(json.dumps(row.to_json()))
        else:
            print(row)
        return 0 if row.ok else 1
    result = run_catalogue(quick=args.quick, names=args.only, jobs=args.jobs)
    print(format_table(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
