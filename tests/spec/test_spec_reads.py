"""Linearizable reads by ReadIndex (thesis section 6.4; the seed's verify authority)."""

from __future__ import annotations

from spec import (
    AppendRequest,
    AppendResponse,
    ClusterState,
    Crash,
    Deliver,
    Drop,
    ElectionTimeout,
    HeartbeatDue,
    Message,
    NodeInput,
    ReadAnswer,
    ReadRecord,
    ReadRequest,
    Receive,
    SendAppend,
    cluster_step,
    initial_cluster,
    step,
)
from tests.spec._helpers import (
    act,
    deliver,
    deliver_all,
    drop_blocked,
    elect,
    expire_leases,
    feed,
    in_flight,
    leader,
    node_with,
    propose,
    run,
    step_node,
    sync,
)


def _three_with_leader() -> ClusterState:
    return sync(propose(sync(elect(initial_cluster(3), 0), 0), 0, b"w"), 0)


def test_a_read_waits_for_a_quorum_to_ack_a_later_heartbeat() -> None:
    """The read is released only when a majority (leader included) acks a heartbeat whose ctx
    was assigned after the read arrived, and with the commit index at arrival.

    Reference: thesis section 6.4 (ReadIndex steps 1-3); the seed, behaviour 5.
    """
    cluster = _three_with_leader()
    cluster, arrived = step_node(cluster, NodeInput(0, ReadRequest(7)))
    assert arrived.reads == ()
    cluster, sent = step_node(cluster, NodeInput(0, HeartbeatDue()))
    assert all(isinstance(m, AppendRequest) and m.read_ctx == 1 for m in sent.messages)
    cluster = deliver(cluster, (0, 1))  # follower 1 gets the heartbeat ...
    reply = in_flight(cluster, 1, 0)
    result = act(cluster, Deliver(reply))  # ... and its ack makes two of three
    assert result.nodes[0].pending_reads == ()
    assert result.reads == (ReadRecord(0, 7, must_cover=1, answered=1),)


def test_the_read_answer_is_the_commit_index_at_arrival() -> None:
    """ReadAnswer names the index the state machine must reach before answering.

    Reference: thesis section 6.4 ("the leader records its current commit index in a local
    variable readIndex").
    """
    cluster = _three_with_leader()
    cluster, _ = step_node(cluster, NodeInput(0, ReadRequest(1)))
    cluster = act(cluster, NodeInput(0, HeartbeatDue()))
    cluster = deliver(cluster, (0, 1))
    _, released = step_node_deliver(cluster, in_flight(cluster, 1, 0))
    assert released == (ReadAnswer(1, 1),)


def step_node_deliver(
    cluster: ClusterState, message: Message
) -> tuple[ClusterState, tuple[ReadAnswer, ...]]:
    """Delivers one message and returns the reads the receiving node released."""
    result = cluster_step(cluster, Deliver(message))
    assert result.rejected is None and result.node_step is not None
    return result.state, result.node_step.reads


def test_a_heartbeat_sent_before_the_read_does_not_confirm_it() -> None:
    """Acks of a heartbeat that left before the read arrived prove nothing about leadership
    after the read arrived (etcd#20418); a later heartbeat does.

    Reference: thesis section 6.4 (the heartbeat round must start after the read).
    """
    cluster = act(_three_with_leader(), NodeInput(0, HeartbeatDue()))
    cluster = act(cluster, NodeInput(0, ReadRequest(3)))
    cluster = deliver_all(cluster)
    assert [r.read_id for r in cluster.nodes[0].pending_reads] == [3]
    assert cluster.reads[0].answered is None
    cluster = deliver_all(act(cluster, NodeInput(0, HeartbeatDue())))
    assert cluster.nodes[0].pending_reads == () and cluster.reads[0].answered == 1


def test_acks_from_another_term_do_not_confirm_a_read() -> None:
    """Only replies in the leader's current term count as confirmation.

    Reference: thesis section 6.4 (confirmation of leadership in the current term).
    """
    state = feed(leader(3, term=1), ReadRequest(1))
    old = AppendResponse(1, 0, 1, True, 0, 0, read_ctx=5)
    result = step(state, Receive(old))
    assert result.reads == () and result.state == state


