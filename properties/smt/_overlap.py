"""The quorum-overlap lemma behind one-server membership changes (Raft thesis section 4.1).

A configuration change is safe one server at a time because every majority of the old voter
set C meets every majority of the new one C' when C' is C plus or minus one server: with
|C| = n, a majority of C has more than n/2 members and a majority of C' more than (n +- 1)/2,
and together they exceed |C union C'|, so they share a server. Learners (non-voting members,
thesis 4.2.1) are in neither count. Two servers at once break it (thesis Figure 4.2): from
C = {0,1,2} to C' = {0,1,2,3,4}, the majorities {0,1} and {2,3,4} share nothing, and neither
does a swap such as {0,1,2} to {0,1,3} with {0,2} and {1,3}.

`check_quorum_overlap` decides, for every size of C up to `max_voters` (symbolic sets over a
universe of |C| plus the servers changed, with symbolic learner sets on both sides), that no
majority of C misses a majority of C'. A majority is judged by `quorum_size` (the spec's, by
default) over the voters only. The variants are the two ways the lemma is known to fail: a
two-server change, and majorities that count learners; each must come back with a
counterexample (the check is shown to fire), printed as a table of the two configurations and
the two disjoint majorities.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from typing import Any

import z3

from properties.smt._results import Obligation, OverlapResult, render_table
from spec import quorum_size as spec_quorum_size

__all__ = ["ChangeVariant", "check_quorum_overlap"]

Expr = Any  # z3 expressions are untyped

_TIMEOUT_MS = 10_000


class ChangeVariant(enum.Enum):
    """ChangeVariant selects the lemma (one server) or a way it is known to fail."""

    ONE_SERVER = "one-server"
    TWO_SERVERS = "two-servers"
    LEARNERS_COUNTED = "learners-counted"


def _count(bits: list[Expr]) -> Expr:
    return z3.Sum([z3.If(b, 1, 0) for b in bits])


def _majority(
    members: list[Expr], counted: list[Expr], size: Expr, top: int, quorum: Callable[[int], int]
) -> list[Expr]:
    """`members` is a subset of `counted` with at least quorum(|voters|) elements."""
    out = [z3.Implies(m, c) for m, c in zip(members, counted, strict=True)]
    picked = _count(members)
    out.extend(z3.Implies(size == k, picked >= quorum(k)) for k in range(1, top + 1))
    return out


def _members(model: z3.ModelRef, bits: list[Expr]) -> list[int]:
    return [i for i, b in enumerate(bits) if z3.is_true(model.eval(b, model_completion=True))]


def check_quorum_overlap(
    variant: ChangeVariant = ChangeVariant.ONE_SERVER,
    *,
    max_voters: int = 7,
    quorum_size: Callable[[int], int] = spec_quorum_size,
) -> OverlapResult:
    """check_quorum_overlap proves (or refutes) majority overlap across one change.

    One obligation per size n of the old voter set C, 1..`max_voters`: the formula "C has n
    voters, C' differs from C in exactly one voter (two for TWO_SERVERS), Q is a majority of
    C, Q' a majority of C', and Q and Q' are disjoint" must be unsatisfiable. A model is a
    counterexample; the result then holds the first one as a table.
    """
    started = time.perf_counter()
    obligations: list[Obligation] = []
    counterexample: str | None = None
    changed = 2 if variant is ChangeVariant.TWO_SERVERS else 1
    for n in range(1, max_voters + 1):
        universe = n + changed
        old = [z3.Bool(f"c{i}") for i in range(universe)]
        new = [z3.Bool(f"d{i}") for i in range(universe)]
        old_learners = [z3.Bool(f"lc{i}") for i in range(universe)]
        new_learners = [z3.Bool(f"ld{i}") for i in range(universe)]
        q = [z3.Bool(f"q{i}") for i in range(universe)]
        r = [z3.Bool(f"r{i}") for i in range(universe)]
        solver = z3.Solver()
        solver.set("timeout", _TIMEOUT_MS)
        new_size = _count(new)
        solver.add(_count(old) == n, new_size >= 1)
        solver.add(_count([z3.Xor(a, b) for a, b in zip(old, new, strict=True)]) == changed)
        # A server is a voter or a learner of a configuration, never both (spec.Config).
        solver.add(*[z3.Not(z3.And(v, x)) for v, x in zip(old, old_learners, strict=True)])
        solver.add(*[z3.Not(z3.And(v, x)) for v, x in zip(new, new_learners, strict=True)])
        if variant is ChangeVariant.LEARNERS_COUNTED:
            counted_old = [z3.Or(v, x) for v, x in zip(old, old_learners, strict=True)]
            counted_new = [z3.Or(v, x) for v, x in zip(new, new_learners, strict=True)]
        else:
            counted_old, counted_new = old, new
        solver.add(*_majority(q, counted_old, _count(old), universe, quorum_size))
        solver.add(*_majority(r, counted_new, new_size, universe, quorum_size))
        solver.add(*[z3.Not(z3.And(a, b)) for a, b in zip(q, r, strict=True)])
        answer = solver.check()
        ok = answer == z3.unsat
        text = None
        if answer == z3.sat:
            model = solver.model()
            text = render_table(
                ("set", "servers"),
                [
                    ("voters C", _members(model, old)),
                    ("learners of C", _members(model, old_learners)),
                    ("voters C'", _members(model, new)),
                    ("learners of C'", _members(model, new_learners)),
                    ("majority Q of C", _members(model, q)),
                    ("majority Q' of C'", _members(model, r)),
                ],
            )
            text = f"|C| = {n}: Q and Q' share no server\n{text}"
            if counterexample is None:
                counterexample = text
        obligations.append(
            Obligation(
                action=f"|C| = {n}, C' = C +- {changed}",
                lemma="every majority of C meets every majority of C'",
                ok=ok,
                verdict=str(answer),
                counterexample=text,
            )
        )
    return OverlapResult(
        variant=variant.value,
        max_voters=max_voters,
        ok=all(item.ok for item in obligations),
        obligations=tuple(obligations),
        seconds=time.perf_counter() - started,
        counterexample=counterexample,
    )
