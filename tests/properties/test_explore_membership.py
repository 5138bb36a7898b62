"""The explorer over membership changes and leadership transfer.

Reference: Raft thesis section 4.1 (one server at a time; the 2015 rule that a leader first
commits an entry of its own term), 4.2.1 (learners catch up before they vote and never count),
4.2.2 (removal) and 3.10 (leadership transfer by TimeoutNow). Small bounds only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from unittest import mock

import pytest

import properties
import spec
from properties import _invariants
from properties.explore import (
    CONFIGS,
    ZERO_BUDGET,
    ExploreConfig,
    ExploreResult,
    enumerate_actions,
    explore,
    main,
)
from properties.mutants import Replacement, mutant_by_name, patched, run_engine
from properties.mutants._engines import Verdict
from properties.mutants._harness import explorer_settings
from spec import (
    AddLearner,
    AppendSentinel,
    ClusterState,
    ElectionTimeout,
    NodeInput,
    PromoteLearner,
    RemoveServer,
    Role,
    TransferLeadership,
    config_in_use,
)

# Two voters and a learner from the start: the smallest model where a learner matters.
WITH_LEARNER = ExploreConfig(
    nodes=3,
    voters=(0, 1),
    learners=(2,),
    max_term=1,
    max_log=2,
    max_messages=3,
    max_requests=1,
    max_crashes=0,
    max_changes=1,
    heartbeats=False,
    check_quorum=False,
)

# Two voters, one transfer, one ordinary election timeout: a leader of term 2 can only have
# been elected through TimeoutNow.
ONE_TRANSFER = ExploreConfig(
    nodes=2,
    max_term=2,
    max_log=1,
    max_messages=2,
    max_requests=0,
    max_crashes=0,
    max_transfers=1,
    max_elections=1,
    heartbeats=False,
    check_quorum=False,
)


def _probe(config: ExploreConfig, check: Callable[[ClusterState], str | None]) -> ExploreResult:
    """Explore with one more state "invariant" that flags a target state: it is reachable
    exactly when the explorer reports a violation of it, with the run that gets there."""
    extra = properties.StateInvariant("probe", check)
    invariants = (*properties.STATE_INVARIANTS, extra)
    with (
        mock.patch.object(properties, "STATE_INVARIANTS", invariants),
        mock.patch.object(_invariants, "STATE_INVARIANTS", invariants),
    ):
        return explore(config)


def test_membership_inputs_are_offered_to_a_leader_by_its_configuration() -> None:
    """Reference: thesis 4.2.1 — add a non-member, promote a learner, remove a member."""
    config = ExploreConfig(nodes=2, voters=(0,), learners=(1,), max_changes=1, max_transfers=1)
    cluster = config.initial()
    leader = spec.cluster_step(cluster, NodeInput(0, ElectionTimeout())).state
    assert leader.nodes[0].role is Role.LEADER
    offered = enumerate_actions(leader, ZERO_BUDGET, config)
    assert NodeInput(0, PromoteLearner(1)) in offered
    assert NodeInput(0, AppendSentinel()) in offered
    assert NodeInput(0, RemoveServer(1)) in offered
    assert NodeInput(0, RemoveServer(0)) in offered
    assert not any(isinstance(a, NodeInput) and isinstance(a.input, AddLearner) for a in offered)
    # Node 1 is a learner, not a voter: no transfer to it.
    assert not any(
        isinstance(a, NodeInput) and isinstance(a.input, TransferLeadership) for a in offered
    )
    spent = enumerate_actions(leader, (0, 0, 0, 0, 1, 0, 0, 0), config)
    assert not any(isinstance(a, NodeInput) and isinstance(a.input, PromoteLearner) for a in spent)
    none = enumerate_actions(leader, ZERO_BUDGET, replace(config, max_changes=0))
    assert not any(isinstance(a, NodeInput) and isinstance(a.input, RemoveServer) for a in none)


def test_initial_configuration_must_name_nodes_of_the_universe() -> None:
    with pytest.raises(ValueError, match="outside"):
        ExploreConfig(nodes=3, voters=(0, 1, 3))


@pytest.mark.parametrize(
    "config",
    [replace(WITH_LEARNER, max_depth=9), replace(ONE_TRANSFER, max_depth=10)],
    ids=["learner", "transfer"],
)
def test_fast_and_plain_search_agree_on_membership_models(config: ExploreConfig) -> None:
    """The interned engine explores the same states and edges as `spec.cluster_step`."""
    fast = explore(config)
    plain = explore(replace(config, fast=False))
    assert (fast.distinct_states, fast.edges, fast.depth) == (
        plain.distinct_states,
        plain.edges,
        plain.depth,
    )
    assert fast.ok and plain.ok


def test_a_learner_is_caught_up_and_promoted() -> None:
    """Reference: thesis 4.2.1 — a learner becomes a voter once it has caught up."""

    def promoted(cluster: ClusterState) -> str | None:
        for node in cluster.nodes:
            if len(config_in_use(node).voters) == 3 and node.role is Role.LEADER:
                return f"leader {node.id} uses {config_in_use(node)}"
        return None

    result = _probe(replace(WITH_LEARNER, max_log=3, max_depth=14), promoted)
    assert result.violation == "probe"
    assert result.counterexample is not None
    assert "promote learner 2" in result.counterexample


def test_leadership_moves_by_timeout_now() -> None:
    """Reference: thesis 3.10 — the target campaigns at once and wins the next term."""

    def transferred(cluster: ClusterState) -> str | None:
        for node in cluster.nodes:
            if node.role is Role.LEADER and node.term == 2:
                return f"node {node.id} leads term 2"
        return None

    result = _probe(ONE_TRANSFER, transferred)
    assert result.violation == "probe"
    assert result.counterexample is not None
    assert "transfer leadership to" in result.counterexample
    assert "TimeoutNow" in result.counterexample


def test_membership_and_transfer_models_hold_on_the_spec() -> None:
    """The correct spec breaks no invariant in the small membership and transfer models."""
    for config in (replace(WITH_LEARNER, max_depth=13), replace(ONE_TRANSFER, max_depth=14)):
        result = explore(config)
        assert result.ok, result.counterexample
        assert result.depth == config.max_depth


def test_explorer_kills_the_learner_quorum_mutant() -> None:
    """Reference: thesis 4.2.1 — an entry stored by the leader and a learner must not commit."""
    mutant = mutant_by_name("learner-counts-in-quorum")
    with patched(mutant.replacements):
        outcome = run_engine("explorer", explorer_settings(mutant))
    assert outcome.verdict is Verdict.CAUGHT, outcome.detail
    assert "commit_by_voter_quorum" in outcome.detail


@pytest.mark.slow
def test_explorer_kills_the_stale_timeout_now_mutant() -> None:
    """Reference: thesis 3.10, 5.4.1 — a transfer vote still obeys the election restriction."""
    mutant = mutant_by_name("timeoutnow-ignores-log")
    with patched(mutant.replacements):
        outcome = run_engine("explorer", explorer_settings(mutant))
    assert outcome.verdict is Verdict.CAUGHT, outcome.detail


def test_a_seeded_change_without_commit_check_is_found_by_the_explorer() -> None:
    """A leader that changes membership with a change already pending (thesis 4.1): the
    explorer finds two uncommitted configuration entries in one leader's log."""

    def change_blocked_ignores_pending(state: spec.NodeState) -> str | None:
        if state.role is not Role.LEADER:
            return "only the leader changes membership"
        return None  # seeded bug: no pending-config and no own-term checks

    config = replace(WITH_LEARNER, max_log=3, max_changes=2, max_requests=0)
    with patched(
        [Replacement("spec._membership", "change_blocked", change_blocked_ignores_pending)]
    ):
        result = explore(config)
    assert not result.ok
    assert result.violation in {"one_uncommitted_config", "config_near_committed"}
    assert result.counterexample is not None


def test_presets_and_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """`--preset` names the membership and transfer models; overrides still apply."""
    assert {"ci", "membership", "membership-small", "transfer", "config-race"} <= set(CONFIGS)
    assert CONFIGS["membership"].voters == (0, 1, 2) and CONFIGS["membership"].nodes == 4
    code = main(["--preset", "membership", "--max-depth", "6", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "voters=[0, 1, 2]" in out and "changes=2" in out
