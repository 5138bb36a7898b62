"""Leadership transfer by TimeoutNow.

Reference: Raft thesis section 3.10 (the leader stops accepting client requests, catches the
target up, sends TimeoutNow; the target campaigns at once; the transfer is aborted after an
election timeout), section 4.2.3 and 9.6 (the target's vote requests may bypass leader
stickiness; the election restriction still holds).
"""

from __future__ import annotations

from spec import (
    AddLearner,
    AppendRequest,
    CheckQuorum,
    ClientRequest,
    ClusterState,
    Deliver,
    ElectionTimeout,
    NodeInput,
    Partition,
    ReadRequest,
    Role,
    TransferLeadership,
    VoteRequest,
    initial_cluster,
    step,
)
from tests.spec._helpers import act, deliver_all, elect, propose, sync


def _led() -> ClusterState:
    cluster = elect(initial_cluster(3), 0)
    return sync(propose(cluster, 0, b"a"), 0)


def test_transfer_to_caught_up_target_sends_timeout_now_at_once() -> None:
    """A caught-up target gets TimeoutNow right away and wins the next term (thesis 3.10)."""
    cluster = act(_led(), NodeInput(0, TransferLeadership(1)))
    assert cluster.nodes[0].transfer_target == 1
    (sent,) = cluster.network
    assert isinstance(sent, AppendRequest) and sent.timeout_now and sent.dst == 1
    cluster = act(cluster, Deliver(sent))
    target = cluster.nodes[1]
    assert target.role is Role.CANDIDATE and target.term == 2  # no prevote round
    asks = [m for m in cluster.network if isinstance(m, VoteRequest)]
    assert asks and all(m.transfer and not m.prevote for m in asks)
    cluster = deliver_all(cluster)
    assert cluster.nodes[1].role is Role.LEADER and cluster.nodes[1].term == 2
    assert cluster.nodes[0].role is Role.FOLLOWER
    assert cluster.nodes[0].transfer_target is None


def test_transfer_catches_a_lagging_target_up_first() -> None:
    """TimeoutNow waits until the target's match index reaches the leader's log (3.10)."""
    cluster = act(_led(), Partition((frozenset({0, 2}), frozenset({1}))))
    cluster = sync(propose(cluster, 0, b"b"), 0)
    cluster = act(cluster, Partition((frozenset({0, 1, 2}),)))
    cluster = act(cluster, NodeInput(0, TransferLeadership(1)))
    (catch_up,) = cluster.network
    assert isinstance(catch_up, AppendRequest) and not catch_up.timeout_now
    assert catch_up.entries  # an ordinary append carrying what the target lacks
    cluster = deliver_all(cluster)
    assert cluster.nodes[1].role is Role.LEADER and cluster.nodes[1].term == 2
    assert cluster.nodes[1].log[: len(cluster.nodes[0].log)] == cluster.nodes[0].log


def test_leader_refuses_client_requests_while_transferring() -> None:
    """The leader stops accepting client requests during the transfer (thesis 3.10)."""
    cluster = act(_led(), NodeInput(0, TransferLeadership(1)))
    leader = cluster.nodes[0]
    result = step(leader, ClientRequest(b"x"))
    assert result.rejected is not None and "transfer" in result.rejected
    assert result.state is leader and not result.messages
    assert step(leader, ReadRequest(1)).enabled  # reads are still served


def test_election_timeout_on_the_leader_aborts_the_transfer() -> None:
    """If the target has not taken over within an election timeout, abort (thesis 3.10)."""
    cluster = act(_led(), Partition((frozenset({0, 2}), frozenset({1}))))
    cluster = act(cluster, NodeInput(0, TransferLeadership(1)))
    cluster = act(cluster, NodeInput(0, ElectionTimeout()))
    leader = cluster.nodes[0]
    assert leader.role is Role.LEADER and leader.transfer_target is None
    assert step(leader, ClientRequest(b"x")).enabled
    refused = step(leader, ElectionTimeout())
    assert refused.rejected is not None  # without a transfer the timer is stopped again


def test_check_quorum_on_the_leader_aborts_the_transfer() -> None:
    """CheckQuorum is an election timeout on the leader: it ends the transfer too (3.10)."""
    cluster = act(_led(), NodeInput(0, TransferLeadership(2)))
    cluster = act(cluster, NodeInput(0, CheckQuorum()))
    assert cluster.nodes[0].transfer_target is None


def test_transfer_refusals() -> None:
    """Only a leader transfers, to another voter, one transfer at a time (thesis 3.10)."""
    cluster = _led()
    follower, leader = cluster.nodes[1], cluster.nodes[0]
    cases = [
        (follower, TransferLeadership(0), "only the leader"),
        (leader, TransferLeadership(0), "already the leader"),
        (leader, TransferLeadership(7), "not a voter"),
    ]
    moving = step(leader, TransferLeadership(1)).state
    cases.append((moving, TransferLeadership(2), "in progress"))
    for state, event, reason in cases:
        result = step(state, event)
        assert result.rejected is not None and reason in result.rejected
        assert result.state is state and not result.messages


def test_transfer_to_a_learner_is_refused() -> None:
    """A learner cannot lead: the target must be a voter (thesis 3.10, 4.2.1)."""
    cluster = elect(initial_cluster(4, (0, 1, 2)), 0)
    cluster = sync(propose(cluster, 0, b"a"), 0)
    cluster = sync(act(cluster, NodeInput(0, AddLearner(3))), 0)
    result = step(cluster.nodes[0], TransferLeadership(3))
    assert result.rejected is not None and "not a voter" in result.rejected


def test_stale_timeout_now_cannot_elect_a_target_behind_the_log() -> None:
    """A delayed TimeoutNow makes the target campaign, but voters refuse its stale log.

    The election restriction (section 5.4.1) is never bypassed by a transfer (thesis 3.10).
    """
    cluster = act(_led(), Partition((frozenset({0, 1}), frozenset({2}))))
    cluster = act(cluster, NodeInput(0, TransferLeadership(2)))
    cluster = act(cluster, NodeInput(0, CheckQuorum()))  # abort (node 1 acked recently)
    cluster = sync(propose(cluster, 0, b"b"), 0)  # committed on 0 and 1 only
    assert cluster.nodes[0].commit == 2
    cluster = act(cluster, Partition((frozenset({0, 1, 2}),)))
    cluster = deliver_all(cluster)
    target = cluster.nodes[2]
    assert target.term == 2 and target.role is not Role.LEADER
    assert all(n.role is not Role.LEADER or n.term != 2 for n in cluster.nodes)
