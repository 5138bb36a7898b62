"""Agreement of the Z3 node encoding with spec.step on concrete states.

Reference: Raft paper Figure 2 (the RequestVote and AppendEntries receiver rules, the
leader's commit rule of section 5.3 / 5.4.2), thesis section 9.6 (prevote).
"""

from __future__ import annotations

from dataclasses import replace

from properties.smt import Flaw, check_agreement, compare_step
from spec import (
    AppendResponse,
    Entry,
    Input,
    NodeState,
    Receive,
    Role,
    StepResult,
    VoteRequest,
    VoteResponse,
    step,
)


def test_encoding_agrees_with_the_spec() -> None:
    """Reference: Figure 2; the same successor and messages on generated states and inputs."""
    result = check_agreement(examples=120)
    assert result.ok, result.counterexample
    assert result.examples >= 120
    covered = dict(result.by_input)
    for kind in (
        "VoteRequest",
        "VoteResponse",
        "AppendRequest",
        "AppendResponse",
        "ElectionTimeout",
        "ClientRequest",
        "SendAppend",
        "Restart",
    ):
        assert covered.get(kind, 0) > 0, kind


def test_figure_8_commit_rule_agrees() -> None:
    """Reference: section 5.4.2; a majority on an old-term entry does not commit it."""
    leader = NodeState(
        id=0,
        voters=(0, 1, 2),
        term=3,
        voted_for=0,
        log=(Entry(1), Entry(2)),
        commit=0,
        role=Role.LEADER,
        leader=0,
        next_index=(3, 3, 3),
        match_index=(2, 0, 0),
        acked_ctx=(0, 0, 0),
    )
    ack = Receive(
        AppendResponse(src=1, dst=0, term=3, success=True, match_index=2, hint_index=0, read_ctx=0)
    )
    assert step(leader, ack).state.commit == 0
    assert compare_step(leader, ack) is None


def _commits_old_terms(state: NodeState, event: Input) -> StepResult:
    """A seeded bug: the leader commits whatever a majority stores (PySyncObj #169)."""
    result = step(state, event)
    new = result.state
    if new.role is Role.LEADER and isinstance(event, Receive):
        matches = sorted(len(new.log) if p == new.id else new.match_index[p] for p in new.voters)
        best = matches[len(matches) - (len(matches) // 2 + 1)]
        if best > new.commit:
            return replace(result, state=replace(new, commit=best))
    return result


def test_a_mutated_step_function_disagrees() -> None:
    """The check fails for a step function with the Figure 8 bug (section 5.4.2)."""
    result = check_agreement(_commits_old_terms, examples=300)
    assert not result.ok
    assert result.counterexample is not None
    assert "commit" in result.counterexample
    assert "DISAGREE" in result.summary()


def test_a_flawed_encoding_disagrees_with_the_spec() -> None:
    """Reference: section 5.2; an encoding that votes twice is caught on a concrete case."""
    voter = NodeState(id=0, voters=(0, 1, 2), term=1, voted_for=2)
    ask = Receive(
        VoteRequest(src=1, dst=0, term=1, prevote=False, last_log_index=0, last_log_term=0)
    )
    assert compare_step(voter, ask) is None
    report = compare_step(voter, ask, flaws=frozenset({Flaw.VOTE_TWICE}))
    assert report is not None and "voted_for" in report


def test_seed_quorum_encoding_disagrees_on_four_nodes() -> None:
    """The seed's threshold makes a 4-node candidate leader on its second vote."""
    cand = NodeState(
        id=0, voters=(0, 1, 2, 3), term=1, voted_for=0, role=Role.CANDIDATE, votes=frozenset({0})
    )
    vote = Receive(VoteResponse(src=1, dst=0, term=1, prevote=False, granted=True, request_term=1))
    assert compare_step(cand, vote) is None
    report = compare_step(cand, vote, flaws=frozenset({Flaw.SEED_QUORUM}))
    assert report is not None and "role" in report


def test_agreement_check_reports_a_flawed_encoding() -> None:
    """check_agreement itself fails for the vote-twice encoding."""
    result = check_agreement(examples=500, flaws=frozenset({Flaw.VOTE_TWICE}), shrink=False)
    assert not result.ok
    assert result.step_name.endswith("vote-twice")
