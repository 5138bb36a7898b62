"""Terms (Raft paper section 5.1): a higher term always wins, a stale term is always refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spec import (
    AppendResponse,
    Message,
    NodeState,
    Receive,
    Role,
    VoteRequest,
    VoteResponse,
    step,
)
from tests.spec._helpers import append, candidate, leader, node_with, precandidate

ROLES: dict[str, Callable[[], NodeState]] = {
    "follower": lambda: node_with(0, 3, term=2),
    "precandidate": lambda: precandidate(3, term=2),
    "candidate": lambda: candidate(3, term=1),  # in term 2
    "leader": lambda: leader(3, term=1),  # in term 2
}

HIGHER: dict[str, Message] = {
    "append-request": append(1, 0, 7),
    "append-response": AppendResponse(1, 0, 7, False, 0, 1, 0),
    "vote-request": VoteRequest(1, 0, 7, False, 0, 0),
    "vote-reply": VoteResponse(1, 0, 7, False, False, request_term=2),
    "prevote-reply": VoteResponse(1, 0, 7, True, False, request_term=2),
}


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("kind", sorted(HIGHER))
def test_higher_term_is_adopted_and_steps_down(role: str, kind: str) -> None:
    """Any message (request or reply) with a higher term makes the node adopt it and follow.

    Reference: section 5.1 ("If a server's current term is smaller than the other's, it updates
    its current term ... a candidate or leader immediately reverts to follower state"), and the
    seed's term marker (any reply with a higher term steps down).
    """
    state = ROLES[role]()
    assert state.term == 2
    result = step(state, Receive(HIGHER[kind]))
    assert result.rejected is None
    assert result.state.term == 7
    assert result.state.role is Role.FOLLOWER
    assert result.persist is not None and result.persist.term == 7
    if kind != "vote-request":  # a vote request may be granted in the same step
        assert result.state.voted_for is None
        assert result.persist.voted_for is None
    if kind != "append-request":
        assert result.state.leader is None


def test_higher_term_vote_request_is_granted_after_adopting() -> None:
    """The new term starts with no vote, so an up-to-date candidate of that term gets it.

    Reference: section 5.1 and Figure 2 (RequestVote receiver: votedFor is null in a new term).
    """
    state = node_with(0, 3, term=2, voted_for=2)
    result = step(state, Receive(VoteRequest(1, 0, 3, False, 0, 0)))
    assert result.state.term == 3 and result.state.voted_for == 1
    reply = result.messages[0]
    assert isinstance(reply, VoteResponse) and reply.granted and reply.term == 3


def test_higher_term_append_makes_the_sender_the_known_leader() -> None:
    """A newer leader's append both raises the term and names the leader.

    Reference: section 5.1 and 5.2 ("If the leader's term is at least as large as the
    candidate's current term, then the candidate recognizes the leader as legitimate").
    """
    state = leader(3, term=1)
    result = step(state, Receive(append(2, 0, 9)))
    assert result.state.role is Role.FOLLOWER
    assert result.state.leader == 2 and result.state.term == 9


def test_stale_append_is_rejected_with_the_current_term() -> None:
    """An AppendEntries from an older term is refused and the reply tells the sender our term.

    Reference: section 5.1 ("If a server receives a request with a stale term number, it rejects
    the request"), Figure 2 (AppendEntries receiver rule 1).
    """
    state = node_with(0, 3, term=5)
    result = step(state, Receive(append(1, 0, 4)))
    assert result.state == state
    assert result.persist is None
    (reply,) = result.messages
    assert isinstance(reply, AppendResponse)
    assert not reply.success and reply.term == 5


def test_stale_vote_request_is_rejected_without_voting() -> None:
    """A RequestVote from an older term is refused; the voter's term and vote stay.

    Reference: section 5.1, Figure 2 (RequestVote receiver rule 1).
    """
    state = node_with(0, 3, term=5)
    result = step(state, Receive(VoteRequest(1, 0, 4, False, 10, 4)))
    assert result.state == state
    (reply,) = result.messages
    assert isinstance(reply, VoteResponse) and not reply.granted and reply.term == 5


def test_stale_append_response_is_ignored_by_the_leader() -> None:
    """A reply from an older term says nothing about this term's replication.

    Reference: section 5.1 (stale term numbers are ignored).
    """
    state = leader(3, term=1)
    result = step(state, Receive(AppendResponse(1, 0, 1, True, 5, 0, 0)))
    assert result.state == state
    assert result.messages == ()


def test_stale_vote_reply_does_not_count() -> None:
    """A vote granted in an older term does not count toward this election.

    Reference: section 5.1; etcd#8243 (vote replies carry the request's term).
    """
    state = candidate(5, term=3)  # term 4, needs 3 votes
    stale = VoteResponse(1, 0, 3, False, True, request_term=3)
    stale2 = VoteResponse(2, 0, 3, False, True, request_term=3)
    after = step(step(state, Receive(stale)).state, Receive(stale2)).state
    assert after == state


def _all_states() -> list[NodeState]:
    return [make() for make in ROLES.values()]


@pytest.mark.parametrize("state", _all_states(), ids=sorted(ROLES))
def test_a_prevote_request_with_a_higher_term_is_not_adopted(state: NodeState) -> None:
    """A prevote request is a question, not a claim: its term is not adopted by anyone.

    Reference: thesis section 9.6 (prevote does not disturb the cluster's terms).
    """
    result = step(state, Receive(VoteRequest(1, 0, 50, True, 99, 50)))
    assert result.state == state
    assert result.persist is None
