"""The runner behind `python -m properties.smt`: every Z3 check at full size, one table.

Exit status 0 only if every check holds. `--quick` uses small sizes (for a smoke test);
`--verbose` prints each failing check's counterexample under the table.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from properties.smt._agreement import check_agreement
from properties.smt._bmc import bmc
from properties.smt._induction import prove_election_safety
from properties.smt._overlap import ChangeVariant, check_quorum_overlap
from properties.smt._results import (
    AgreementResult,
    BmcResult,
    OverlapResult,
    ProofResult,
    render_table,
)

__all__ = ["CheckRow", "main", "overlap_rows", "run_all"]


@dataclass(frozen=True, slots=True)
class CheckRow:
    """CheckRow is one line of the runner's table, with the full result behind it."""

    check: str
    what: str
    size: str
    result: ProofResult | BmcResult | AgreementResult | OverlapResult

    def cells(self) -> tuple[str, str, str, str, str]:
        """cells are the table columns: check, what, size, time, result."""
        r = self.result
        verdict = "ok" if r.ok else "FAIL"
        if isinstance(r, BmcResult):
            verdict += f" (depth {r.depth_reached}/{r.depth})"
            if r.violated:
                verdict += f": {r.violated}"
        elif isinstance(r, OverlapResult) and r.failed:
            verdict += f" (disjoint majorities at {len(r.failed)}/{len(r.obligations)} sizes)"
        elif isinstance(r, OverlapResult):
            verdict += f" ({len(r.obligations)}/{len(r.obligations)} sizes)"
        elif isinstance(r, ProofResult):
            verdict += f" ({len(r.obligations) - len(r.failed)}/{len(r.obligations)} obligations)"
        else:
            verdict += f" ({r.examples} examples)"
        return self.check, self.what, self.size, f"{r.seconds:.1f}s", verdict


def run_all(*, quick: bool = False) -> list[CheckRow]:
    """run_all runs the inductive proof, the membership overlap lemma, BMC and agreement.

    The overlap row is the lemma itself; the runner also requires its two-server variant to
    fail (a lemma that cannot fail proves nothing), reported as a row whose "ok" means "the
    check fired".
    """
    depth = 4 if quick else 8
    examples = 40 if quick else 400
    rows = [
        CheckRow(
            "induction",
            "Election Safety + lemmas, Init and consecution per action",
            "any n",
            prove_election_safety(),
        )
    ]
    rows.extend(overlap_rows(max_voters=4 if quick else 7))
    for n in (3, 4):
        rows.append(
            CheckRow(
                "bmc",
                "Election Safety, Log Matching from init",
                f"n={n}, depth {depth}",
                bmc(n, depth),
            )
        )
    rows.append(
        CheckRow(
            "agreement",
            "Z3 node transition == spec.step",
            "n=1..5, one node",
            check_agreement(examples=examples),
        )
    )
    return rows


def overlap_rows(max_voters: int = 7) -> list[CheckRow]:
    """overlap_rows: the one-server lemma, and its two-server variant that must fail."""
    return [
        CheckRow(
            "overlap",
            "one-server change: majorities of C and C' meet (thesis 4.1)",
            f"|C| <= {max_voters}",
            check_quorum_overlap(max_voters=max_voters),
        ),
        CheckRow(
            "overlap-fires",
            "two-server change: disjoint majorities found",
            f"|C| <= {max_voters}",
            _fires(check_quorum_overlap(ChangeVariant.TWO_SERVERS, max_voters=max_voters)),
        ),
    ]


def _fires(result: OverlapResult) -> OverlapResult:
    """_fires turns a variant that must fail into a row that is ok when it did fail."""
    return OverlapResult(
        variant=result.variant,
        max_voters=result.max_voters,
        ok=not result.ok and result.counterexample is not None,
        obligations=result.obligations,
        seconds=result.seconds,
        counterexample=result.counterexample,
    )


def main(argv: Sequence[str] = ()) -> int:
    """main prints the table and returns 0 only if every check held."""
    parser = argparse.ArgumentParser(prog="python -m properties.smt", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--verbose", action="store_true", help="print counterexamples")
    args = parser.parse_args(list(argv))
    rows = run_all(quick=args.quick)
    print(render_table(("check", "what", "size", "time", "result"), [r.cells() for r in rows]))
    failed = [row for row in rows if not row.result.ok]
    for row in failed:
        print(f"\n{row.result.summary()}")
        if args.verbose and row.result.counterexample:
            print(row.result.counterexample)
    return 1 if failed else 0
