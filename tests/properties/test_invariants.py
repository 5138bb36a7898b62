"""Each invariant is non-vacuous: a hand-built broken state or step makes it fire.

A claim that can never fail proves nothing, so for every invariant in properties/ there is a
state (or transition) that violates that claim, and the real initial state passes all.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from properties import STATE_INVARIANTS, TRANSITION_INVARIANTS, check_state, check_transition
from spec import (
    AppendRequest,
    AppendResponse,
    ClusterState,
    Config,
    Deliver,
    Durable,
    ElectionTimeout,
    Entry,
    EntryKind,
    NodeInput,
    NodeState,
    ReadRecord,
    Role,
    VoteRequest,
    VoteResponse,
    initial_cluster,
)

E1 = Entry(1, payload=b"a")
E2 = Entry(2, payload=b"b")


def _with_nodes(cluster: ClusterState, **changes: dict[str, object]) -> ClusterState:
    nodes = list(cluster.nodes)
    for key, fields in changes.items():
        index = int(key.removeprefix("n"))
        nodes[index] = replace(nodes[index], **fields)  # type: ignore[arg-type]
    return replace(cluster, nodes=tuple(nodes))


def _leader(
    node: NodeState, term: int, votes: frozenset[int], log: tuple[Entry, ...] = ()
) -> NodeState:
    return replace(node, role=Role.LEADER, term=term, voted_for=node.id, votes=votes, log=log)


def _violated(cluster: ClusterState) -> set[str]:
    return {violation.invariant for violation in check_state(cluster)}


BASE = initial_cluster(3)


def _state_cases() -> dict[str, ClusterState]:
    two_leaders = replace(
        BASE,
        nodes=(
            _leader(BASE.nodes[0], 1, frozenset({0, 1})),
            _leader(BASE.nodes[1], 1, frozenset({1, 2})),
            BASE.nodes[2],
        ),
    )
    double_vote = replace(
        BASE,
        nodes=(replace(BASE.nodes[0], term=1, voted_for=1), *BASE.nodes[1:]),
        network=(VoteResponse(0, 2, 1, prevote=False, granted=True, request_term=1),),
    )
    weak_leader = replace(BASE, nodes=(_leader(BASE.nodes[0], 1, frozenset({0})), *BASE.nodes[1:]))
    mismatched = _with_nodes(
        BASE,
        n0={"log": (E1, E2)},
        n1={"log": (Entry(1, payload=b"z"), E2)},
    )
    past_log = _with_nodes(BASE, n0={"log": (E1,), "commit": 2})
    incomplete_leader = replace(
        BASE,
        nodes=(
            replace(BASE.nodes[0], term=1, log=(E1,), commit=1),
            _leader(BASE.nodes[1], 2, frozenset({1, 2})),
            BASE.nodes[2],
        ),
    )
    diverging_commits = _with_nodes(
        BASE,
        n0={"log": (E1,), "commit": 1},
        n2={"log": (Entry(1, payload=b"other"),), "commit": 1},
    )
    unpersisted_vote = replace(
        BASE,
        nodes=(replace(BASE.nodes[0], term=1, voted_for=1), *BASE.nodes[1:]),
        network=(VoteResponse(0, 1, 1, prevote=False, granted=True, request_term=1),),
    )
    unpersisted_request = replace(
        BASE, network=(VoteRequest(2, 0, 1, prevote=False, last_log_index=0, last_log_term=0),)
    )
    unpersisted_ack = replace(
        BASE,
        disks=(Durable(), Durable(term=1), Durable()),
        network=(AppendResponse(1, 0, 1, success=True, match_index=1, hint_index=0, read_ctx=0),),
    )
    stale_read = replace(BASE, reads=(ReadRecord(node=0, read_id=1, must_cover=2, answered=1),))
    universe = initial_cluster(4, (0, 1, 2))
    two_changes = (
        E1,
        Entry(1, EntryKind.CONFIG, b"", Config((0, 1, 2), (3,))),
        Entry(1, EntryKind.CONFIG, b"", Config((0, 1, 2, 3))),
    )
    stacked_configs = replace(
        universe,
        nodes=(
            replace(_leader(universe.nodes[0], 1, frozenset({0, 1}), two_changes), commit=1),
            *universe.nodes[1:],
        ),
    )
    far_config = replace(
        universe,
        nodes=(
            replace(universe.nodes[0], term=1, log=(E1,), commit=1),
            replace(
                universe.nodes[1],
                term=1,
                log=(E1, Entry(1, EntryKind.CONFIG, b"", Config((1,)))),
                commit=1,
            ),
            *universe.nodes[2:],
        ),
    )
    return {
        "election_safety": two_leaders,
        "one_vote_per_term": double_vote,
        "leader_holds_quorum_of_votes": weak_leader,
        "log_matching": mismatched,
        "commit_within_log": past_log,
        "leader_completeness": incomplete_leader,
        "state_machine_safety": diverging_commits,
        "persist_before_send": unpersisted_vote,
        "persist_before_send/request": unpersisted_request,
        "persist_before_send/ack": unpersisted_ack,
        "read_safety": stale_read,
        "one_uncommitted_config": stacked_configs,
        "config_near_committed": far_config,
    }


STATE_CASES = _state_cases()


def test_initial_states_satisfy_every_invariant() -> None:
    """The initial state of every cluster size is safe (induction base)."""
    for size in range(1, 8):
        assert check_state(initial_cluster(size)) == []


@pytest.mark.parametrize("name", sorted(STATE_CASES))
def test_state_invariant_fires_on_its_broken_state(name: str) -> None:
    """Each state invariant catches a state built to break its claim."""
    assert name.split("/", maxsplit=1)[0] in _violated(STATE_CASES[name])


def test_every_state_invariant_has_a_broken_state() -> None:
    """No invariant in the list goes untested for non-vacuity."""
    covered = {name.split("/")[0] for name in STATE_CASES}
    assert covered == {invariant.name for invariant in STATE_INVARIANTS}


def _transition_violations(before: ClusterState, after: ClusterState, action: object) -> set[str]:
    return {v.invariant for v in check_transition(before, action, after)}  # type: ignore[arg-type]


TIMEOUT = NodeInput(0, ElectionTimeout())


def test_terms_never_decrease_fires() -> None:
    """Reference: section 5.1, current terms increase monotonically."""
    before = _with_nodes(BASE, n1={"term": 3})
    after = _with_nodes(BASE, n1={"term": 2})
    assert "terms_never_decrease" in _transition_violations(before, after, TIMEOUT)


def test_commit_never_regresses_fires() -> None:
    """PySyncObj #166: the commit index must never move backwards."""
    before = _with_nodes(BASE, n1={"log": (E1,), "commit": 1})
    after = _with_nodes(BASE, n1={"log": (E1,), "commit": 0})
    assert "commit_never_regresses" in _transition_violations(before, after, TIMEOUT)


