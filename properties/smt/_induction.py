"""An inductive proof of Election Safety for every cluster size (Raft paper section 5.2, 5.4).

The election protocol is modelled Ivy-style as a transition system over uninterpreted sorts:
`Node` (any number of servers), `Term` (totally ordered, with a least element) and `Quorum`
(a membership relation with the axiom that any two quorums share a node). Nothing depends on
how many nodes there are, so a proof here covers every cluster size. The axiom is justified
separately for the spec's `quorum_size` by `check_quorum_axiom` on concrete sizes.

State, one symbol per concept of the spec's election:

- `cur(n)`: current term (durable); `vote_of(n, m)`: n's durable `voted_for` is m;
- `cand(n)`, `lead(n)`: the role; `got(c, m)`: the candidate has counted m's vote (volatile);
- ghost history: `voted(n, t, m)` (n granted its vote in term t to m, i.e. a granted
  VoteResponse for term t exists), `started(n, t)`, `led(n, t)` and `lq(n, t)`, the quorum
  that elected n in t.

Actions (each is one abstract step; a spec step may be a sequence of them, e.g. "adopt the
higher term of a vote request, then grant it"):

- prevote/timeout: a non-leader drops its candidacy; prevote changes no term and no vote;
- start election: term strictly increases (the spec's term + 1 is one instance), vote self;
- adopt a higher term: any message with a higher term; forget vote, step down;
- grant vote: at the same term, at most one candidate per term (durable `voted_for`);
- count vote: a granted reply for the candidate's current term;
- become leader: a quorum of counted votes;
- become follower: hearing a current leader, or check-quorum stepping down;
- restart: volatile state lost, term and vote kept (they are durable).

The log restriction (5.4.1) is abstracted away: dropping a guard only adds behaviours, so the
proof still covers the spec. Each broken variant removes one safety mechanism and the proof
must then fail with a counterexample to induction, shown as a before/after table.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import z3

from properties.smt._results import Obligation, ProofResult, render_table
from spec import quorum_size as spec_quorum_size

__all__ = ["ElectionVariant", "check_quorum_axiom", "prove_election_safety"]

Expr = Any  # z3 expressions are untyped

# Each obligation of the correct model is decided in milliseconds; the bound only stops a
# broken variant's hard query from dominating the run (unknown counts as a failure).
_TIMEOUT_MS = 5_000


class ElectionVariant(enum.Enum):
    """ElectionVariant selects the correct model or one with a safety mechanism removed."""

    CORRECT = "correct"
    VOTE_TWICE = "vote-twice"
    QUORUMS_MAY_NOT_INTERSECT = "no-intersection"
    LEADER_WITHOUT_QUORUM = "leader-without-quorum"
    RESTART_FORGETS_VOTE = "volatile-vote"
    SAME_TERM_ELECTION = "no-term-bump"
    STALE_VOTE_COUNTED = "stale-vote"


@dataclass(frozen=True)
class _Vocab:
    node: Any
    term: Any
    quorum: Any
    le: Any
    member: Any
    zero: Any


@dataclass(frozen=True)
class _State:
    """_State is a state as Python callables building z3 terms, so updates need no frame axioms."""

    cur: Callable[[Expr], Expr]
    vote_of: Callable[[Expr, Expr], Expr]
    voted: Callable[[Expr, Expr, Expr], Expr]
    cand: Callable[[Expr], Expr]
    lead: Callable[[Expr], Expr]
    got: Callable[[Expr, Expr], Expr]
    started: Callable[[Expr, Expr], Expr]
    led: Callable[[Expr, Expr], Expr]
    lq: Callable[[Expr, Expr], Expr]


def _vocab() -> _Vocab:
    node = z3.DeclareSort("Node")
    term = z3.DeclareSort("Term")
    quorum = z3.DeclareSort("Quorum")
    return _Vocab(
        node=node,
        term=term,
        quorum=quorum,
        le=z3.Function("le", term, term, z3.BoolSort()),
        member=z3.Function("member", node, quorum, z3.BoolSort()),
        zero=z3.Const("zero", term),
    )


def _axioms(v: _Vocab, variant: ElectionVariant) -> list[Expr]:
    a, b, c = z3.Consts("a b c", v.term)
    q1, q2 = z3.Consts("q1 q2", v.quorum)
    m = z3.Const("m", v.node)
    axioms = [
        z3.ForAll([a], v.le(a, a)),
        z3.ForAll([a, b], z3.Implies(z3.And(v.le(a, b), v.le(b, a)), a == b)),
        z3.ForAll([a, b, c], z3.Implies(z3.And(v.le(a, b), v.le(b, c)), v.le(a, c))),
        z3.ForAll([a, b], z3.Or(v.le(a, b), v.le(b, a))),
        z3.ForAll([a], v.le(v.zero, a)),
        # A majority is never empty; kept in every variant so a broken one shows two quorums.
        z3.ForAll([q1], z3.Exists([m], v.member(m, q1))),
    ]
    if variant is not ElectionVariant.QUORUMS_MAY_NOT_INTERSECT:
        axioms.append(z3.ForAll([q1, q2], z3.Exists([m], z3.And(v.member(m, q1), v.member(m, q2)))))
    return axioms


def _symbolic(v: _Vocab, tag: str) -> _State:
    node, term, boolean = v.node, v.term, z3.BoolSort()
    return _State(
        cur=z3.Function(f"cur{tag}", node, term),
        vote_of=z3.Function(f"vote_of{tag}", node, node, boolean),
        voted=z3.Function(f"voted{tag}", node, term, node, boolean),
        cand=z3.Function(f"cand{tag}", node, boolean),
        lead=z3.Function(f"lead{tag}", node, boolean),
        got=z3.Function(f"got{tag}", node, node, boolean),
        started=z3.Function(f"started{tag}", node, term, boolean),
        led=z3.Function(f"led{tag}", node, term, boolean),
        lq=z3.Function(f"lq{tag}", node, term, v.quorum),
    )


def _initial(v: _Vocab, lq: Callable[[Expr, Expr], Expr]) -> _State:
    false = z3.BoolVal(False)
    return _State(
        cur=lambda n: v.zero,
        vote_of=lambda n, m: false,
        voted=lambda n, t, m: false,
        cand=lambda n: false,
        lead=lambda n: false,
        got=lambda c, m: false,
        started=lambda n, t: false,
        led=lambda n, t: false,
        lq=lq,
    )


# --- the lemmas ---------------------------------------------------------------------------

Lemma = tuple[str, Callable[[_Vocab, _State], Expr]]


def _election_safety(v: _Vocab, s: _State) -> Expr:
    n1, n2 = z3.Consts("n1 n2", v.node)
    t = z3.Const("t", v.term)
    return z3.ForAll([n1, n2, t], z3.Implies(z3.And(s.led(n1, t), s.led(n2, t)), n1 == n2))


def _one_vote_per_term(v: _Vocab, s: _State) -> Expr:
    n, m1, m2 = z3.Consts("n m1 m2", v.node)
    t = z3.Const("t", v.term)
    return z3.ForAll(
        [n, t, m1, m2], z3.Implies(z3.And(s.voted(n, t, m1), s.voted(n, t, m2)), m1 == m2)
    )


def _leader_quorum_voted(v: _Vocab, s: _State) -> Expr:
    c, m = z3.Consts("c m", v.node)
    t = z3.Const("t", v.term)
    return z3.ForAll(
        [c, t, m],
        z3.Implies(z3.And(s.led(c, t), v.member(m, s.lq(c, t))), s.voted(m, t, c)),
    )


def _votes_not_in_future(v: _Vocab, s: _State) -> Expr:
    n, m = z3.Consts("n m", v.node)
    t = z3.Const("t", v.term)
    return z3.ForAll([n, t, m], z3.Implies(s.voted(n, t, m), v.le(t, s.cur(n))))


def _durable_vote_is_history(v: _Vocab, s: _State) -> Expr:
    n, m = z3.Consts("n m", v.node)
    return z3.ForAll([n, m], s.vote_of(n, m) == s.voted(n, s.cur(n), m))


def _counted_votes_are_real(v: _Vocab, s: _State) -> Expr:
    c, m = z3.Consts("c m", v.node)
    return z3.ForAll([c, m], z3.Implies(z3.And(s.cand(c), s.got(c, m)), s.voted(m, s.cur(c), c)))


LEMMAS: tuple[Lemma, ...] = (
    ("election safety", _election_safety),
    ("one vote per term", _one_vote_per_term),
    ("leader's quorum voted for it", _leader_quorum_voted),
    ("no vote in a future term", _votes_not_in_future),
    ("voted_for matches the votes cast", _durable_vote_is_history),
    ("counted votes were granted this term", _counted_votes_are_real),
)


def _invariant(v: _Vocab, s: _State) -> list[Expr]:
    return [lemma(v, s) for _, lemma in LEMMAS]


# --- the actions --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Action:
    name: str
    params: tuple[tuple[str, Expr], ...]
    guard: Expr
    post: _State


def _is(x: Expr, a: Expr) -> Expr:
    return x == a


def _actions(v: _Vocab, s: _State, variant: ElectionVariant) -> list[_Action]:
    n, c, m = z3.Consts("p_n p_c p_m", v.node)
    t = z3.Const("p_t", v.term)
    q = z3.Const("p_q", v.quorum)
    x = z3.Const("p_x", v.node)
    actions: list[_Action] = []

    # Timeout / prevote: a non-leader enters the prevote phase; term and vote are untouched.
    actions.append(
        _Action(
            "timeout (prevote phase)",
            (("n", n),),
            z3.Not(s.lead(n)),
            replace(
                s,
                cand=lambda a: z3.And(s.cand(a), a != n),
                got=lambda a, b: z3.And(s.got(a, b), a != n),
            ),
        )
    )

    # Start election after a prevote quorum: term + 1, vote for self, persist, candidate.
    higher = (
        v.le(s.cur(n), t)
        if variant is ElectionVariant.SAME_TERM_ELECTION
        else z3.Not(v.le(t, s.cur(n)))
    )
    actions.append(
        _Action(
            "start election",
            (("n", n), ("t", t)),
            z3.And(z3.Not(s.lead(n)), higher),
            replace(
                s,
                cur=lambda a: z3.If(a == n, t, s.cur(a)),
                vote_of=lambda a, b: z3.If(a == n, b == n, s.vote_of(a, b)),
                voted=lambda a, u, b: z3.Or(s.voted(a, u, b), z3.And(a == n, u == t, b == n)),
                cand=lambda a: z3.Or(s.cand(a), a == n),
                got=lambda a, b: z3.If(a == n, b == n, s.got(a, b)),
                started=lambda a, u: z3.Or(s.started(a, u), z3.And(a == n, u == t)),
            ),
        )
    )

    # Adopt a higher term from any message (section 5.1): forget the vote, step down.
    actions.append(
        _Action(
            "adopt higher term",
            (("n", n), ("t", t)),
            z3.Not(v.le(t, s.cur(n))),
            replace(
                s,
                cur=lambda a: z3.If(a == n, t, s.cur(a)),
                vote_of=lambda a, b: z3.And(s.vote_of(a, b), a != n),
                cand=lambda a: z3.And(s.cand(a), a != n),
                lead=lambda a: z3.And(s.lead(a), a != n),
                got=lambda a, b: z3.And(s.got(a, b), a != n),
            ),
        )
    )

    # Grant a vote at the same term: at most one candidate per term (section 5.2).
    free = z3.ForAll([x], z3.Implies(s.vote_of(m, x), x == c))
    grant_guard = [m != c, s.started(c, t), s.cur(m) == t]
    if variant is not ElectionVariant.VOTE_TWICE:
        grant_guard.append(free)
    actions.append(
        _Action(
            "grant vote",
            (("voter", m), ("candidate", c), ("t", t)),
            z3.And(*grant_guard),
            replace(
                s,
                vote_of=lambda a, b: z3.If(a == m, b == c, s.vote_of(a, b)),
                voted=lambda a, u, b: z3.Or(s.voted(a, u, b), z3.And(a == m, u == t, b == c)),
                cand=lambda a: z3.And(s.cand(a), a != m),
                lead=lambda a: z3.And(s.lead(a), a != m),
                got=lambda a, b: z3.And(s.got(a, b), a != m),
            ),
        )
    )

    # Count a granted reply; it must answer the current election (etcd#8243).
    reply_term = t if variant is ElectionVariant.STALE_VOTE_COUNTED else s.cur(c)
    actions.append(
        _Action(
            "count vote",
            (("candidate", c), ("voter", m), ("reply term", t)),
            z3.And(s.cand(c), s.voted(m, reply_term, c)),
            replace(s, got=lambda a, b: z3.Or(s.got(a, b), z3.And(a == c, b == m))),
        )
    )

    # Become leader with a quorum of counted votes.
    quorum_ok = z3.ForAll([x], z3.Implies(v.member(x, q), s.got(c, x)))
    leader_guard = [s.cand(c)]
    if variant is not ElectionVariant.LEADER_WITHOUT_QUORUM:
        leader_guard.append(quorum_ok)
    actions.append(
        _Action(
            "become leader",
            (("candidate", c), ("quorum", q)),
            z3.And(*leader_guard),
            replace(
                s,
                cand=lambda a: z3.And(s.cand(a), a != c),
                lead=lambda a: z3.Or(s.lead(a), a == c),
                led=lambda a, u: z3.Or(s.led(a, u), z3.And(a == c, u == s.cur(c))),
                lq=lambda a, u: z3.If(z3.And(a == c, u == s.cur(c)), q, s.lq(a, u)),
            ),
        )
    )

    # Become follower in the same term: hear the current leader, or check-quorum step-down.
    actions.append(
        _Action(
            "become follower",
            (("n", n),),
            z3.BoolVal(True),
            replace(
                s,
                cand=lambda a: z3.And(s.cand(a), a != n),
                lead=lambda a: z3.And(s.lead(a), a != n),
                got=lambda a, b: z3.And(s.got(a, b), a != n),
            ),
        )
    )

    # Restart: volatile state is lost; term and vote survive because they are durable.
    forgets = variant is ElectionVariant.RESTART_FORGETS_VOTE
    actions.append(
        _Action(
            "restart",
            (("n", n),),
            z3.BoolVal(True),
            replace(
                s,
                vote_of=(lambda a, b: z3.And(s.vote_of(a, b), a != n)) if forgets else s.vote_of,
                cand=lambda a: z3.And(s.cand(a), a != n),
                lead=lambda a: z3.And(s.lead(a), a != n),
                got=lambda a, b: z3.And(s.got(a, b), a != n),
            ),
        )
    )
    return actions


# --- counterexamples ----------------------------------------------------------------------


def _term_names(model: Any, v: _Vocab) -> Callable[[Expr], str]:
    universe = model.get_universe(v.term) or []
    ranks: dict[str, int] = {}
    for element in universe:
        below = sum(
            1
            for other in universe
            if z3.is_true(model.eval(v.le(other, element), model_completion=True))
        )
        ranks[str(element)] = below - 1

    def name(expr: Expr) -> str:
        value = model.eval(expr, model_completion=True)
        return str(ranks.get(str(value), str(value)))

    return name


def _render_cti(
    model: Any, v: _Vocab, pre: _State, action: _Action | None, post: _State, *, lemma: str
) -> str:
    nodes = model.get_universe(v.node) or []
    names = {str(element): f"n{i}" for i, element in enumerate(nodes)}
    term = _term_names(model, v)

    def truth(expr: Expr) -> bool:
        return bool(z3.is_true(model.eval(expr, model_completion=True)))

    def vote(s: _State, a: Expr) -> str:
        chosen = [names[str(b)] for b in nodes if truth(s.vote_of(a, b))]
        return ",".join(chosen) if chosen else "-"

    def role(s: _State, a: Expr) -> str:
        roles = [r for r, on in (("leader", s.lead(a)), ("candidate", s.cand(a))) if truth(on)]
        return "+".join(roles) if roles else "follower"

    terms = model.get_universe(v.term) or []

    def led(s: _State, a: Expr) -> str:
        return ",".join(sorted(term(u) for u in terms if truth(s.led(a, u)))) or "-"

    def history(s: _State, a: Expr) -> str:
        cast = sorted(
            f"{term(u)}:{names[str(b)]}" for u in terms for b in nodes if truth(s.voted(a, u, b))
        )
        return ",".join(cast) or "-"

    rows = [
        (
            names[str(a)],
            f"{term(pre.cur(a))} -> {term(post.cur(a))}",
            f"{vote(pre, a)} -> {vote(post, a)}",
            f"{role(pre, a)} -> {role(post, a)}",
            f"{led(pre, a)} -> {led(post, a)}",
            f"{history(pre, a)} -> {history(post, a)}",
        )
        for a in nodes
    ]
    lines = []
    if action is None:
        lines.append(f"initial state breaks '{lemma}'")
    else:
        params = []
        for label, param in action.params:
            value = model.eval(param, model_completion=True)
            if param.sort() == v.term:
                shown = term(param)
            elif param.sort() == v.quorum:
                members = [names[str(b)] for b in nodes if truth(v.member(b, param))]
                shown = "{" + ",".join(members) + "}"
            else:
                shown = names.get(str(value), str(value))
            params.append(f"{label}={shown}")
        lines.append(f"action '{action.name}' ({', '.join(params)}) breaks '{lemma}'")
    lines.append(
        render_table(
            ("node", "term", "voted_for", "role", "led in terms", "votes cast (term:for)"), rows
        )
    )
    return "\n".join(lines)


# --- the proof ----------------------------------------------------------------------------


def check_quorum_axiom(
    quorum_size: Callable[[int], int] = spec_quorum_size, sizes: Sequence[int] = range(1, 10)
) -> tuple[bool, str]:
    """check_quorum_axiom proves "any two quorums intersect" for concrete cluster sizes.

    This is what licenses the uninterpreted `Quorum` sort: for each size n, two sets of at
    least `quorum_size(n)` voters must share one (section 5.2; the seed's `len >> 1` over the
    other peers fails at n = 4). Returns (holds, explanation).
    """
    for n in sizes:
        need = quorum_size(n)
        a = [z3.Bool(f"a{i}") for i in range(n)]
        b = [z3.Bool(f"b{i}") for i in range(n)]
        solver = z3.Solver()
        solver.add(z3.PbGe([(x, 1) for x in a], need), z3.PbGe([(x, 1) for x in b], need))
        solver.add(*[z3.Not(z3.And(x, y)) for x, y in zip(a, b, strict=True)])
        if solver.check() == z3.sat:
            model = solver.model()
            left = [i for i, x in enumerate(a) if z3.is_true(model.eval(x))]
            right = [i for i, y in enumerate(b) if z3.is_true(model.eval(y))]
            return False, f"n={n}, quorum {need}: disjoint quorums {left} and {right}"
    return True, f"quorums of every size in {min(sizes)}..{max(sizes)} intersect"


def _small_domains(v: _Vocab) -> list[Expr]:
    """_small_domains bounds every sort to a few elements, to find enabling states quickly.

    Used only for the non-vacuity checks: a model of the bounded formula is a model of the
    unbounded one, so "enabled" found this way is really enabled.
    """
    nodes = z3.Consts("dom_n0 dom_n1 dom_n2", v.node)
    terms = z3.Consts("dom_t0 dom_t1 dom_t2", v.term)
    quorum = z3.Const("dom_q0", v.quorum)
    x, t, q = z3.Const("dx", v.node), z3.Const("dt", v.term), z3.Const("dq", v.quorum)
    return [
        z3.ForAll([x], z3.Or(*[x == n for n in nodes])),
        z3.ForAll([t], z3.Or(*[t == u for u in terms])),
        z3.ForAll([q], q == quorum),
    ]


def _check(
    v: _Vocab,
    variant: ElectionVariant,
    assumptions: list[Expr],
    goal: Expr,
) -> tuple[Any, Any]:
    solver = z3.Solver()
    solver.set("timeout", _TIMEOUT_MS)
    solver.add(*_axioms(v, variant), *assumptions, z3.Not(goal))
    verdict = solver.check()
    return verdict, solver.model() if verdict == z3.sat else None


def prove_election_safety(
    variant: ElectionVariant = ElectionVariant.CORRECT,
    *,
    quorum_size: Callable[[int], int] = spec_quorum_size,
) -> ProofResult:
    """prove_election_safety checks initiation and consecution of every lemma, per action.

    The result is ok only if every obligation is unsat, every action is enabled in some state
    satisfying the invariant (so no consecution holds vacuously) and the quorum axiom holds for
    `quorum_size` on concrete sizes. The first failure comes with a before/after table.
    """
    start = time.perf_counter()
    v = _vocab()
    obligations: list[Obligation] = []
    axiom_ok, axiom_text = check_quorum_axiom(quorum_size)
    obligations.append(
        Obligation(
            "axiom", "quorum intersection", axiom_ok, axiom_text, None if axiom_ok else axiom_text
        )
    )
    lq0 = z3.Function("lq0", v.node, v.term, v.quorum)
    init = _initial(v, lq0)
    for name, lemma in LEMMAS:
        verdict, model = _check(v, variant, [], lemma(v, init))
        cex = None if model is None else _render_cti(model, v, init, None, init, lemma=name)
        obligations.append(Obligation("init", name, verdict == z3.unsat, str(verdict), cex))
    pre = _symbolic(v, "")
    inv = _invariant(v, pre)
    for action in _actions(v, pre, variant):
        enabled = z3.Solver()
        enabled.set("timeout", _TIMEOUT_MS)
        enabled.add(*_axioms(v, variant), *_small_domains(v), *inv, action.guard)
        verdict = enabled.check()
        obligations.append(
            Obligation(action.name, "enabled", verdict == z3.sat, str(verdict), expected_sat=True)
        )
        for name, lemma in LEMMAS:
            verdict, model = _check(v, variant, [*inv, action.guard], lemma(v, action.post))
            cex = None
            if model is not None:
                cex = _render_cti(model, v, pre, action, action.post, lemma=name)
            obligations.append(
                Obligation(action.name, name, verdict == z3.unsat, str(verdict), cex)
            )
    failed = [item for item in obligations if not item.ok]
    counterexample = next((item.counterexample for item in failed if item.counterexample), None)
    return ProofResult(
        variant=variant.value,
        ok=not failed,
        obligations=tuple(obligations),
        seconds=time.perf_counter() - start,
        counterexample=counterexample,
    )
