"""The seeded-bug catalogue: proof that each engine can fail.

Each mutant replaces one spec function (rarely two) with a realistic wrong version, applied
with `unittest.mock.patch` on every module that holds it (`patched`), never by editing files.
`run_catalogue` runs every mutant in its own process through the explorer, the Hypothesis
machine and the Z3 agreement check, after a baseline row that shows the unmutated spec passes
them all; `format_table` prints which engine caught which bug. `python -m properties.mutants`
(and `make mutants`) is the command line.
"""

from properties.mutants._catalogue import (
    CATALOGUE,
    EXPLORER_BASE,
    REQUIRED_COVERAGE,
    Budget,
    Mutant,
    mutant_by_name,
)
from properties.mutants._engines import ENGINES, EngineOutcome, Verdict, run_engine
from properties.mutants._harness import (
    BASELINE,
    CatalogueResult,
    MutantResult,
    explorer_settings,
    run_catalogue,
    run_one,
)
from properties.mutants._patch import Replacement, holders, patched
from properties.mutants._scenario import Run, ScenarioError, ScenarioOutcome, run_scenario
from properties.mutants._table import format_table, summary_line

__all__ = [
    "BASELINE",
    "CATALOGUE",
    "ENGINES",
    "EXPLORER_BASE",
    "REQUIRED_COVERAGE",
    "Budget",
    "CatalogueResult",
    "EngineOutcome",
    "Mutant",
    "MutantResult",
    "Replacement",
    "Run",
    "ScenarioError",
    "ScenarioOutcome",
    "Verdict",
    "explorer_settings",
    "format_table",
    "holders",
    "mutant_by_name",
    "patched",
    "run_catalogue",
    "run_engine",
    "run_one",
    "run_scenario",
    "summary_line",
]
