"""The seeded-bug catalogue: it is big enough, each mutant really changes the spec, and each
one is caught.

Reference: the design brief's "a catalogue of seeded bugs proves that each engine can fail".
The fast checks here use the hand-written witness runs and the invariants directly; the
engine runs (explorer, Hypothesis, Z3) are `make mutants`, with one real explorer run and one
subprocess round trip exercised here.
"""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

import properties._invariants as invariants
import spec
import spec._election
import spec._quorum
import spec._step
from properties.mutants import (
    BASELINE,
    CATALOGUE,
    REQUIRED_COVERAGE,
    CatalogueResult,
    EngineOutcome,
    Mutant,
    MutantResult,
    Replacement,
    Verdict,
    format_table,
    holders,
    mutant_by_name,
    patched,
    run_catalogue,
    run_engine,
    run_scenario,
    summary_line,
)
from properties.mutants import _witnesses as witnesses
from properties.mutants._bugs_election import is_quorum_seed_threshold

IDS = [mutant.name for mutant in CATALOGUE]


def _held(module: ModuleType, name: str) -> object:
    """_held reads a name a module imported (not re-exported, so mypy would refuse `.name`)."""
    return vars(module)[name]


def test_catalogue_is_large_enough_and_names_are_unique() -> None:
    assert len(CATALOGUE) >= 12
    assert len(set(IDS)) == len(IDS)


def test_catalogue_covers_every_required_bug_class() -> None:
    """The issue's list: double vote, election restriction (5.4.1), prevote side effects (9.6),
    Figure 8 (5.4.2), even-size quorum (5.2), higher term in a reply (5.1), truncating matching
    entries (5.3), commit regress, candidate self-vote/persist, sentinel and stale read (6.4)."""
    covered = {mutant.covers for mutant in CATALOGUE}
    assert set(REQUIRED_COVERAGE) <= covered
    assert covered <= set(REQUIRED_COVERAGE)


@pytest.mark.parametrize("mutant", CATALOGUE, ids=IDS)
def test_every_mutant_is_documented_and_targets_a_real_spec_function(mutant: Mutant) -> None:
    assert mutant.bug and mutant.mirrors
    for replacement in mutant.replacements:
        original = getattr(__import__(replacement.module, fromlist=["_"]), replacement.name)
        assert callable(original)
        assert replacement.function is not original
        doc = inspect.getdoc(replacement.function)
        assert doc is not None and len(doc) > 40
        # The mutant must have the original's parameters, or it would crash, not mislead.
        assert list(inspect.signature(replacement.function).parameters) == list(
            inspect.signature(original).parameters
        )


def test_patched_reaches_every_importer_and_restores_them() -> None:
    """spec/_step.py imports handlers by name: the patch must reach that copy too."""
    mutant = mutant_by_name("double-vote")
    original = spec._election.on_vote_request
    assert _held(spec._step, "on_vote_request") is original
    with patched(mutant.replacements) as names:
        assert "spec._election.on_vote_request" in names
        assert "spec._step.on_vote_request" in names
        replaced = mutant.replacements[0].function
        assert spec._election.on_vote_request is replaced
        assert _held(spec._step, "on_vote_request") is replaced
    assert spec._election.on_vote_request is original
    assert _held(spec._step, "on_vote_request") is original


def test_patched_leaves_the_invariants_own_references_alone() -> None:
    """A quorum bug must not weaken the invariant that counts a leader's quorum (5.2)."""
    with patched([Replacement("spec._quorum", "is_quorum", is_quorum_seed_threshold)]) as names:
        assert spec.is_quorum is is_quorum_seed_threshold
        assert spec._quorum.is_quorum is is_quorum_seed_threshold
        assert _held(invariants, "is_quorum") is not is_quorum_seed_threshold
        assert not any(name.startswith("properties") for name in names)
    assert spec.is_quorum is not is_quorum_seed_threshold


def test_holders_rejects_a_misspelt_target() -> None:
    with pytest.raises(LookupError):
        holders("spec._election", "on_vote_reqest")


@pytest.mark.parametrize("mutant", CATALOGUE, ids=IDS)
def test_witness_is_clean_on_the_correct_spec(mutant: Mutant) -> None:
    """Every witness run respects every invariant when nothing is mutated (the scripts are
    not rigged: a refusal by the spec ends them early, but no claim breaks)."""
    if mutant.witness is None:
        pytest.skip(f"no witness: {mutant.no_witness}")
    outcome = run_scenario(mutant.witness, mutant.witness_size, mutant.witness_voters)
    assert not outcome.caught, outcome.transcript


@pytest.mark.parametrize("mutant", CATALOGUE, ids=IDS)
def test_witness_catches_its_mutant(mutant: Mutant) -> None:
    """Under its mutant, the witness breaks an invariant (the fast version of a kill)."""
    if mutant.witness is None:
        pytest.skip(f"no witness: {mutant.no_witness}")
    with patched(mutant.replacements):
        outcome = run_scenario(mutant.witness, mutant.witness_size, mutant.witness_voters)
    assert outcome.caught, outcome.transcript


