"""The Z3 engine: an inductive proof for every cluster size, BMC, and agreement with the spec.

- `prove_election_safety(variant=...) -> ProofResult`: Ivy-style inductive invariant over
  uninterpreted nodes, terms and quorums (Election Safety plus its supporting lemmas).
- `bmc(nodes, depth, encoding=...) -> BmcResult`: bounded model checking of Election Safety
  and Log Matching on a concrete-size cluster from the initial state.
- `check_quorum_overlap(variant, max_voters=7) -> OverlapResult`: every majority of a voter set
  meets every majority of the set one server away (thesis 4.1), learners never counted; the
  two-server and learners-counted variants must fail.
- `check_agreement(step_fn=spec.step, examples=N) -> AgreementResult`: the node encoding that
  BMC uses computes the same successor as `step_fn` on generated concrete states.

Each takes an alternative (a broken variant, a flawed `Encoding`, a mutated step function), so
the mutant catalogue can show that every check is able to fail. `python -m properties.smt`
runs all three at full size and prints a table.
"""

from properties.smt._agreement import CAPACITY, agreement_cases, check_agreement, compare_step
from properties.smt._bmc import ELECTION_SAFETY, LOG_MATCHING, Encoding, bmc
from properties.smt._induction import ElectionVariant, check_quorum_axiom, prove_election_safety
from properties.smt._node import Flaw
from properties.smt._overlap import ChangeVariant, check_quorum_overlap
from properties.smt._results import (
    AgreementResult,
    BmcResult,
    Obligation,
    OverlapResult,
    ProofResult,
)
from properties.smt._runner import CheckRow, main, overlap_rows, run_all

__all__ = [
    "CAPACITY",
    "ELECTION_SAFETY",
    "LOG_MATCHING",
    "AgreementResult",
    "BmcResult",
    "ChangeVariant",
    "CheckRow",
    "ElectionVariant",
    "Encoding",
    "Flaw",
    "Obligation",
    "OverlapResult",
    "ProofResult",
    "agreement_cases",
    "bmc",
    "check_agreement",
    "check_quorum_axiom",
    "check_quorum_overlap",
    "compare_step",
    "main",
    "overlap_rows",
    "prove_election_safety",
    "run_all",
]