def test_a_new_leader_answers_reads_only_after_its_sentinel_commits() -> None:
    """A new leader does not know what its predecessor committed until its own-term entry
    commits; a read waits for that even when a quorum has confirmed leadership, and covers the
    predecessor's commit.

    Reference: thesis section 6.4 ("if the leader has not yet marked an entry from its current
    term committed, it waits until it has"); the seed, behaviour 4 and 5.
    """
    cluster = sync(elect(initial_cluster(3), 0), 0)
    cluster = act(propose(cluster, 0, b"w"), NodeInput(0, SendAppend(1)))
    cluster = deliver(cluster, (0, 1), (1, 0))  # committed on 0 (with 1); 1 does not know
    assert cluster.nodes[0].commit == 1 and cluster.nodes[1].commit == 0
    cluster = drop_blocked(act(cluster, Crash(0)))
    cluster = elect(expire_leases(cluster), 1)
    new = cluster.nodes[1]
    assert new.commit == 0 and new.sentinel == 2
    cluster = act(cluster, NodeInput(1, ReadRequest(9)))
    assert cluster.reads == (ReadRecord(1, 9, must_cover=1),)
    cluster = heartbeat_only(cluster, 1)
    assert cluster.nodes[1].pending_reads != ()  # confirmed, but the sentinel is not committed
    cluster = sync(cluster, 1)
    assert cluster.nodes[1].commit == 2
    assert cluster.reads == (ReadRecord(1, 9, must_cover=1, answered=2),)


def heartbeat_only(cluster: ClusterState, lead: int) -> ClusterState:
    """Sends one heartbeat round and delivers it and the replies, nothing more."""
    return deliver_all(act(cluster, NodeInput(lead, HeartbeatDue())))


def test_a_deposed_leader_never_answers_its_pending_reads() -> None:
    """Stepping down drops pending reads: a node that is not leader cannot confirm them.

    Reference: thesis section 6.4 (reads must be served by a current leader).
    """
    state = feed(leader(3, term=1), ReadRequest(1))
    deposed = feed(state, Receive(AppendResponse(1, 0, 9, False, 0, 0, read_ctx=1)))
    assert deposed.pending_reads == ()


def test_a_single_node_leader_answers_reads_at_once() -> None:
    """A one-node cluster is its own quorum.

    Reference: thesis section 6.4 (a single-server cluster needs no heartbeat round).
    """
    lead = feed(node_with(0, 1), ElectionTimeout())
    result = step(lead, ReadRequest(4))
    assert result.reads == (ReadAnswer(4, 0),)


def test_reads_are_refused_off_the_leader_and_ids_are_unique() -> None:
    """Followers refuse reads; a pending id cannot be reused.

    Reference: thesis section 6.4 (only the leader runs ReadIndex).
    """
    assert step(node_with(1), ReadRequest(1)).rejected
    state = feed(leader(3, term=1), ReadRequest(1))
    assert step(state, ReadRequest(1)).rejected


def test_dropped_acks_keep_the_read_waiting() -> None:
    """If every follower's ack is lost, the read stays pending.

    Reference: thesis section 6.4 (a majority must acknowledge).
    """
    cluster = act(_three_with_leader(), NodeInput(0, ReadRequest(1)))
    cluster = act(cluster, NodeInput(0, HeartbeatDue()))
    cluster = deliver(cluster, (0, 1), (0, 2))
    for src in (1, 2):
        cluster = run(cluster, Drop(in_flight(cluster, src, 0)))
    assert cluster.nodes[0].pending_reads != () and cluster.reads[0].answered is None


def test_a_stale_term_rejection_echoes_no_read_ctx() -> None:
    """Reference: thesis section 6.4 and etcd#20418: a confirmation must be of this term.

    A follower in term 3 rejects a term-1 append with its own term. Were the term-1 read ctx
    echoed, the sender, if it now leads term 3 with a restarted ctx counter, would count that
    old reply as confirming a read that arrived after it was sent.
    """
    follower = node_with(1, 3, term=3)
    stale = AppendRequest(
        0, 1, 1, prev_index=0, prev_term=0, entries=(), leader_commit=0, read_ctx=5
    )
    result = step(follower, Receive(stale))
    assert result.messages == (
        AppendResponse(1, 0, 3, success=False, match_index=0, hint_index=0, read_ctx=0),
    )
