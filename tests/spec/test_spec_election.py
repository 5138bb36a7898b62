"""Leader election (Raft paper section 5.2, 5.4.1) and the seed's vote counting and takeover."""

from __future__ import annotations

import pytest

from spec import (
    ClientRequest,
    Crash,
    Deliver,
    ElectionTimeout,
    EntryKind,
    NodeInput,
    Receive,
    Role,
    SendAppend,
    VoteRequest,
    VoteResponse,
    initial_cluster,
    is_up_to_date,
    step,
)
from tests.spec._helpers import (
    candidate,
    deliver,
    deliver_all,
    elect,
    entries,
    expire_leases,
    feed,
    grant,
    leader,
    node_with,
    precandidate,
    propose,
    run,
    sync,
    timeout,
)


def test_a_candidate_needs_votes_from_a_majority_of_the_full_cluster() -> None:
    """In five servers, two votes (self + one) do not elect; three do.

    Reference: section 5.2 ("A candidate wins an election if it receives votes from a majority
    of the servers in the full cluster for the same term").
    """
    state = candidate(5, term=1)
    assert state.term == 2 and state.votes == {0}
    state = feed(state, grant(1, 0, 2, prevote=False))
    assert state.role is Role.CANDIDATE
    state = feed(state, grant(2, 0, 2, prevote=False))
    assert state.role is Role.LEADER and state.leader == 0


def test_a_server_votes_at_most_once_per_term() -> None:
    """After granting node 1 in term 3, node 2 of the same term is refused; node 1 again is not.

    Reference: section 5.2 ("each server will vote for at most one candidate in a given term,
    on a first-come-first-served basis"); Figure 2 (votedFor is persistent).
    """
    state = node_with(0, 3, term=2)
    first = step(state, Receive(VoteRequest(1, 0, 3, False, 0, 0)))
    assert first.state.voted_for == 1
    assert first.persist is not None and first.persist.voted_for == 1
    second = step(first.state, Receive(VoteRequest(2, 0, 3, False, 0, 0)))
    (no,) = second.messages
    assert isinstance(no, VoteResponse) and not no.granted
    assert second.state == first.state
    again = step(first.state, Receive(VoteRequest(1, 0, 3, False, 0, 0)))
    (yes,) = again.messages
    assert isinstance(yes, VoteResponse) and yes.granted


def test_a_candidate_does_not_vote_for_a_rival_in_its_own_term() -> None:
    """A candidate has voted for itself, so a rival of the same term gets no vote.

    Reference: section 5.2 (a candidate votes for itself).
    """
    state = candidate(3, term=1)
    result = step(state, Receive(VoteRequest(1, 0, 2, False, 0, 0)))
    (reply,) = result.messages
    assert isinstance(reply, VoteResponse) and not reply.granted
    assert result.state.role is Role.CANDIDATE


def test_granting_a_vote_cancels_our_own_election() -> None:
    """A precandidate that grants a real vote of a higher term becomes a follower.

    Reference: section 5.2; the seed (granting a vote resets the timer and cancels an election).
    """
    state = precandidate(3, term=1)
    result = step(state, Receive(VoteRequest(1, 0, 2, False, 0, 0)))
    assert result.state.role is Role.FOLLOWER
    assert result.state.voted_for == 1 and result.state.prevotes == frozenset()


def test_timeouts_are_inputs_and_a_split_vote_is_resolved_by_the_next_one() -> None:
    """Nothing happens without a timeout; with two simultaneous candidates in four servers
    the vote splits, and the next timeout (the randomized one, chosen by the test) wins.

    Reference: section 5.2 ("Raft uses randomized election timeouts to ensure that split votes
    are rare and that they are resolved quickly").
    """
    cluster = initial_cluster(4)
    assert deliver_all(cluster) == cluster  # no timer, no election
    cluster = timeout(timeout(cluster, 0), 1)
    # Both collect prevotes from 2 and 3 (prevotes change nothing), and become candidates.
    cluster = deliver(cluster, (0, 2), (0, 3), (1, 2), (1, 3), (2, 0), (3, 0), (2, 1), (3, 1))
    assert cluster.nodes[0].role is cluster.nodes[1].role is Role.CANDIDATE
    # Node 2 hears node 0 first, node 3 hears node 1 first: two votes each, no majority of 4.
    first = [VoteRequest(0, 2, 1, False, 0, 0), VoteRequest(1, 3, 1, False, 0, 0)]
    cluster = run(cluster, *(Deliver(m) for m in first))
    cluster = deliver_all(cluster)
    assert [s.role for s in cluster.nodes] == [Role.CANDIDATE, Role.CANDIDATE] + [Role.FOLLOWER] * 2
    assert cluster.nodes[0].term == cluster.nodes[1].term == 1
    # Node 0's timer fires first this time: it wins term 2.
    cluster = deliver_all(timeout(cluster, 0))
    assert cluster.nodes[0].role is Role.LEADER and cluster.nodes[0].term == 2


