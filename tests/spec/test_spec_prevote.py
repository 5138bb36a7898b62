"""Prevote (thesis section 9.6), check-quorum and leader stickiness (thesis sections 6.2, 9.6)."""

from __future__ import annotations

import pytest

from spec import (
    AppendResponse,
    CheckQuorum,
    ElectionTimeout,
    NodeState,
    Receive,
    Role,
    VoteRequest,
    VoteResponse,
    step,
)
from tests.spec._helpers import (
    append,
    entries,
    feed,
    grant,
    leader,
    node_with,
    precandidate,
)


def test_timeout_enters_prevote_without_touching_term_or_vote() -> None:
    """The timeout asks for prevotes at the current term; nothing durable changes.

    Reference: thesis section 9.6 (a candidate first asks whether it could win, without
    incrementing its term); the seed, behaviour 2.
    """
    state = node_with(0, 3, term=4, voted_for=2, log=entries(1, 4), commit=1)
    result = step(state, ElectionTimeout())
    assert result.state.role is Role.PRECANDIDATE
    assert (result.state.term, result.state.voted_for) == (4, 2)
    assert result.persist is None
    assert {m.dst for m in result.messages} == {1, 2}
    for m in result.messages:
        assert isinstance(m, VoteRequest)
        assert m.prevote and m.term == 4 and (m.last_log_index, m.last_log_term) == (2, 4)


@pytest.mark.parametrize("granted_expected", [True, False])
def test_answering_a_prevote_changes_nothing_on_the_responder(granted_expected: bool) -> None:
    """Granting or refusing a prevote leaves the responder's state identical (no persist).

    Reference: thesis section 9.6; the seed ("changes none of its own state").
    """
    state = node_with(1, 3, term=3, voted_for=2, log=entries(1, 3))
    last_term = 3 if granted_expected else 1
    result = step(state, Receive(VoteRequest(0, 1, 5, True, 2, last_term)))
    assert result.state == state and result.persist is None
    (reply,) = result.messages
    assert isinstance(reply, VoteResponse) and reply.granted is granted_expected
    assert reply.prevote and reply.request_term == 5 and reply.term == 3


def test_the_term_is_raised_only_after_a_prevote_quorum() -> None:
    """In five servers, one prevote grant leaves the term alone; the second one raises it.

    Reference: thesis section 9.6; the seed, behaviour 2.
    """
    state = precandidate(5, term=2)
    one = step(state, grant(1, 0, 2, prevote=True))
    assert one.state.role is Role.PRECANDIDATE and one.state.term == 2 and one.persist is None
    two = step(one.state, grant(2, 0, 2, prevote=True))
    assert two.state.role is Role.CANDIDATE and two.state.term == 3


def test_the_candidate_persists_its_term_and_self_vote_before_asking() -> None:
    """The step that emits RequestVote carries a persist with the new term and the self-vote.

    Reference: Figure 2 (currentTerm and votedFor are persistent, updated on stable storage
    before responding to RPCs); the seed (persist, then ask for real votes); PySyncObj #84.
    """
    result = step(precandidate(3, term=6), grant(1, 0, 6, prevote=True))
    assert any(isinstance(m, VoteRequest) and not m.prevote for m in result.messages)
    assert result.persist is not None
    assert (result.persist.term, result.persist.voted_for) == (7, 0)


def test_a_prevote_quorum_is_ignored_once_no_longer_precandidate() -> None:
    """A leader's append in between makes the node a follower; late prevote grants do nothing.

    Reference: the seed ("only if the node is still in Prevote at the same term").
    """
    state = feed(precandidate(3, term=2), Receive(append(2, 0, 2)))
    assert state.role is Role.FOLLOWER
    result = step(state, grant(1, 0, 2, prevote=True))
    assert result.state == state and result.messages == ()


