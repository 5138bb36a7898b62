"""The catalogue's table: which engine caught which bug, and the closing tally line."""

from __future__ import annotations

from typing import assert_never

from properties.mutants._catalogue import mutant_by_name
from properties.mutants._engines import EngineOutcome, Verdict
from properties.mutants._harness import CatalogueResult, MutantResult

__all__ = ["format_table", "summary_line"]


def _cell(outcome: EngineOutcome) -> str:
    match outcome.verdict:
        case Verdict.CAUGHT | Verdict.MISSED:
            return f"{outcome.verdict.value} {outcome.seconds:.1f}s"
        case Verdict.ERROR | Verdict.UNAVAILABLE | Verdict.SKIPPED:
            return str(outcome.verdict.value)
        case _:
            assert_never(outcome.verdict)


def _row(result: MutantResult, baseline: bool, gaps: tuple[str, ...] = ()) -> list[str]:
    verdicts = ("PASS", "FAIL") if baseline else ("yes", "NO")
    killed = verdicts[0] if result.ok else verdicts[1]
    if not result.ok and result.name in gaps:
        killed = "gap"
    return [
        result.name,
        result.bug,
        *(_cell(outcome) for outcome in result.outcomes),
        killed,
        result.witness if result.error is None else f"error: {result.error}",
    ]


def summary_line(result: CatalogueResult) -> str:
    """summary_line is the table's last line: `mutants: K killed, S survived[, G known gaps]`."""
    line = f"mutants: {result.killed} killed, {len(result.survived)} survived"
    if result.gaps:
        line += f", {len(result.gaps)} known engine gaps"
    return line


def format_table(result: CatalogueResult) -> str:
    """format_table renders the table; the baseline row comes first, the tally line last."""
    headers = ["mutant", "bug", *result.engines, "killed", "witness"]
    rows = [_row(result.baseline, baseline=True)]
    gaps = result.gaps
    rows.extend(_row(row, baseline=False, gaps=gaps) for row in result.mutants)
    widths = [max(len(r[c]) for r in [headers, *rows]) for c in range(len(headers))]

    def line(cells: list[str]) -> str:
        return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    out = [line(headers), "-+-".join("-" * w for w in widths), *(line(r) for r in rows)]
    notes = []
    if not result.baseline.ok:
        notes.append("baseline FAILED: the unmutated spec did not pass every engine")
        notes.extend(
            f"  {o.engine}: {o.verdict.value} {o.detail}"
            for o in result.baseline.outcomes
            if o.verdict is not Verdict.MISSED
        )
    for row in result.mutants:
        if not row.ok and row.name in gaps:
            notes.append(f"known engine gap {row.name}: {mutant_by_name(row.name).engine_gap}")
        elif not row.ok:
            misses = "; ".join(f"{o.engine}: {o.detail}" for o in row.outcomes if o.detail)
            notes.append(f"survived {row.name}: {row.error or misses}")
    mode = "quick (stop at first catch)" if result.quick else "full (every engine)"
    out.append(f"mode: {mode}; {result.seconds:.0f} s")
    out.extend(notes)
    out.append(summary_line(result))
    return "\n".join(out)