def test_leader_append_only_fires() -> None:
    """Reference: Figure 3, Leader Append-Only."""
    before = replace(
        BASE, nodes=(_leader(BASE.nodes[0], 2, frozenset({0, 1}), (E1,)), *BASE.nodes[1:])
    )
    after = replace(
        BASE, nodes=(_leader(BASE.nodes[0], 2, frozenset({0, 1}), (E2,)), *BASE.nodes[1:])
    )
    assert "leader_append_only" in _transition_violations(before, after, TIMEOUT)


def test_no_term_inflation_fires_and_allows_adoption() -> None:
    """Reference: thesis section 9.6, prevote keeps a cut-off node's term from growing."""
    inflated = _with_nodes(BASE, n0={"term": 1, "voted_for": 0, "role": Role.CANDIDATE})
    assert "no_term_inflation" in _transition_violations(BASE, inflated, TIMEOUT)
    request = VoteRequest(1, 0, 1, prevote=False, last_log_index=0, last_log_term=0)
    adopted = _with_nodes(BASE, n0={"term": 1})
    assert "no_term_inflation" not in _transition_violations(BASE, adopted, Deliver(request))


def test_every_transition_invariant_is_exercised_here() -> None:
    """The tests in this file cover the whole transition list."""
    assert {invariant.name for invariant in TRANSITION_INVARIANTS} == {
        "terms_never_decrease",
        "commit_never_regresses",
        "leader_append_only",
        "no_term_inflation",
        "commit_by_voter_quorum",
        "votes_respect_restriction",
    }


