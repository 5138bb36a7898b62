"""Tests for the exhaustive bounded explorer (properties.explore).

Small bounds only: each exploration here takes seconds. Reference: Raft paper section 5.2
(one vote per term, at most one leader per term) for the seeded bug, and the model-checking
practice of TLC (BFS gives shortest counterexamples; symmetry sets merge relabelled states).
"""

from __future__ import annotations

from dataclasses import replace
from unittest import mock

import pytest

import spec
from properties.explore import (
    ZERO_BUDGET,
    ExploreConfig,
    StepFn,
    enumerate_actions,
    explore,
    fingerprint,
    main,
    relabel,
    within_bounds,
)
from spec import (
    Action,
    ClientRequest,
    ClusterResult,
    ClusterState,
    Deliver,
    ElectionTimeout,
    NodeInput,
    Role,
    VoteRequest,
)

from ._fresh import run_in_fresh_interpreter

# Elections only: no client requests, crashes, heartbeats or check-quorum ticks.
ELECTIONS = ExploreConfig(
    nodes=3,
    max_term=1,
    max_log=1,
    max_messages=4,
    max_requests=0,
    max_crashes=0,
    heartbeats=False,
    check_quorum=False,
)


def double_vote(cluster: ClusterState, action: Action) -> ClusterResult:
    """A seeded bug: a follower that already voted in this term forgets it and votes again."""
    return _double_vote(cluster, action, spec.cluster_step)


def _double_vote(cluster: ClusterState, action: Action, inner: StepFn) -> ClusterResult:
    if isinstance(action, Deliver) and isinstance(action.message, VoteRequest):
        message = action.message
        node = cluster.nodes[message.dst]
        if (
            not message.prevote
            and node.role is Role.FOLLOWER
            and node.term == message.term
            and node.voted_for not in (None, message.src)
        ):
            nodes = list(cluster.nodes)
            nodes[message.dst] = replace(node, voted_for=None)
            cluster = replace(cluster, nodes=tuple(nodes))
    return inner(cluster, action)


def term_regression(cluster: ClusterState, action: Action) -> ClusterResult:
    """A seeded bug for a transition invariant: a candidate's term goes back on a timeout."""
    result = spec.cluster_step(cluster, action)
    if isinstance(action, NodeInput) and isinstance(action.input, ElectionTimeout):
        node = cluster.nodes[action.node]
        if node.term > 0:
            nodes = list(result.state.nodes)
            nodes[action.node] = replace(nodes[action.node], term=node.term - 1)
            return replace(result, state=replace(result.state, nodes=tuple(nodes)))
    return result


@pytest.mark.parametrize(
    "config",
    [
        ExploreConfig(nodes=1, max_term=2, max_log=2, max_requests=2, max_reads=1),
        ExploreConfig(nodes=2, max_term=1, max_log=1, max_messages=1, max_reads=1),
        replace(ELECTIONS, max_messages=2, max_term=1),
    ],
    ids=["1-node", "2-nodes", "3-nodes"],
)
def test_correct_spec_has_no_violation(config: ExploreConfig) -> None:
    """Reference: sections 5.2-5.4 — every invariant holds in every reachable state."""
    result = explore(config)
    assert result.ok, result.counterexample
    assert result.complete
    assert result.distinct_states > 1
    assert result.edges >= result.distinct_states - 1
    assert result.counterexample is None and result.violation is None


def test_three_nodes_with_crash_and_request_depth_bounded() -> None:
    """Reference: section 5.4.1 — crash/restart and a client request within a depth bound."""
    config = ExploreConfig(nodes=3, max_term=1, max_log=1, max_messages=3, max_depth=9)
    result = explore(config)
    assert result.ok, result.counterexample
    assert result.depth == 9
    assert not result.complete


def test_symmetry_reduces_states_and_keeps_verdict() -> None:
    """Relabelled states are merged (fewer states), and the verdict does not change."""
    config = ExploreConfig(nodes=2, max_term=1, max_log=1, max_messages=1)
    reduced = explore(config)
    full = explore(replace(config, symmetry=False))
    assert reduced.ok and full.ok
    assert reduced.distinct_states < full.distinct_states
    # Two nodes: an orbit has at most two members, so at least half the states remain.
    assert 2 * reduced.distinct_states >= full.distinct_states
    assert reduced.depth == full.depth