def test_a_mutant_without_a_witness_says_why() -> None:
    """A missing witness is a documented choice, never an omission."""
    for mutant in CATALOGUE:
        assert (mutant.witness is None) == bool(mutant.no_witness), mutant.name


def test_explorer_kills_a_shallow_mutant_in_process() -> None:
    """A real engine run: the BFS explorer finds prevote term inflation (thesis 9.6)."""
    mutant = mutant_by_name("prevote-raises-term")
    settings = {"nodes": 3, "max_term": 2, "max_log": 1, "max_messages": 2, "max_seconds": 30.0}
    with patched(mutant.replacements):
        caught = run_engine("explorer", settings)
    assert caught.verdict is Verdict.CAUGHT, caught.detail
    assert "no_term_inflation" in caught.detail


def test_catalogue_runs_each_mutant_in_its_own_process() -> None:
    """The subprocess path: `python -m properties.mutants --one NAME --json` round trip."""
    result = run_catalogue(quick=True, names=["candidate-asks-before-persist"], baseline=False)
    (row,) = result.mutants
    assert row.ok, row
    assert row.killed_by == ("explorer",)
    assert row.outcomes[1].verdict is Verdict.SKIPPED
    assert not result.ok  # without a baseline the catalogue is never a pass
    # The patch died with the child process.
    assert spec._step.step.__module__ == "spec._step"


def _row(name: str, *verdicts: Verdict, ok: bool) -> MutantResult:
    outcomes = tuple(
        EngineOutcome(engine, verdict, 1.0, "")
        for engine, verdict in zip(("explorer", "hypothesis", "z3"), verdicts, strict=True)
    )
    return MutantResult(name, "a bug", "somewhere", outcomes, "caught: x", ok, 3.0)


def test_table_lists_every_row_and_ends_with_the_tally() -> None:
    result = CatalogueResult(
        baseline=_row(BASELINE, Verdict.MISSED, Verdict.MISSED, Verdict.MISSED, ok=True),
        mutants=(
            _row("m1", Verdict.CAUGHT, Verdict.MISSED, Verdict.CAUGHT, ok=True),
            _row("m2", Verdict.MISSED, Verdict.MISSED, Verdict.UNAVAILABLE, ok=False),
        ),
        quick=False,
        seconds=5.0,
    )
    table = format_table(result)
    lines = table.splitlines()
    header = [cell.strip() for cell in lines[0].split(" | ")]
    assert header[:6] == ["mutant", "bug", "explorer", "hypothesis", "z3", "killed"]
    assert any(line.startswith("m1 ") and "| yes" in line for line in lines)
    assert any(line.startswith("m2 ") and "| NO" in line for line in lines)
    assert lines[-1] == "mutants: 1 killed, 1 survived" == summary_line(result)
    assert not result.ok and result.survived == ("m2",)


def test_engine_gaps_are_documented_and_witnessed() -> None:
    """A mutant no engine reaches yet says why, and its witness must still catch it."""
    for mutant in CATALOGUE:
        if mutant.engine_gap:
            assert mutant.witness is not None, mutant.name
            assert len(mutant.engine_gap) > 40, mutant.name


def test_table_marks_a_documented_gap_and_keeps_real_survivors() -> None:
    """A documented gap is listed as such; an undocumented miss still fails the catalogue."""
    gapped = [m.name for m in CATALOGUE if m.engine_gap]
    if not gapped:
        pytest.skip("no documented engine gap in the catalogue")
    result = CatalogueResult(
        baseline=_row(BASELINE, Verdict.MISSED, Verdict.MISSED, Verdict.MISSED, ok=True),
        mutants=(
            _row(gapped[0], Verdict.MISSED, Verdict.MISSED, Verdict.MISSED, ok=False),
            _row("m2", Verdict.MISSED, Verdict.MISSED, Verdict.MISSED, ok=False),
        ),
        quick=False,
        seconds=5.0,
    )
    table = format_table(result)
    assert any(line.startswith(gapped[0]) and "| gap" in line for line in table.splitlines())
    assert f"known engine gap {gapped[0]}: " in table
    assert result.gaps == (gapped[0],) and result.survived == ("m2",)
    assert table.splitlines()[-1] == "mutants: 0 killed, 1 survived, 1 known engine gaps"
    assert not result.ok
    assert CatalogueResult(result.baseline, result.mutants[:1], False, 1.0).ok


def test_the_four_voter_removal_run_shows_the_single_server_change_bug() -> None:
    """Reference: thesis 4.1 and the 2015 fix; the shorter run the catalogue's gap note cites.

    Clean on the spec (it refuses node 0's first removal), broken under the mutant.
    """
    mutant = mutant_by_name("config-change-before-own-term-commit")
    clean = run_scenario(witnesses.single_server_removal_witness, 4)
    assert not clean.caught and clean.diverged is not None
    assert "no entry of term 1 has committed" in clean.diverged
    with patched(mutant.replacements):
        broken = run_scenario(witnesses.single_server_removal_witness, 4)
    assert broken.caught, broken.transcript
    assert broken.steps == 31
