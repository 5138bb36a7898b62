"""Agreement of the Z3 node encoding with spec.step on concrete states.

Reference: Raft paper Figure 2 (the RequestVote and AppendEntries receiver rules, the
leader's commit rule of section 5.3 / 5.4.2), thesis section 9.6 (prevote).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from unittest import mock

from hypothesis import HealthCheck, given, settings

import spec._commit
import spec._election
import spec._replication
from properties.smt import CAPACITY, Flaw, agreement_cases, check_agreement, compare_step
from properties.smt._cases import _append_request
from spec import (
    AppendRequest,
    AppendResponse,
    Entry,
    Input,
    NodeState,
    Receive,
    Role,
    StepResult,
    VoteRequest,
    VoteResponse,
    last_term,
    step,
    term_at,
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


def test_many_cases_draw_without_error() -> None:
    """The generator itself never fails: 1000 draws, every input kind, logs within capacity."""
    kinds: Counter[str] = Counter()

    @settings(
        max_examples=1000,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(agreement_cases())
    def draw(case: tuple[NodeState, Input]) -> None:
        state, event = case
        assert len(state.log) + 3 <= CAPACITY
        message = event.message if isinstance(event, Receive) else event
        kinds[type(message).__name__] += 1

    draw()
    assert sum(kinds.values()) == 1000
    assert set(kinds) >= {
        "VoteRequest",
        "VoteResponse",
        "AppendRequest",
        "AppendResponse",
        "ElectionTimeout",
        "ClientRequest",
        "SendAppend",
        "Restart",
    }


def test_append_request_from_a_lower_term_than_our_entries_draws() -> None:
    """Reference: Figure 2 AppendEntries; a request older than our own prev entry is drawable.

    Regression: with our prev entry's term above the request's term, the new entries' term
    range (prev_term..term) was empty and Hypothesis raised InvalidArgument after a few
    hundred examples.
    """
    node = NodeState(id=0, voters=(0, 1, 2), term=3, voted_for=0, log=(Entry(3), Entry(3)))
    drawn: list[AppendRequest] = []

    @settings(
        max_examples=300,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_append_request(node))
    def draw(event: Input) -> None:
        assert isinstance(event, Receive) and isinstance(event.message, AppendRequest)
        drawn.append(event.message)

    draw()
    assert len(drawn) == 300
    assert any(m.prev_term > m.term for m in drawn)


def _quorum_on_older_term(state: NodeState) -> bool:
    """A quorum of match indexes (the leader counts its whole log) on an older-term entry."""
    matches = sorted(
        len(state.log) if p == state.id else state.match_index[p] for p in state.voters
    )
    best = matches[len(matches) - (len(matches) // 2 + 1)]
    entry_term = term_at(state.log, best)
    return best > state.commit and entry_term is not None and entry_term < state.term


def test_generator_reaches_the_figure_8_and_restriction_situations() -> None:
    """Reference: sections 5.4.1 and 5.4.2; the deep cases are drawn, not left to luck.

    Over 300 draws (the catalogue's default budget) the generator produces leaders that, after
    the input, have a quorum on an older-term entry past their commit index, and vote requests
    whose log is longer with an older last term or shorter with a newer one.
    """
    seen: Counter[str] = Counter()

    @settings(
        max_examples=300,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(agreement_cases())
    def draw(case: tuple[NodeState, Input]) -> None:
        state, event = case
        after = step(state, event).state
        if after.role is Role.LEADER and after.term == state.term and _quorum_on_older_term(after):
            seen["figure 8"] += 1
        if isinstance(event, Receive) and isinstance(event.message, VoteRequest) and state.log:
            ask = event.message
            ours = last_term(state.log)
            if ask.last_log_index > len(state.log) and ask.last_log_term < ours:
                seen["longer but older"] += 1
            if ask.last_log_index < len(state.log) and ask.last_log_term > ours:
                seen["shorter but newer"] += 1

    draw()
    assert seen["figure 8"] >= 10, seen
    assert seen["longer but older"] >= 5, seen
    assert seen["shorter but newer"] >= 5, seen


def _advance_commit_by_counting(state: NodeState) -> NodeState:
    """The Figure 8 bug (PySyncObj #169): no "entry is from the current term" check."""
    if state.role is not Role.LEADER:
        return state
    candidate = spec._commit.quorum_match(state)
    return replace(state, commit=candidate) if candidate > state.commit else state


def _counting_step(state: NodeState, event: Input) -> StepResult:
    with (
        mock.patch.object(spec._replication, "advance_commit", _advance_commit_by_counting),
        mock.patch.object(spec._election, "advance_commit", _advance_commit_by_counting),
    ):
        return step(state, event)


def _up_to_date_by_length(
    cand_last_term: int, cand_last_index: int, log: tuple[Entry, ...]
) -> bool:
    """The election restriction misread as "the longer log wins"."""
    del cand_last_term
    return cand_last_index >= len(log)


def _length_only_step(state: NodeState, event: Input) -> StepResult:
    with mock.patch.object(spec._election, "is_up_to_date", _up_to_date_by_length):
        return step(state, event)


def test_commit_rule_without_the_term_check_disagrees() -> None:
    """Reference: section 5.4.2, Figure 8; counting replicas of an old entry is caught."""
    result = check_agreement(_counting_step, examples=300, shrink=False)
    assert not result.ok
    assert result.counterexample is not None and "commit" in result.counterexample


def test_length_only_election_restriction_disagrees() -> None:
    """Reference: section 5.4.1; comparing log lengths only is caught, for votes and prevotes."""
    result = check_agreement(_length_only_step, examples=300, shrink=False)
    assert not result.ok
    assert result.counterexample is not None and "VoteRequest" in result.counterexample