def test_a_vote_counts_only_if_it_answers_the_current_election() -> None:
    """A granted reply whose request_term is not our term is ignored (etcd#8243).

    Reference: section 5.2; the seed ("a vote counts only if granted and the reply's term
    equals the request's term").
    """
    state = candidate(3, term=4)  # term 5
    late = VoteResponse(1, 0, 5, False, True, request_term=4)
    assert step(state, Receive(late)).state == state
    prevote_reply = VoteResponse(1, 0, 5, True, True, request_term=5)
    assert step(state, Receive(prevote_reply)).state == state  # wrong phase
    assert feed(state, grant(1, 0, 5, prevote=False)).role is Role.LEADER


def test_a_duplicated_vote_counts_once() -> None:
    """The same voter's grant delivered twice is one vote.

    Reference: section 5.2 (a majority of servers, not of messages).
    """
    state = candidate(5, term=1)
    twice = feed(state, grant(1, 0, 2, prevote=False), grant(1, 0, 2, prevote=False))
    assert twice.role is Role.CANDIDATE and twice.votes == {0, 1}


def test_rejections_that_rule_out_a_quorum_end_the_round() -> None:
    """With a majority against, the candidate waits for its next timeout, which retries.

    Reference: section 5.2 ("a candidate ... times out and starts a new election").
    """
    state = candidate(3, term=1)
    state = feed(
        state,
        grant(1, 0, 2, prevote=False, granted=False),
        grant(2, 0, 2, prevote=False, granted=False),
    )
    assert state.role is Role.CANDIDATE and state.rejections == {1, 2}
    retry = step(state, ElectionTimeout())
    assert retry.state.role is Role.PRECANDIDATE and retry.state.term == 2
    assert len(retry.messages) == 2


@pytest.mark.parametrize("role", ["follower", "precandidate", "leader"])
def test_only_a_candidate_becomes_leader(role: str) -> None:
    """A real vote grant reaching a non-candidate changes nothing.

    Reference: the seed, behaviour 4 ("only if still Candidate in that term").
    """
    state = {
        "follower": node_with(0, 3, term=2),
        "precandidate": precandidate(3, term=2),
        "leader": leader(3, term=1),
    }[role]
    result = step(state, grant(1, 0, 2, prevote=False))
    assert result.state == state
    assert result.messages == ()


def test_no_sentinel_when_the_log_is_fully_committed() -> None:
    """A new leader whose commit index is its last index appends nothing; that is the sentinel.

    Reference: the seed, behaviour 4; thesis section 6.4 (a leader needs a committed entry of
    its term before serving reads, unless nothing is uncommitted).
    """
    state = leader(3, term=1, log=entries(1, 1), commit=2)
    assert state.log == entries(1, 1)
    assert state.sentinel == 2


def test_sentinel_noop_when_the_commit_index_is_behind() -> None:
    """A new leader with uncommitted entries appends a NOOP of its term and persists it.

    Reference: section 5.4.2 and thesis section 6.4 (leader commits a blank no-op entry at the
    start of its term); the seed, behaviour 4.
    """
    state = candidate(3, term=1, log=entries(1, 1), commit=1)
    result = step(state, grant(1, 0, 2, prevote=False))
    new = result.state
    assert new.role is Role.LEADER
    assert len(new.log) == 3
    assert new.log[-1].kind is EntryKind.NOOP and new.log[-1].term == 2
    assert new.sentinel == 3
    assert result.persist is not None and result.persist.log == new.log


