"""python -m properties.stateful [--profile ci|deep] [--max-examples N]: run the engine.

Prints the verdict, throughput and coverage; on a violation prints the shrunk run table and
exits 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from properties.stateful._profiles import PROFILES
from properties.stateful._runner import StatefulResult, run_stateful

__all__ = ["main"]


def render(result: StatefulResult) -> str:
    """render is the human summary of one engine run."""
    verdict = "ok" if result.ok else "VIOLATION"
    lines = [
        f"stateful ({result.profile}): {verdict}: {result.examples} runs, {result.steps} steps "
        f"in {result.seconds:.1f} s ({result.steps_per_second:.0f} steps/s)",
    ]
    runs = max(result.coverage.get("runs", 0), 1)
    for key, value in result.coverage.items():
        if key != "runs":
            lines.append(f"  {key:<24} {value:>6}  ({100 * value / runs:.0f}%)")
    if result.counterexample is not None:
        lines.append(result.counterexample)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """main parses the arguments, runs the engine and returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m properties.stateful",
        description="Explore the Raft spec's cluster model with Hypothesis and check every "
        "invariant after every step.",
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    parser.add_argument("--max-examples", type=int, default=None, help="override the profile")
    args = parser.parse_args(argv)
    result = run_stateful(args.profile, args.max_examples)
    print(render(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
