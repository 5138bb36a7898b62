"""``python -m bench [--full]``: run every benchmark section and regenerate the report."""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument(
        "--render",
        action="store_true",
        help="run nothing: redraw the plots and BENCHMARKS.md from bench/results*.json",
    )
    args = parser.parse_args(argv)
    if args.render:
        figures = json.loads((ROOT / "bench" / "results.json").read_text())
        detail = json.loads((ROOT / "bench" / "results-detail.json").read_text())
        full = figures["mode"] == "full"
    else:
        full = args.full
        try:
            figures, detail = run(FULL if full else QUICK)
        finally:
            kill_all()
    command = "make bench-full" if full else "make bench"
    notes_file = Path(__file__).with_name("analysis.md")
    notes = notes_file.read_text() if notes_file.exists() else ""
    write_all(figures, detail, ROOT, command, notes)
    for text, value, shown, met in targets(figures):
        print(f"{'met   ' if met else 'MISSED'}  {text}: {value} ({shown})")
    print(f"wrote {ROOT / 'bench' / 'results.json'} and {ROOT / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