# --- membership (thesis chapter 4) and leadership transfer (thesis 3.10) ----------------------

UNIVERSE = initial_cluster(4, (0, 1, 2))


def _config_entry(term: int, voters: tuple[int, ...], learners: tuple[int, ...] = ()) -> Entry:
    return Entry(term, EntryKind.CONFIG, b"", Config(voters, learners))


def test_membership_states_of_a_smaller_initial_config_are_safe() -> None:
    """A universe larger than the initial configuration starts safe as well (thesis 4.1)."""
    assert check_state(UNIVERSE) == []
    assert check_state(initial_cluster(5, (0, 1, 2, 3), (4,))) == []


def test_one_uncommitted_config_fires() -> None:
    """Reference: thesis 4.1, one configuration change at a time."""
    log = (E1, _config_entry(1, (0, 1, 2), (3,)), _config_entry(1, (0, 1, 2, 3)))
    broken = replace(
        UNIVERSE,
        nodes=(
            replace(_leader(UNIVERSE.nodes[0], 1, frozenset({0, 1}), log), commit=1),
            *UNIVERSE.nodes[1:],
        ),
    )
    assert "one_uncommitted_config" in _violated(broken)


def test_config_near_committed_fires() -> None:
    """Reference: thesis 4.1, a configuration in use is one voter from the committed one."""
    log = (E1, _config_entry(1, (0, 1, 2, 3)))
    jump = replace(
        UNIVERSE,
        nodes=(
            replace(UNIVERSE.nodes[0], term=1, log=log, commit=1),
            replace(UNIVERSE.nodes[1], term=1, log=(E1, _config_entry(1, (1,))), commit=1),
            *UNIVERSE.nodes[2:],
        ),
    )
    assert "config_near_committed" in _violated(jump)
    one_step = _with_nodes(jump, n1={"log": (E1, _config_entry(1, (0, 1)))})
    assert "config_near_committed" not in _violated(one_step)


def test_leader_quorum_uses_the_config_it_was_elected_in() -> None:
    """Reference: thesis 4.1; a later configuration entry does not re-judge the election."""
    grown = (E1, _config_entry(1, (0, 1, 2), (3,)), _config_entry(1, (0, 1, 2, 3)))
    leader = replace(_leader(UNIVERSE.nodes[0], 1, frozenset({0, 1}), grown), sentinel=1, commit=2)
    assert "leader_holds_quorum_of_votes" not in _violated(
        replace(UNIVERSE, nodes=(leader, *UNIVERSE.nodes[1:]))
    )
    elected_late = replace(leader, sentinel=3)
    assert "leader_holds_quorum_of_votes" in _violated(
        replace(UNIVERSE, nodes=(elected_late, *UNIVERSE.nodes[1:]))
    )


def test_commit_by_voter_quorum_fires_when_a_learner_is_counted() -> None:
    """Reference: thesis 4.2.1, learners never count for a quorum; 4.1, quorum of voters."""
    config = _config_entry(1, (0, 1, 2), (3,))
    log = (E1, config, Entry(1, payload=b"x"))
    lead = _leader(UNIVERSE.nodes[0], 1, frozenset({0, 1}), log)
    before = replace(
        UNIVERSE,
        nodes=(replace(lead, commit=2), *UNIVERSE.nodes[1:3], replace(UNIVERSE.nodes[3], log=log)),
        disks=(Durable(1, 0, log), Durable(), Durable(), Durable(1, None, log)),
    )
    after = _with_nodes(before, n0={"commit": 3})
    ack = AppendResponse(3, 0, 1, success=True, match_index=3, hint_index=0, read_ctx=0)
    assert "commit_by_voter_quorum" in _transition_violations(before, after, Deliver(ack))
    stored = replace(after, disks=(Durable(1, 0, log), Durable(1, None, log), *after.disks[2:]))
    assert "commit_by_voter_quorum" not in _transition_violations(
        replace(before, disks=stored.disks), stored, Deliver(ack)
    )


