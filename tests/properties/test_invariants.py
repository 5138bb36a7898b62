"""Each invariant is non-vacuous: a hand-built broken state or step makes it fire.

A claim that can never fail proves nothing, so for every invariant in properties/ there is a
state (or transition) that violates that claim, and the real initial state passes all.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from properties import STATE_INVARIANTS, TRANSITION_INVARIANTS, check_state, check_transition
from spec import (
    AppendResponse,
    ClusterState,
    Deliver,
    Durable,
    ElectionTimeout,
    Entry,
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
    """The four tests above cover the whole transition list."""
    assert {invariant.name for invariant in TRANSITION_INVARIANTS} == {
        "terms_never_decrease",
        "commit_never_regresses",
        "leader_append_only",
        "no_term_inflation",
    }