def test_fingerprint_is_a_relabelling_invariant() -> None:
    """Every state reached on the way has the fingerprint of its relabelled copies."""
    cluster = spec.initial_cluster(3)
    budget = ZERO_BUDGET
    seen: list[ClusterState] = []
    for _ in range(12):  # a run: take the last enabled action each time
        actions = [
            a
            for a in enumerate_actions(cluster, budget, ELECTIONS)
            if spec.cluster_step(cluster, a).rejected is None
        ]
        cluster = spec.cluster_step(cluster, actions[len(seen) % len(actions)]).state
        seen.append(cluster)
    for state in seen:
        want = fingerprint(state, budget)
        for perm in [(1, 2, 0), (2, 1, 0), (0, 2, 1)]:
            other = relabel(state, perm)
            assert fingerprint(other, budget) == want
            if other != state:
                assert fingerprint(other, budget, symmetry=False) != fingerprint(
                    state, budget, symmetry=False
                )


def test_two_workers_find_the_same_states() -> None:
    """Forked workers explore the same state space as one process."""
    run_in_fresh_interpreter(check_two_workers_find_the_same_states)


def check_two_workers_find_the_same_states() -> None:
    config = ExploreConfig(nodes=2, max_term=1, max_log=1, max_messages=2, max_crashes=0)
    one = explore(config)
    two = explore(replace(config, workers=2))
    assert one.ok and two.ok
    assert (one.distinct_states, one.edges, one.depth) == (
        two.distinct_states,
        two.edges,
        two.depth,
    )


def test_double_vote_is_found_with_the_shortest_run() -> None:
    """Reference: section 5.2 — "each server will vote for at most one candidate" per term."""
    result = explore(ELECTIONS, step_fn=double_vote)
    assert not result.ok
    assert result.violation in {"one_vote_per_term", "election_safety"}
    assert result.counterexample is not None
    assert "violated:" in result.counterexample
    # One table row per step plus header, rule and initial row, and the verdict line.
    assert len(result.counterexample.splitlines()) == result.depth + 4
    # Shortest: nothing breaks one level earlier, with or without symmetry reduction.
    shallower = replace(ELECTIONS, max_depth=result.depth - 1)
    assert explore(shallower, step_fn=double_vote).ok
    assert explore(replace(shallower, symmetry=False), step_fn=double_vote).ok


def test_double_vote_through_a_patch_and_forked_workers() -> None:
    """The explorer looks spec.cluster_step up at run time, so a mock.patch is honoured."""
    run_in_fresh_interpreter(check_double_vote_through_a_patch_and_forked_workers)


def check_double_vote_through_a_patch_and_forked_workers() -> None:
    original = spec.cluster_step

    def seeded(cluster: ClusterState, action: Action) -> ClusterResult:
        return _double_vote(cluster, action, original)

    with mock.patch.object(spec, "cluster_step", seeded):
        result = explore(replace(ELECTIONS, workers=2))
    assert not result.ok
    assert result.violation in {"one_vote_per_term", "election_safety"}
    assert explore(replace(ELECTIONS, max_depth=4)).ok  # unpatched again


def test_transition_invariant_is_checked_on_edges() -> None:
    """Reference: section 5.1 — current terms only increase."""
    config = replace(ELECTIONS, max_messages=2)
    result = explore(config, step_fn=term_regression)
    assert not result.ok
    assert result.violation == "terms_never_decrease"
    assert result.counterexample is not None


def test_bounds_and_budgets() -> None:
    """Budgets control what is offered; bounds discard successors outside the model."""
    cluster = spec.initial_cluster(1)
    leader = spec.cluster_step(cluster, NodeInput(0, ElectionTimeout())).state
    assert leader.nodes[0].role is Role.LEADER
    config = ExploreConfig(nodes=1, max_requests=1, max_log=1)
    offered = enumerate_actions(leader, ZERO_BUDGET, config)
    assert NodeInput(0, ClientRequest(b"1")) in offered
    spent = enumerate_actions(leader, (1, 0, 0, 0, 0, 0, 0, 0), config)
    assert not any(isinstance(a, NodeInput) and isinstance(a.input, ClientRequest) for a in spent)
    longer = spec.cluster_step(leader, NodeInput(0, ClientRequest(b"1"))).state
    assert within_bounds(longer, config)
    assert not within_bounds(longer, replace(config, max_log=0))


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m properties.explore` prints a summary and exits 0 when all holds."""
    code = main(
        ["--nodes", "2", "--max-term", "1", "--max-messages", "1", "--max-depth", "0", "--quiet"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "distinct states" in out and "complete" in out