def test_becoming_leader_resets_progress() -> None:
    """Match indexes start at zero for peers, next indexes just past the leader's log.

    Reference: Figure 2 (nextIndex initialized to leader last log index + 1, matchIndex to 0).
    """
    state = leader(5, term=1, log=entries(1, 1, 1), commit=3)
    assert state.next_index == (4,) * 5
    assert state.match_index == (3, 0, 0, 0, 0)


def test_a_vote_request_carries_the_candidate_log_position() -> None:
    """RequestVote carries last log index and term, and the new term after the increment.

    Reference: section 5.2 and 5.4.1; Figure 2 (RequestVote arguments).
    """
    state = precandidate(3, term=3, log=entries(1, 3), commit=1)
    result = step(state, grant(1, 0, 3, prevote=True))
    requests = [m for m in result.messages if isinstance(m, VoteRequest)]
    assert {m.dst for m in requests} == {1, 2}
    assert all(
        not m.prevote and m.term == 4 and m.last_log_index == 2 and m.last_log_term == 3
        for m in requests
    )


@pytest.mark.parametrize(
    ("cand_term", "cand_index", "log_terms", "expected"),
    [
        (2, 1, (1, 1, 1), True),  # higher last term wins even if shorter
        (1, 3, (1, 1, 1), True),  # same term, same length
        (1, 4, (1, 1, 1), True),  # same term, longer
        (1, 2, (1, 1, 1), False),  # same term, shorter
        (1, 9, (1, 2), False),  # lower last term loses even if longer
        (0, 0, (), True),  # two empty logs
    ],
)
def test_election_restriction_compares_last_term_then_length(
    cand_term: int, cand_index: int, log_terms: tuple[int, ...], expected: bool
) -> None:
    """is_up_to_date is the paper's comparison of logs.

    Reference: section 5.4.1 ("If the logs have last entries with different terms, then the log
    with the later term is more up-to-date. If the logs end with the same term, then whichever
    log is longer is more up-to-date").
    """
    assert is_up_to_date(cand_term, cand_index, entries(*log_terms)) is expected


@pytest.mark.parametrize("prevote", [False, True])
def test_a_voter_refuses_a_candidate_with_a_less_up_to_date_log(prevote: bool) -> None:
    """Both votes and prevotes apply the election restriction.

    Reference: section 5.4.1 ("the voter denies its vote if its own log is more up-to-date");
    thesis section 9.6.
    """
    state = node_with(0, 3, term=3, log=entries(1, 3), commit=1)
    result = step(state, Receive(VoteRequest(1, 0, 4, prevote, 5, 2)))
    (reply,) = result.messages
    assert isinstance(reply, VoteResponse) and not reply.granted
    assert result.state.voted_for is None


def test_the_leader_election_timer_is_stopped() -> None:
    """A leader does not start elections.

    Reference: the seed (becoming leader stops the election timer).
    """
    result = step(leader(3), ElectionTimeout())
    assert result.rejected


def test_a_single_node_cluster_elects_itself_on_one_timeout() -> None:
    """One voter is its own majority: prevote, vote and takeover happen in one step.

    Reference: section 5.2 (a majority of one).
    """
    result = step(node_with(0, 1), ElectionTimeout())
    assert result.state.role is Role.LEADER and result.state.term == 1
    assert result.persist is not None and result.persist.voted_for == 0
    after = step(result.state, ClientRequest(b"x"))
    assert after.state.commit == 1 and after.committed[0].payload == b"x"


def test_the_node_with_the_most_up_to_date_log_wins_after_a_crash() -> None:
    """A follower missing an entry cannot win; one that has it can.

    Reference: section 5.4.1 (the election restriction keeps committed entries in the leader).
    """
    cluster = sync(elect(initial_cluster(3), 0), 0)
    cluster = propose(cluster, 0, b"a")
    cluster = deliver_all(run(cluster, NodeInput(0, SendAppend(1))))
    assert cluster.nodes[0].commit == 1  # on nodes 0 and 1, not on node 2
    cluster = expire_leases(run(cluster, Crash(0)))
    cluster = deliver_all(timeout(cluster, 2))
    assert cluster.nodes[2].role is not Role.LEADER
    cluster = deliver_all(timeout(cluster, 1))
    assert cluster.nodes[1].role is Role.LEADER
