"""The catalogue of seeded bugs: what each mutant replaces, what it mirrors, how to find it.

A `Mutant` is a named, documented replacement of a spec function (rarely two, when the real
bug is one missing check split across two places). `budget` tunes the engines for that bug:
the explorer's bounds (overrides of `EXPLORER_BASE`) and Hypothesis's example count. Tuning
means choosing where the engines look (an even cluster size for a quorum bug, a read budget
for a read bug), never adding a detector: a mutant is killed only by an engine's own run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from properties.mutants import _bugs_election as election
from properties.mutants import _bugs_log as logbugs
from properties.mutants import _bugs_membership as membership
from properties.mutants import _witnesses as w
from properties.mutants._patch import Replacement
from properties.mutants._scenario import Run

__all__ = ["CATALOGUE", "EXPLORER_BASE", "REQUIRED_COVERAGE", "Budget", "Mutant", "mutant_by_name"]

EXPLORER_BASE: Mapping[str, object] = MappingProxyType(
    {
        "nodes": 3,
        "max_term": 2,
        "max_log": 2,
        "max_messages": 3,
        "max_requests": 1,
        "max_reads": 0,
        "max_crashes": 0,
        "workers": 1,
        "max_states": 8000,
        "max_seconds": 90.0,
    }
)
"""EXPLORER_BASE: the small model every mutant is explored in unless its budget says otherwise.

