"""Elections with prevote. Reference: Raft paper section 5.2, thesis 9.6 (prevote)."""

from __future__ import annotations

import pytest

from impl._core import (
    CoreConfig,
    HardState,
    RaftCore,
    Role,
    StoredState,
    TimerCommand,
    VoteRequest,
    VoteResponse,
)

from ._harness import CLUSTER, Net, entry, role_of


def test_single_node_elects_itself_immediately() -> None:
    """Reference: section 5.2 — a quorum of one is the node itself."""
    net = Net(1)
    net.timeout("n1")
    core = net["n1"]
    assert core.role is Role.LEADER
    assert core.term == 1 and core.voted_for == "n1"
    assert net.nodes["n1"].storage.load().hard_state.term == 1
    assert net.nodes["n1"].timer is TimerCommand.STOP


@pytest.mark.parametrize("size", [3, 5])
def test_election_with_prevote(size: int) -> None:
    """Reference: section 5.2 and thesis 9.6 — prevote round, then one real round."""
    net = Net(size)
    net.elect("n1")
    assert net.leaders() == ["n1"]
    for node_id in net.voters:
        assert net[node_id].term == 1
        assert net[node_id].leader_id == "n1"
    prevotes = [s for s in net.sent if isinstance(s.message, VoteRequest) and s.message.prevote]
    votes = [s for s in net.sent if isinstance(s.message, VoteRequest) and not s.message.prevote]
    assert len(prevotes) == size - 1 and all(s.message.term == 0 for s in prevotes)
    assert len(votes) == size - 1 and all(s.message.term == 1 for s in votes)
    # the self vote was durable before the VoteRequests left (same Ready, stored first)
    assert net.nodes["n1"].storage.load().hard_state.vote == "n1"


def _grant_only_from(net: Net, allowed: set[str]) -> None:
    """Only nodes in ``allowed`` can talk to the candidate n1."""
    for other in net.voters:
        if other != "n1" and other not in allowed:
            net.cut("n1", other)


@pytest.mark.parametrize(
    ("size", "reachable", "wins"),
    [
        (2, set(), False),  # the seed's bug: 2 nodes elect with no vote at all
        (2, {"n2"}, True),
        (4, {"n2"}, False),  # the seed's bug: 4 nodes elect with 2 votes
        (4, {"n2", "n3"}, True),
        (5, {"n2"}, False),
        (5, {"n2", "n3"}, True),
    ],
)
def test_true_majority_needed(size: int, reachable: set[str], wins: bool) -> None:
    """Reference: section 5.2 — a candidate needs votes from a majority of the full cluster."""
    net = Net(size)
    _grant_only_from(net, reachable)
    net.timeout("n1")
    net.run()
    assert (net["n1"].role is Role.LEADER) is wins


def test_prevote_changes_no_term_or_vote() -> None:
    """Reference: thesis 9.6 — prevote touches neither the asker's nor the voters' state."""
    net = Net(3)
    net.isolate("n1")
    for _ in range(5):
        net.timeout("n1")
        net.run()
    assert net["n1"].role is Role.PRECANDIDATE
    assert net["n1"].term == 0 and net["n1"].voted_for is None
    # voters that only see prevote requests keep their state too
    net2 = Net(3)
    net2.cut("n1", "n3")
    net2.filter = lambda s: not (isinstance(s.message, VoteRequest) and not s.message.prevote)
    net2.timeout("n1")
    net2.run()
    for node_id in ("n2", "n3"):
        assert net2[node_id].term == 0 and net2[node_id].voted_for is None


def test_partitioned_node_does_not_inflate_term_or_disrupt_leader() -> None:
    """Reference: thesis 9.6 — a rejoining node must not force the leader to step down."""
    net = Net(3)
    net.elect("n1")
    net.propose(b"a")
    net.heartbeat()
    net.isolate("n3")
    for _ in range(10):
        net.timeout("n3")
        net.run()
    assert net["n3"].term == 1
    net.heal()
    net.heartbeat()
    net.timeout("n3")  # even a timeout right after rejoining does not disrupt
    net.run()
    assert net["n1"].role is Role.LEADER and net["n1"].term == 1
    assert net["n3"].role is Role.FOLLOWER and net["n3"].term == 1
    net.heartbeat()
    assert net["n3"].leader_id == "n1"
    assert net["n3"].commit_index == net["n1"].commit_index


def test_vote_once_per_term() -> None:
    """Reference: section 5.2 — each server votes for at most one candidate per term."""
    core = RaftCore(CoreConfig("n1", ("n1", "n2", "n3"), CLUSTER), StoredState.empty())
    core.receive(VoteRequest(CLUSTER, "n2", 1, False, 0, 0))
    first = core.ready()
    assert first.hard_state == HardState(1, "n2", 0)
    assert first.timer is TimerCommand.RESET
    core.receive(VoteRequest(CLUSTER, "n3", 1, False, 0, 0))
    second = core.ready()
    (env,) = second.messages
    assert isinstance(env.message, VoteResponse) and not env.message.granted
    assert core.voted_for == "n2"
    # a repeated request from the same candidate is granted again (idempotent)
    core.receive(VoteRequest(CLUSTER, "n2", 1, False, 0, 0))
    (env,) = core.ready().messages
    assert isinstance(env.message, VoteResponse) and env.message.granted


def _core_with_log(terms: list[int], term: int) -> RaftCore:
    entries = [entry(i + 1, t) for i, t in enumerate(terms)]
    return RaftCore(
        CoreConfig("n1", ("n1", "n2", "n3"), CLUSTER),
        StoredState(HardState(term, None, 0), None, entries),
    )