def test_a_stale_prevote_grant_from_an_earlier_round_does_not_count() -> None:
    """A grant answering a prevote at an older term is not counted.

    Reference: the seed (same term); etcd#8243.
    """
    state = precandidate(3, term=5)
    result = step(state, Receive(VoteResponse(1, 0, 4, True, True, request_term=4)))
    assert result.state == state


def test_a_lower_term_prevote_is_refused_and_the_asker_learns_the_term() -> None:
    """A responder at a higher term refuses with its term, and the asker steps up to it.

    Reference: thesis section 9.6; etcd#8501 (reply to a lower-term prevote with a rejection).
    """
    responder = node_with(1, 3, term=8)
    asker = precandidate(3, term=5)
    (request, _) = step(node_with(0, 3, term=5), ElectionTimeout()).messages
    reply = step(responder, Receive(request))
    assert reply.state == responder
    (answer,) = reply.messages
    assert isinstance(answer, VoteResponse) and not answer.granted and answer.term == 8
    after = feed(asker, Receive(answer))
    assert after.term == 8 and after.role is Role.FOLLOWER


def test_a_follower_that_heard_from_a_live_leader_refuses_prevotes() -> None:
    """Leader stickiness: a follower with a current leader refuses prevotes, until its lease
    expires (the CheckQuorum tick), then grants again.

    Reference: thesis section 9.6 ("if a server ... heard from a leader within the election
    timeout, it does not grant"), and 4.2.3 (disruptive servers).
    """
    follower = feed(node_with(1, 3, term=2), Receive(append(0, 1, 2)))
    assert follower.heard_from_leader and follower.leader == 0
    ask = Receive(VoteRequest(2, 1, 2, True, 0, 0))
    (no,) = step(follower, ask).messages
    assert isinstance(no, VoteResponse) and not no.granted
    expired = feed(follower, CheckQuorum())
    (yes,) = step(expired, ask).messages
    assert isinstance(yes, VoteResponse) and yes.granted


def test_a_leader_refuses_prevotes() -> None:
    """A live leader never helps an election against itself.

    Reference: thesis section 9.6 (leader stickiness).
    """
    state = leader(3, term=1)
    (reply,) = step(state, Receive(VoteRequest(1, 0, 2, True, 0, 0))).messages
    assert isinstance(reply, VoteResponse) and not reply.granted


def test_becoming_precandidate_forgets_the_leader() -> None:
    """The timed-out node no longer names a leader, nor claims to have heard from one.

    Reference: etcd PR #8334 (forget the leader when becoming pre-candidate under check-quorum).
    """
    follower = feed(node_with(1, 3, term=2), Receive(append(0, 1, 2)))
    pre = feed(follower, ElectionTimeout())
    assert pre.leader is None and not pre.heard_from_leader


def _leader_with_acks(acks: tuple[int, ...]) -> NodeState:
    state = leader(5, term=1)
    assert state.recent_active == {0}  # a fresh leader's window holds only itself
    for peer in acks:
        state = feed(state, Receive(AppendResponse(peer, 0, 2, True, 0, 0, 0)))
    return state


def test_check_quorum_keeps_a_leader_that_heard_from_a_majority() -> None:
    """A leader with replies from a majority in the last window stays, and opens a new window.

    Reference: thesis section 6.2 ("a leader steps down if an election timeout elapses without a
    successful round of heartbeats to a majority").
    """
    state = _leader_with_acks((1, 2))
    after = feed(state, CheckQuorum())
    assert after.role is Role.LEADER and after.recent_active == {0}


def test_check_quorum_steps_down_a_cut_off_leader_keeping_term_and_vote() -> None:
    """A leader that heard from only a minority steps down in the same term with its vote.

    Reference: thesis section 6.2; section 5.2 (one vote per term: keeping the vote).
    """
    state = _leader_with_acks((1,))
    result = step(state, CheckQuorum())
    new = result.state
    assert new.role is Role.FOLLOWER and new.leader is None
    assert (new.term, new.voted_for) == (state.term, state.voted_for)
    assert result.persist is None