Small on purpose: 20 mutants share the budget on 2 cores, and most seeded bugs break
an invariant within a few steps of an election. The search is cut by a state count, not by
time, so a verdict does not depend on how busy the machine is; `max_seconds` is only a guard.
"""


@dataclass(frozen=True, slots=True)
class Budget:
    """Budget is how hard each engine tries on one mutant."""

    explorer: Mapping[str, object] = field(default_factory=dict)
    hypothesis_examples: int = 150
    z3_examples: int = 300


@dataclass(frozen=True, slots=True)
class Mutant:
    """Mutant is one seeded bug.

    `covers` names the item of the catalogue's required list it stands for (several mutants
    may cover one item); `witness` is the hand-written run that shows it, on a cluster of
    `witness_size` nodes (`witness_voters` of them in the initial configuration; default all).
    A mutant whose effect no invariant can see (the spec's other
    defences make it cost only liveness) has no witness; `no_witness` then says why, and only
    an exact-successor engine (the Z3 agreement check) can kill it.

    `engine_gap`, when set, says why no engine is expected to reach the bug yet (its shortest
    run is beyond every engine's bounds); the table then shows the row as a known gap, not a
    survivor, and the witness (which must catch it) is the only evidence. Never set it to hide
    a mutant an engine should catch.
    """

    name: str
    bug: str
    mirrors: str
    covers: str
    replacements: tuple[Replacement, ...]
    witness: Callable[[Run], None] | None
    witness_size: int = 3
    witness_voters: tuple[int, ...] | None = None
    budget: Budget = Budget()
    no_witness: str = ""
    engine_gap: str = ""


def _r(module: str, name: str, function: Callable[..., object]) -> Replacement:
    return Replacement(module, name, function)


CATALOGUE: tuple[Mutant, ...] = (
    Mutant(
        name="double-vote",
        bug="a node votes twice in one term",
        mirrors="Figure 2 RequestVote rule 2; Ivy lemma 'one vote per term'",
        covers="double-vote",
        replacements=(
            _r("spec._election", "on_vote_request", election.on_vote_request_ignores_voted_for),
        ),
        witness=w.double_vote_witness,
    ),
    Mutant(
        name="vote-lost-on-restart",
        bug="voted_for is not reloaded after a restart",
        mirrors="PySyncObj #84 / #201 (term and vote not persisted)",
        covers="double-vote",
        replacements=(_r("spec._state", "initial_node", election.initial_node_forgets_vote),),
        witness=w.restart_vote_witness,
        budget=Budget(explorer={"max_crashes": 1}),
    ),
    Mutant(
        name="no-election-restriction",
        bug="the election restriction is skipped",
        mirrors="section 5.4.1 left out ('add it later')",
        covers="election-restriction",
        replacements=(_r("spec._log", "is_up_to_date", election.is_up_to_date_always),),
        witness=w.restriction_witness,
    ),
    Mutant(
        name="up-to-date-by-length",
        bug="up-to-date compares log length, not last term",
        mirrors="common misreading of section 5.4.1",
        covers="election-restriction",
        replacements=(_r("spec._log", "is_up_to_date", election.is_up_to_date_by_length),),
        witness=w.length_only_witness,
        budget=Budget(explorer={"max_term": 3}),
    ),
    Mutant(
        name="prevote-records-vote",
        bug="granting a prevote records a vote",
        mirrors="prevote sharing the vote path (thesis 9.6)",
        covers="prevote-side-effect",
        replacements=(
            _r(
                "spec._election",
                "on_vote_request",
                election.on_vote_request_prevote_records_vote,
            ),
        ),
        witness=w.prevote_vote_witness,
    ),
    Mutant(
        name="prevote-raises-term",
        bug="prevote raises the term",
        mirrors="plain Raft timeout under a prevote flag (thesis 9.6)",
        covers="prevote-side-effect",
        replacements=(
            _r("spec._election", "on_election_timeout", election.on_election_timeout_bumps_term),
        ),
        witness=w.prevote_term_witness,
    ),
    Mutant(
        name="figure8-commit",
        bug="leader commits an earlier-term entry by counting",
        mirrors="PySyncObj #169; Raft paper Figure 8",
        covers="figure8",
        replacements=(_r("spec._commit", "advance_commit", logbugs.advance_commit_by_counting),),
        witness=w.figure8_witness,
        budget=Budget(explorer={"max_term": 3}, z3_examples=500),
    ),
    Mutant(
        name="quorum-even-off-by-one",
        bug="quorum off by one for even sizes",
        mirrors="the seed's len(others) >> 1 threshold",
        covers="quorum-even",
        replacements=(_r("spec._quorum", "is_quorum", election.is_quorum_seed_threshold),),
        witness=w.quorum_even_witness,
        witness_size=4,
        budget=Budget(explorer={"nodes": 2, "max_term": 1, "max_log": 1}),
    ),
    Mutant(
        name="ignores-higher-term-reply",
        bug="a node ignores a higher term in a reply",
        mirrors="term marker applied to requests only (seed behaviour 3)",
        covers="higher-term-reply",
        replacements=(
            _r("spec._step", "_receive", logbugs.receive_ignores_reply_terms),
            _r(
                "spec._replication",
                "on_append_response",
                logbugs.on_append_response_newer_term,
            ),
        ),
        witness=None,
        no_witness=(
            "a rejection of a stale-term append echoes no read ctx, so a deposed leader that "
            "keeps its role can neither commit nor confirm a read: only liveness suffers"
        ),
        budget=Budget(explorer={"max_reads": 1}),
    ),
    Mutant(
        name="truncates-matching",
        bug="a follower truncates entries that match",
        mirrors="section 5.3 'delete the existing entry and all that follow it' misapplied",
        covers="truncate-matching",
        replacements=(_r("spec._replication", "_merge", logbugs.merge_truncates_after_prev),),
        witness=w.truncate_witness,
        # One entry is enough: the leader sends an empty append, then one carrying the entry;
        # they arrive in the other order, and the empty one cuts the entry the follower has
        # just acknowledged (persist-before-send, 10 steps). Two nodes, one term and two
        # messages in flight: the whole correct model is 5,087 states, under EXPLORER_BASE's cap.
        budget=Budget(
            explorer={"nodes": 2, "max_term": 1, "max_log": 1, "max_messages": 2},
            z3_examples=500,
        ),
    ),
    Mutant(
        name="commit-moves-backwards",
        bug="the commit index can move backwards",
        mirrors="PySyncObj #166 / #167",
        covers="commit-regresses",
        replacements=(
            _r(
                "spec._replication",
                "on_append_request",
                logbugs.on_append_request_commit_follows_leader,
            ),
        ),
        witness=w.commit_backwards_witness,
        # No duplicate needed: an empty append sent before the entry commits arrives after the
        # one that told the follower commit 1 (commit-never-regresses, 13 steps); the same
        # two-node model as truncates-matching, explored in full.
        budget=Budget(
            explorer={"nodes": 2, "max_term": 1, "max_log": 1, "max_messages": 2},
            z3_examples=500,
        ),
    ),
    Mutant(
        name="candidate-vote-unrecorded",
        bug="a candidate does not record its self-vote",
        mirrors="Figure 2 'vote for self' kept only in the tally",
        covers="candidate-self-vote",
        replacements=(
            _r("spec._election", "_start_election", election.start_election_vote_not_recorded),
        ),
        witness=w.candidate_persist_witness,
    ),
    Mutant(
        name="candidate-asks-before-persist",
        bug="a candidate asks for votes before persisting",
        mirrors="PySyncObj #84 / #201 (write queued behind the sends)",
        covers="candidate-self-vote",
        replacements=(_r("spec._step", "step", logbugs.step_persists_after_election),),
        witness=w.candidate_persist_witness,
    ),
    Mutant(
        name="no-sentinel",
        bug="sentinel omitted when the commit index is behind",
        mirrors="no term-start no-op (section 5.4.2, thesis 6.4)",
        covers="sentinel",
        replacements=(
            _r("spec._election", "become_leader", logbugs.become_leader_without_sentinel),
        ),
        witness=w.sentinel_witness,
        budget=Budget(explorer={"max_reads": 1}, z3_examples=500),
    ),
    Mutant(
        name="read-without-quorum",
        bug="a read is answered before a quorum confirms",
        mirrors="read served from a deposed leader's local state (thesis 6.4)",
        covers="stale-read",
        replacements=(_r("spec._reads", "release_reads", logbugs.release_reads_without_quorum),),
        witness=w.stale_read_witness,
        budget=Budget(explorer={"max_reads": 1}, hypothesis_examples=1500),
    ),
    Mutant(
        name="read-shares-heartbeat",
        bug="reads share an earlier heartbeat's context",
        mirrors="etcd#20418",
        covers="stale-read",
        replacements=(_r("spec._reads", "on_read_request", logbugs.on_read_request_shared_ctx),),
        witness=w.stale_read_witness,
        budget=Budget(explorer={"max_reads": 1}, hypothesis_examples=1500),
    ),
    Mutant(
        name="stale-vote-reply",
        bug="vote replies counted without the request's term",
        mirrors="etcd#8243",
        covers="double-vote",
        replacements=(
            _r("spec._election", "on_vote_response", election.on_vote_response_any_term),
        ),
        witness=w.stale_vote_reply_witness,
    ),
    Mutant(
        name="config-change-before-own-term-commit",
        bug="a new leader changes membership before its term commits",
        mirrors="the single-server change bug (Ongaro, raft-dev 2015; thesis 4.1)",
        covers="single-server-change",
        replacements=(
            _r(
                "spec._membership",
                "change_blocked",
                membership.change_blocked_without_own_term,
            ),
        ),
        witness=w.single_server_change_witness,
        witness_size=5,
        witness_voters=(0, 1, 2, 3),
        budget=Budget(
            explorer={
                "nodes": 4,
                "max_term": 3,
                "max_log": 1,
                "max_changes": 2,
                "max_elections": 3,
                "max_drops": 4,
                "heartbeats": False,
                "check_quorum": False,
                "max_states": 20_000,  # a known gap: a bounded try, not a search
            },
            hypothesis_examples=300,
        ),
        engine_gap=(
            "the shortest run we know needs two leaders' changes on four voters (31 steps "
            "on 4 nodes, single_server_removal_witness); the explorer's config-race model "
            "(membership inputs, 3 elections, 4 drops) reaches depth 22 (about 1M states) in "
            "two minutes and its frontier doubles per level, and random stateful runs do not "
            "line the steps up"
        ),
    ),
    Mutant(
        name="learner-counts-in-quorum",
        bug="a learner's ack counts towards commitment",
        mirrors="progress tracker iterating all members (thesis 4.2.1)",
        covers="learner-quorum",
        replacements=(_r("spec._commit", "quorum_match", membership.quorum_match_counts_learners),),
        witness=w.learner_quorum_witness,
        witness_size=4,
        witness_voters=(0, 1, 2),
        budget=Budget(
            explorer={"voters": (0, 1), "learners": (2,), "max_term": 1, "max_log": 1},
            hypothesis_examples=1500,
        ),
    ),
    Mutant(
        name="timeoutnow-ignores-log",
        bug="a transfer vote request skips the election restriction",
        mirrors="transfer flag treated as 'force' (thesis 3.10, 4.2.3)",
        covers="transfer",
        replacements=(
            _r(
                "spec._election",
                "on_vote_request",
                membership.on_vote_request_transfer_skips_log,
            ),
        ),
        witness=w.stale_timeout_now_witness,
        budget=Budget(
            explorer={
                "max_transfers": 1,
                "max_log": 1,
                "heartbeats": False,
                "check_quorum": False,
                "max_states": 100_000,
            },
            hypothesis_examples=1500,
        ),
    ),
)
"""CATALOGUE: every seeded bug, in the order the table prints them."""

REQUIRED_COVERAGE: tuple[str, ...] = (
    "double-vote",
    "election-restriction",
    "prevote-side-effect",
    "figure8",
    "quorum-even",
    "higher-term-reply",
    "truncate-matching",
    "commit-regresses",
    "candidate-self-vote",
    "sentinel",
    "stale-read",
    "single-server-change",
    "learner-quorum",
    "transfer",
)
"""REQUIRED_COVERAGE: the bug classes the catalogue must include (the issue's list)."""


def mutant_by_name(name: str) -> Mutant:
    """mutant_by_name finds a catalogue entry; unknown names list the known ones."""
    for mutant in CATALOGUE:
        if mutant.name == name:
            return mutant
    known = ", ".join(m.name for m in CATALOGUE)
    raise KeyError(f"unknown mutant {name!r} (known: {known})")