@pytest.mark.parametrize(
    ("last_index", "last_term", "granted"),
    [
        (2, 2, True),  # same last entry
        (3, 2, True),  # longer with the same last term
        (1, 2, False),  # shorter with the same last term
        (1, 3, True),  # higher last term wins even if shorter
        (5, 1, False),  # lower last term loses even if longer
    ],
)
def test_election_restriction(last_index: int, last_term: int, granted: bool) -> None:
    """Reference: section 5.4.1 — vote only for candidates at least as up to date."""
    for prevote in (True, False):
        core = _core_with_log([1, 2], term=2)
        core.receive(VoteRequest(CLUSTER, "n2", 3, prevote, last_index, last_term))
        (env,) = core.ready().messages
        assert isinstance(env.message, VoteResponse)
        assert env.message.granted is granted
        assert env.message.prevote is prevote


def test_lower_term_prevote_gets_rejection_with_our_term() -> None:
    """Reference: etcd#8501 — answer a lower-term prevote so the asker learns our term."""
    core = _core_with_log([1, 2], term=4)
    core.receive(VoteRequest(CLUSTER, "n2", 3, True, 9, 3))
    (env,) = core.ready().messages
    msg = env.message
    assert isinstance(msg, VoteResponse)
    assert not msg.granted and msg.term == 4 and msg.request_term == 3
    assert core.term == 4


def test_higher_term_prevote_request_changes_nothing() -> None:
    """Reference: thesis 9.6 — a prevote request never makes the receiver adopt its term."""
    core = _core_with_log([1], term=1)
    core.receive(VoteRequest(CLUSTER, "n2", 7, True, 1, 1))
    rd = core.ready()
    assert rd.hard_state is None and rd.timer is None
    assert core.term == 1 and core.voted_for is None


def test_vote_counts_only_for_the_current_request_term() -> None:
    """Reference: etcd#8243 — a granted vote for another term does not count."""
    net = Net(3)
    net.isolate("n1")
    net.timeout("n1")  # precandidate at term 0
    net.drop_all()
    core = net["n1"]
    core.receive(VoteResponse(CLUSTER, "n2", 0, True, True, 0))
    core.receive(VoteResponse(CLUSTER, "n3", 0, True, True, 0))  # prevote quorum -> term 1
    assert core.role is Role.CANDIDATE and core.term == 1
    # grants for a stale request term are ignored
    core.receive(VoteResponse(CLUSTER, "n2", 0, False, True, 0))  # real vote for term 0
    core.receive(VoteResponse(CLUSTER, "n2", 0, True, True, 0))  # a prevote, not a vote
    assert core.role is Role.CANDIDATE
    core.receive(VoteResponse(CLUSTER, "n2", 1, False, True, 1))
    assert role_of(core) is Role.LEADER


def test_quorum_impossible_returns_to_follower() -> None:
    """Reference: the seed — counting stops once a quorum can no longer be reached."""
    net = Net(3)
    net.isolate("n1")
    net.timeout("n1")
    net.drop_all()
    core = net["n1"]
    core.receive(VoteResponse(CLUSTER, "n2", 0, True, False, 0))
    assert core.role is Role.PRECANDIDATE  # one rejection: a quorum is still possible
    core.receive(VoteResponse(CLUSTER, "n3", 0, True, False, 0))
    assert role_of(core) is Role.FOLLOWER and core.term == 0
    assert core.ready().timer is None  # the timer armed by the timeout keeps running


@pytest.mark.parametrize("prevote", [True, False])
def test_higher_term_in_vote_reply_steps_down(prevote: bool) -> None:
    """Reference: section 5.1 and the seed's term marker — any reply with a higher term."""
    net = Net(3)
    net.isolate("n1")
    net.timeout("n1")
    if not prevote:
        net.drop_all()
        net["n1"].receive(VoteResponse(CLUSTER, "n2", 0, True, True, 0))
    net.drop_all()
    core = net["n1"]
    request_term = core.term
    core.receive(VoteResponse(CLUSTER, "n2", 5, prevote, False, request_term))
    assert core.role is Role.FOLLOWER and core.term == 5 and core.voted_for is None
    assert core.ready().hard_state == HardState(5, None, 0)


def test_leader_steps_down_on_higher_term_append_response() -> None:
    """Reference: section 5.1 — a leader that sees a higher term in a reply follows."""
    from impl._core import AppendResponse

    net = Net(3)
    net.elect("n1")
    net["n1"].receive(AppendResponse(CLUSTER, "n2", 9, False, 0, 0, 0, 0))
    rd = net["n1"].ready()
    assert net["n1"].role is Role.FOLLOWER and net["n1"].term == 9
    assert rd.role_changed and rd.timer is TimerCommand.RESET


def test_new_election_after_leader_crash() -> None:
    """Reference: section 5.2 — followers elect a new leader at a higher term."""
    net = Net(3)
    net.elect("n1")
    net.propose(b"a")
    net.heartbeat()
    net.down.add("n1")
    for node_id in ("n2", "n3"):
        net["n2" if node_id == "n2" else "n3"].check_quorum_timeout()  # lease expires
    net.elect("n2")
    assert net["n2"].term == 2
    assert net["n3"].leader_id == "n2"


def test_timeout_now_skips_prevote() -> None:
    """Reference: thesis 3.10 — leadership transfer via TimeoutNow."""
    net = Net(3)
    net.elect("n1")
    net.propose(b"a")
    net.run()
    net["n1"].transfer_leadership("n2")
    net.run()
    assert net.leader() == "n2" and net["n2"].term == 2
