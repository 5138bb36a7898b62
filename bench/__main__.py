"""``python -m bench [--full]``: run every benchmark section and regenerate the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench._proc import ROOT, kill_all
from bench._report import targets, write_all
from bench._run import FULL, QUICK, run

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="raftwright benchmarks side by side with PySyncObj"
    )
    parser.add_argument("--full", action="store_true", help="full mode (published numbers)")
    args = parser.parse_args(argv)
    mode = FULL if args.full else QUICK
    command = "make bench-full" if args.full else "make bench"
    try:
        figures, detail = run(mode)
    finally:
        kill_all()
    notes_file = Path(__file__).with_name("analysis.md")
    notes = notes_file.read_text() if notes_file.exists() else ""
    write_all(figures, detail, ROOT, command, notes)
    for text, value, shown, met in targets(figures):
        print(f"{'met   ' if met else 'MISSED'}  {text}: {value} ({shown})")
    print(f"wrote {ROOT / 'bench' / 'results.json'} and {ROOT / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
