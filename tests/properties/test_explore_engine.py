"""Tests for the explorer's fast engine: it must explore exactly what the plain search does.

The engine (properties/explore/_engine.py, _checks.py, _fast.py) interns states as ints,
memoises node steps and invariant verdicts, and re-implements the cluster composition of
`spec.cluster_step`. Each test compares it with the plain search or with the spec directly.
Reference: Raft paper section 5.2 (one vote per term) for the seeded bug; TLC's BFS for
shortest counterexamples; section 5.1 for terms that never decrease.
"""

from __future__ import annotations

from dataclasses import replace
from unittest import mock

import pytest

import properties
import spec
from properties.explore import ZERO_BUDGET, ExploreConfig, StepFn, explore, fast_path_applies
from properties.explore._checks import (
    DISKS_NETWORK,
    NODE_ONLY,
    NODES_DISKS_NETWORK,
    PER_NODE_TRANSITIONS,
    PER_NODE_WITH_DISKS_TRANSITIONS,
    READS_ONLY,
    VOTE_DELIVERY_TRANSITIONS,
    Checks,
)
from properties.explore._engine import Engine, IntState
from properties.mutants import explorer_settings, mutant_by_name, patched
from spec import Action, ClusterResult, ClusterState, Deliver, Role, VoteRequest

from ._fresh import run_in_fresh_interpreter

