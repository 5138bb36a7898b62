"""The Hypothesis engine: the ci profile passes on the spec, and the engine can fail.

Reference: Raft paper section 5 (Figure 3's safety properties, checked after every step by
`properties.check_state` / `check_transition`); thesis section 9.6 (prevote) and 6.4 (reads).
"""

from __future__ import annotations

from dataclasses import replace
from unittest import mock

import pytest

import spec
from properties.stateful import (
    COVERAGE_KEYS,
    ClusterMachine,
    StatefulResult,
    profile_settings,
    run_stateful,
)
from properties.stateful.__main__ import main
from spec import Action, ClusterResult, ClusterState, NodeState, VoteRequest, VoteResponse
from spec._transition import Transition

TestCluster = ClusterMachine.TestCase
TestCluster.settings = profile_settings("ci")
"""TestCluster runs the whole ci profile under pytest (Figure 3, every invariant, every step)."""


def _grant_everything(state: NodeState, msg: VoteRequest) -> Transition:
    """A seeded bug: grant every (pre)vote, even after voting for someone else this term."""
    if not msg.prevote and msg.term >= state.term:
        state = replace(state, voted_for=msg.src)
    reply = VoteResponse(
        src=state.id,
        dst=msg.src,
        term=state.term,
        prevote=msg.prevote,
        granted=True,
        request_term=msg.term,
    )
    return Transition(state, (reply,))


def _forget_to_persist(cluster: ClusterState, action: Action) -> ClusterResult:
    """A broken cluster step: messages leave, but the disks keep what they had before."""
    result = spec.cluster_step(cluster, action)
    return replace(result, state=replace(result.state, disks=cluster.disks))


def test_ci_profile_is_deterministic_and_offline() -> None:
    """The ci profile is derandomized with no example database, so CI runs are repeatable."""
    ci = profile_settings("ci")
    assert ci.derandomize is True
    assert ci.database is None
    assert ci.stateful_step_count == 60
    deep = profile_settings("deep")
    assert deep.max_examples > ci.max_examples
    assert deep.stateful_step_count == 200
    assert profile_settings("ci", max_examples=7).max_examples == 7


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        run_stateful("nightly")


def test_run_stateful_passes_on_the_spec_and_reaches_interesting_states() -> None:
    """Runs elect leaders, commit entries, answer reads and reach later terms (sections 5.2-5.4).

    A run that never elects a leader checks nearly nothing, so coverage is part of the verdict.
    """
    result = run_stateful("ci", max_examples=100)
    assert result.ok, result.counterexample
    assert result.counterexample is None
    assert result.examples >= 100
    assert result.steps > result.examples
    assert result.steps_per_second > 0
    assert set(COVERAGE_KEYS) <= set(result.coverage)
    assert result.coverage["runs"] == result.examples
    for milestone in ("elected_leader", "committed_client_entry", "answered_read", "second_term"):
        assert result.coverage[milestone] > 0, (milestone, result.coverage)
    sizes = {key for key, runs in result.coverage.items() if key.startswith("size_") and runs}
    assert sizes == {f"size_{n}" for n in range(1, 6)}


def test_runs_change_membership_and_transfer_leadership() -> None:
    """Runs commit configuration changes, use learners, send TimeoutNow and append a
    sentinel on request.

    Reference: thesis sections 4.1 (single-server changes), 4.2.1 (learners), 3.10 (transfer),
    and the 2015 own-term rule (a change waits for an entry of the leader's term); the
    universe is larger than the initial configuration in part of the runs.
    """
    result = run_stateful("ci", max_examples=400)
    assert result.ok, result.counterexample
    for milestone in (
        "config_committed",
        "learner_in_use",
        "timeout_now_sent",
        "sentinel_on_request",
    ):
        assert result.coverage[milestone] > 0, (milestone, result.coverage)


def _assert_caught(result: StatefulResult, invariants: tuple[str, ...]) -> str:
    assert not result.ok
    text = result.counterexample
    assert text is not None
    assert "| action" in text  # the numbered table of steps ...
    assert "violated: " in text  # ... ending with the invariant that broke
    assert any(name in text for name in invariants), text
    return text


def test_a_node_that_grants_every_vote_is_caught() -> None:
    """Voting twice in a term breaks one-vote-per-term and Election Safety (section 5.2).

    The bug is patched into a spec module attribute, so this also proves the engine calls the
    spec at run time rather than through references captured at import.
    """
    with mock.patch("spec._step.on_vote_request", _grant_everything):
        result = run_stateful("ci")
    # Granting every vote also grants stale logs: whichever claim breaks first is a catch.
    text = _assert_caught(
        result, ("one_vote_per_term", "election_safety", "votes_respect_restriction")
    )
    assert "VoteReq" in text


def test_the_step_fn_hook_replaces_the_cluster_step() -> None:
    """Sending before persisting is caught by persist_before_send (Figure 2, PySyncObj #84)."""
    result = run_stateful("ci", max_examples=100, step_fn=_forget_to_persist)
    _assert_caught(result, ("persist_before_send",))


def _crash_on_commit(cluster: ClusterState, action: Action) -> ClusterResult:
    """A broken cluster step that raises once anything commits."""
    result = spec.cluster_step(cluster, action)
    if any(node.commit > 0 for node in result.state.nodes):
        raise ValueError("commit refused by a broken step")
    return result


def test_a_step_that_raises_is_reported_with_the_run() -> None:
    """A crash of the step is a failure too, told apart from a violation, with the run."""
    result = run_stateful("ci", max_examples=100, step_fn=_crash_on_commit)
    assert not result.ok
    text = result.counterexample
    assert text is not None
    assert text.startswith("ValueError: commit refused by a broken step")
    assert "invariant violated" not in text
    assert "| action" in text
    assert "the step raised on action" in text


def test_a_failing_testcase_raises_with_the_table() -> None:
    """Under pytest the machine fails with the same table as the assertion message."""

    class Broken(ClusterMachine):
        def __init__(self) -> None:
            super().__init__(step_fn=_forget_to_persist)

    case = Broken.TestCase
    case.settings = profile_settings("ci", max_examples=100)
    with pytest.raises(AssertionError, match=r"(?s)invariant violated at step \d+.*violated: "):
        case("runTest").runTest()


def test_cli_prints_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profile", "ci", "--max-examples", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("stateful (ci): ok: ")
    assert "steps/s" in out
    assert "elected_leader" in out