def test_no_term_inflation_allows_only_the_timeout_now_election() -> None:
    """Reference: thesis 3.10, the target of a transfer campaigns without prevote."""
    now = AppendRequest(1, 0, 1, 0, 0, (), 0, 0, timeout_now=True)
    before = _with_nodes(BASE, n0={"term": 1})
    after = _with_nodes(BASE, n0={"term": 2, "voted_for": 0, "role": Role.CANDIDATE})
    assert "no_term_inflation" not in _transition_violations(before, after, Deliver(now))
    plain = replace(now, timeout_now=False)
    assert "no_term_inflation" in _transition_violations(before, after, Deliver(plain))
    jump = _with_nodes(BASE, n0={"term": 3, "voted_for": 0, "role": Role.CANDIDATE})
    assert "no_term_inflation" in _transition_violations(before, jump, Deliver(now))


def test_no_term_inflation_allows_a_timeout_now_from_a_newer_leader() -> None:
    """Reference: thesis 3.10; a target that missed the leader's election (it was down) adopts
    the leader's term from the TimeoutNow and campaigns one term above it (found by the
    stateful engine: a transfer abandoned by a leader that then crashed)."""
    now = AppendRequest(1, 0, 1, 0, 0, (), 0, 0, timeout_now=True)
    behind = _with_nodes(BASE, n0={"term": 0})
    after = _with_nodes(BASE, n0={"term": 2, "voted_for": 0, "role": Role.CANDIDATE})
    assert "no_term_inflation" not in _transition_violations(behind, after, Deliver(now))
    jump = _with_nodes(BASE, n0={"term": 3, "voted_for": 0, "role": Role.CANDIDATE})
    assert "no_term_inflation" in _transition_violations(behind, jump, Deliver(now))


def test_votes_respect_restriction_fires_on_a_grant_to_a_stale_log() -> None:
    """Reference: section 5.4.1; thesis 3.10 / 4.2.3, a transfer never bypasses the log check."""
    voter = _with_nodes(BASE, n1={"term": 1, "log": (E1,)})
    request = VoteRequest(0, 1, 2, prevote=False, last_log_index=0, last_log_term=0, transfer=True)
    grant = VoteResponse(1, 0, 2, prevote=False, granted=True, request_term=2)
    after = replace(_with_nodes(voter, n1={"term": 2, "voted_for": 0}), network=(grant,))
    assert "votes_respect_restriction" in _transition_violations(voter, after, Deliver(request))
    fresh = replace(request, last_log_index=1, last_log_term=1)
    assert "votes_respect_restriction" not in _transition_violations(voter, after, Deliver(fresh))


def test_commit_by_voter_quorum_counts_a_change_under_the_config_it_creates() -> None:
    """Reference: thesis 4.1; removing voter 0 of {0, 1} leaves leader 1 as the whole quorum.

    Found by the stateful engine: judging the commit by the configuration before the step
    flagged this legal single-voter commit.
    """
    pair = initial_cluster(2)
    log = (E1, _config_entry(1, (1,)))
    lead = _leader(pair.nodes[1], 1, frozenset({0, 1}), (E1,))
    before = replace(
        pair,
        nodes=(replace(pair.nodes[0], term=1, log=(E1,)), replace(lead, commit=1)),
        disks=(Durable(1, 1, (E1,)), Durable(1, 1, (E1,), 1)),
    )
    after = replace(
        before,
        nodes=(before.nodes[0], replace(lead, log=log, commit=2)),
        disks=(before.disks[0], Durable(1, 1, log, 2)),
    )
    assert "commit_by_voter_quorum" not in _transition_violations(before, after, TIMEOUT)