# Small models that between them offer every kind of action the explorer has.
MODELS = {
    "crash-request": ExploreConfig(nodes=3, max_term=1, max_log=1, max_messages=2, max_depth=9),
    "reads-dups": ExploreConfig(
        nodes=2,
        max_term=1,
        max_log=1,
        max_messages=2,
        max_reads=1,
        max_duplicates=1,
        max_depth=8,
    ),
    "partitions": ExploreConfig(
        nodes=3, max_term=1, max_log=1, max_messages=2, max_crashes=0, partitions=True, max_depth=7
    ),
    "ranges-no-symmetry": ExploreConfig(
        nodes=2,
        max_term=1,
        max_log=2,
        max_messages=1,
        append_ranges=True,
        symmetry=False,
        max_depth=8,
    ),
    "no-prefilter": ExploreConfig(
        nodes=2,
        max_term=1,
        max_log=1,
        max_messages=2,
        prefilter=False,
        check_quorum=False,
        max_depth=8,
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fast_engine_explores_what_the_plain_search_does(name: str) -> None:
    """Same distinct states, edges, depth and verdict, with every edge cross-checked.

    `cross_check` covers every edge here: each successor, bound verdict and fingerprint of
    the engine is compared with `spec.cluster_step` and the plain `Fingerprinter`.
    """
    config = MODELS[name]
    assert fast_path_applies(config, None)
    fast = explore(replace(config, cross_check=10**9))
    plain = explore(replace(config, fast=False))
    assert fast.ok and plain.ok, fast.counterexample
    assert (fast.distinct_states, fast.edges, fast.depth, fast.complete) == (
        plain.distinct_states,
        plain.edges,
        plain.depth,
        plain.complete,
    )
    assert fast.distinct_states > 60


def test_two_workers_on_the_fast_engine() -> None:
    """Forked workers on the engine find the same states as one process and the plain search."""
    run_in_fresh_interpreter(check_two_workers_on_the_fast_engine)


def check_two_workers_on_the_fast_engine() -> None:
    config = ExploreConfig(nodes=3, max_term=1, max_log=1, max_messages=2, max_depth=9)
    one = explore(config)
    two = explore(replace(config, workers=2))
    plain = explore(replace(config, fast=False))
    assert (one.distinct_states, one.edges) == (two.distinct_states, two.edges)
    assert (one.distinct_states, one.edges) == (plain.distinct_states, plain.edges)


@pytest.mark.parametrize("mutant", ["double-vote", "prevote-records-vote", "stale-vote-reply"])
def test_seeded_bug_gives_the_same_shortest_counterexample(mutant: str) -> None:
    """Reference: section 5.2 (one vote per term), thesis 9.6 (prevote) and 5.1 (stale
    replies) — on the catalogue's own model the engine finds the plain search's run.

    The catalogue's mutants patch spec handlers; the engine memoises the patched node step,
    so the violation, depth and the printed counterexample are identical.
    """
    seeded = mutant_by_name(mutant)
    config = ExploreConfig().with_overrides(**explorer_settings(seeded))
    with patched(seeded.replacements):
        assert fast_path_applies(config, None)
        fast = explore(config)
        plain = explore(replace(config, fast=False))
    assert not fast.ok
    assert fast.violation == plain.violation
    assert fast.depth == plain.depth
    assert fast.counterexample == plain.counterexample
    assert explore(replace(config, max_depth=4)).ok  # unpatched again


def test_fast_path_stands_aside_for_a_replaced_cluster_step() -> None:
    """A step_fn or a patched spec.cluster_step runs on the plain search, which honours it."""
    config = ExploreConfig(nodes=2, max_term=1, max_log=1, max_messages=1)

    def seeded(cluster: ClusterState, action: Action) -> ClusterResult:
        return spec.cluster_step(cluster, action)

    step: StepFn = seeded
    assert not fast_path_applies(config, step)
    assert not fast_path_applies(replace(config, fast=False), None)
    with mock.patch.object(spec, "cluster_step", seeded):
        assert not fast_path_applies(config, None)
    with mock.patch.object(properties, "check_state", properties.check_state):
        assert fast_path_applies(config, None)


def _reachable(config: ExploreConfig, limit: int) -> tuple[Engine, list[IntState]]:
    """A plain BFS over the engine (no reduction), for the memo tests below."""
    engine = Engine(config, spec.step)
    start = engine.state(spec.initial_cluster(config.nodes))
    seen = {start}
    order = [start]
    budget = ZERO_BUDGET
    for state in order:
        if len(order) >= limit:
            break
        for action in engine.actions(state, budget):
            moved = engine.successor(state, action)
            if moved is not None and moved[0] not in seen:
                seen.add(moved[0])
                order.append(moved[0])
    return engine, order


def test_memoised_state_checks_equal_check_state() -> None:
    """Every memoised verdict is `properties.check_state` of the materialised state.

    Run with a candidate that does not record its own vote, so that violations are among
    the states compared. Reference: section 5.2 and Figure 2 (persist before responding).
    """
    config = ExploreConfig(nodes=3, max_term=2, max_log=1, max_messages=3, max_crashes=0)
    with patched(mutant_by_name("candidate-vote-unrecorded").replacements):
        engine, states = _reachable(config, 3000)
        checks = Checks(engine)
        broken = 0
        for state in states:
            want = properties.check_state(engine.materialise(state))
            assert checks.state(state) == want
            broken += bool(want)
    assert broken > 0


def test_memoised_transition_checks_equal_check_transition() -> None:
    """Every edge's memoised verdict is `properties.check_transition` (section 5.1)."""
    config = ExploreConfig(nodes=3, max_term=2, max_log=2, max_messages=2, max_crashes=1)
    engine, states = _reachable(config, 1000)
    checks = Checks(engine)
    budget = ZERO_BUDGET
    edges = 0
    for state in states:
        before = engine.materialise(state)
        for action in engine.actions(state, budget):
            moved = engine.successor(state, action)
            if moved is None:
                continue
            new, changed, event = moved
            want = properties.check_transition(before, action[4], engine.materialise(new))
            assert checks.transition(state, action, new, changed, event) == want
            edges += 1
    assert edges > 2000


def test_every_invariant_is_classified_or_run_whole() -> None:
    """The memo tables name only real invariants, and the current lists are all classified.

    An unclassified invariant would still be checked (on the whole state); this test is the
    reminder to classify a new one after reading what it looks at.
    """
    state_checks = {x.check for x in properties.STATE_INVARIANTS}
    edge_checks = {x.check for x in properties.TRANSITION_INVARIANTS}
    assert state_checks == NODE_ONLY | NODES_DISKS_NETWORK | DISKS_NETWORK | READS_ONLY
    paired = PER_NODE_TRANSITIONS | PER_NODE_WITH_DISKS_TRANSITIONS | VOTE_DELIVERY_TRANSITIONS
    assert edge_checks == paired


def test_per_node_transition_invariants_hold_for_an_unchanged_node() -> None:
    """The engine skips nodes a step left alone; each per-node claim must hold for them."""
    config = ExploreConfig(nodes=3, max_term=2, max_log=2, max_messages=2)
    engine, states = _reachable(config, 500)
    budget = ZERO_BUDGET
    per_node = PER_NODE_TRANSITIONS | PER_NODE_WITH_DISKS_TRANSITIONS
    for state in states:
        cluster = engine.materialise(state)
        for action in engine.actions(state, budget):
            for invariant in properties.TRANSITION_INVARIANTS:
                if invariant.check in per_node:
                    assert invariant.check(cluster, action[4], cluster) is None


def test_double_vote_step_fn_still_found_on_the_plain_search() -> None:
    """A seeded `step_fn` (not a spec patch) still yields a shortest run (section 5.2)."""

    def double_vote(cluster: ClusterState, action: Action) -> ClusterResult:
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
        return spec.cluster_step(cluster, action)

    config = ExploreConfig(
        nodes=3, max_term=1, max_log=1, max_messages=4, max_requests=0, max_crashes=0
    )
    result = explore(replace(config, heartbeats=False, check_quorum=False), step_fn=double_vote)
    assert not result.ok
    assert result.violation in {"one_vote_per_term", "election_safety"}


def test_vote_and_persist_screens_pass_conflicts_to_the_invariants() -> None:
    """The exact screens for one_vote_per_term and persist_before_send never hide a violation.

    Reference: Figure 2 (one vote per term; persist before responding). A node whose memory
    votes for 1 while its disk holds a vote for 2 in the same term, and a granted vote reply in
    flight ahead of the voter's disk, must both be reported, exactly as check_state does.
    """
    config = ExploreConfig(nodes=3)
    engine = Engine(config, spec.step)
    checks = Checks(engine)
    base = spec.initial_cluster(3)
    voter = replace(base.nodes[0], term=1, voted_for=1)
    two_votes = replace(
        base,
        nodes=(voter, *base.nodes[1:]),
        disks=(spec.Durable(term=1, voted_for=2), *base.disks[1:]),
    )
    early = replace(
        base,
        network=(
            spec.VoteResponse(src=1, dst=0, term=1, prevote=False, granted=True, request_term=1),
        ),
    )
    for cluster, name in ((two_votes, "one_vote_per_term"), (early, "persist_before_send")):
        state = engine.state(cluster)
        want = properties.check_state(cluster)
        assert name in {v.invariant for v in want}
        assert checks.state(state) == want
    clean = engine.state(base)
    assert checks.state(clean) == properties.check_state(base) == []
