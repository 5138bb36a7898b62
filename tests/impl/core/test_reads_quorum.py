"""ReadIndex, check-quorum and leader stickiness. Reference: Raft thesis 6.4, 6.2, 9.6."""

from __future__ import annotations

from impl._core import (
    AppendRequest,
    AppendResponse,
    CoreConfig,
    HardState,
    NotLeader,
    RaftCore,
    ReadState,
    Role,
    StoredState,
    TimerCommand,
    VoteRequest,
    VoteResponse,
)

from ._harness import CLUSTER, Net, entry, role_of

VOTERS3 = ("n1", "n2", "n3")


def test_read_released_after_quorum_heartbeat() -> None:
    """Reference: thesis 6.4 — a read waits for a quorum to confirm a later heartbeat."""
    net = Net(3)
    net.elect("n1")
    net.propose(b"a")
    net.run()
    leader = net["n1"]
    leader.read_index(7)
    rd = net.flush("n1")
    assert rd is not None and rd.reads == ()
    ctxs = {e.message.read_ctx for e in rd.messages if isinstance(e.message, AppendRequest)}
    assert ctxs == {1}
    net.run()
    assert net.nodes["n1"].reads == [ReadState(7, leader.commit_index)]


def test_read_needs_heartbeat_sent_after_it_arrived() -> None:
    """Reference: etcd#20418 — an ack of an older ctx must not release a newer read."""
    net = Net(3)
    net.elect("n1")
    net.run()
    leader = net["n1"]
    leader.read_index(1)
    net.flush("n1")
    old_round = list(net.queue)
    net.queue.clear()
    leader.read_index(2)  # round for ctx 1 is in flight: no new heartbeat yet
    rd = net.flush("n1")
    assert rd is None or not rd.messages
    net.queue.extend(old_round)
    net.run()
    # read 1 was released by the ctx-1 round; read 2 by the follow-up round
    assert [r.request_id for r in net.nodes["n1"].reads] == [1, 2]
    ctxs = [s.message.read_ctx for s in net.sent if isinstance(s.message, AppendRequest)]
    assert 2 in ctxs
    # and an ack of ctx 1 alone never released read 2: check with a manual leader
    core = _manual_leader()
    core.read_index(10)
    core.ready()
    core.read_index(11)
    core.ready()
    core.receive(AppendResponse(CLUSTER, "n2", 1, True, 0, 0, 0, 1))
    assert [r.request_id for r in core.ready().reads] == [10]
    core.receive(AppendResponse(CLUSTER, "n2", 1, True, 0, 0, 0, 2))
    assert [r.request_id for r in core.ready().reads] == [11]


def _manual_leader() -> RaftCore:
    core = RaftCore(CoreConfig("n1", VOTERS3, CLUSTER), StoredState.empty())
    core.election_timeout()
    core.receive(VoteResponse(CLUSTER, "n2", 0, True, True, 0))
    core.receive(VoteResponse(CLUSTER, "n2", 1, False, True, 1))
    core.advance(core.ready())
    return core


def test_read_waits_for_sentinel_commit() -> None:
    """Reference: thesis 6.4 step 1 — no read before an entry of the leader's term commits."""
    # n1 has an uncommitted entry from term 1, so becoming leader appends a NOOP sentinel
    core = RaftCore(
        CoreConfig("n1", VOTERS3, CLUSTER),
        StoredState(HardState(1, None, 0), None, [entry(1, 1)]),
    )
    core.election_timeout()
    core.receive(VoteResponse(CLUSTER, "n2", 1, True, True, 1))
    core.receive(VoteResponse(CLUSTER, "n2", 2, False, True, 2))
    assert core.role is Role.LEADER and core.last_index == 2
    core.advance(core.ready())
    core.read_index(5)
    core.ready()
    core.receive(AppendResponse(CLUSTER, "n2", 2, False, 1, 0, 0, 1))  # confirms, no match
    core.receive(AppendResponse(CLUSTER, "n3", 2, False, 1, 0, 0, 1))
    assert core.ready().reads == ()  # quorum confirmed, but the sentinel is not committed
    core.receive(AppendResponse(CLUSTER, "n2", 2, True, 2, 0, 0, 1))
    assert core.commit_index == 2
    # read index is the sentinel, not the stale commit index (0) seen at arrival
    assert core.ready().reads == (ReadState(5, 2),)


def test_single_node_read_is_immediate() -> None:
    """Reference: thesis 6.4 — a one-node cluster is its own quorum."""
    net = Net(1)
    net.timeout("n1")
    net.flush_all()
    net["n1"].read_index(3)
    net.flush_all()
    assert net.nodes["n1"].reads == [ReadState(3, 0)]


def test_reads_batch_into_one_round() -> None:
    """Many reads share one heartbeat round."""
    net = Net(3)
    net.elect("n1")
    net.run()
    before = len(net.sent)
    for i in range(50):
        net["n1"].read_index(i)
    net.run()
    assert [r.request_id for r in net.nodes["n1"].reads] == list(range(50))
    appends = [s for s in net.sent[before:] if isinstance(s.message, AppendRequest)]
    assert len(appends) <= 4  # one round (2 followers) plus at most one follow-up round


def test_read_on_follower_raises_not_leader_with_hint() -> None:
    net = Net(3)
    net.elect("n1")
    try:
        net["n2"].read_index(1)
    except NotLeader as exc:
        assert exc.leader_hint == "n1"
    else:
        raise AssertionError("follower accepted a read")
    try:
        net["n2"].propose(b"x")
    except NotLeader as exc:
        assert exc.leader_hint == "n1"
    else:
        raise AssertionError("follower accepted a proposal")


def test_pending_reads_aborted_on_step_down() -> None:
    net = Net(3)
    net.elect("n1")
    net.run()
    net.isolate("n1")
    net["n1"].read_index(9)
    net.run()
    net["n1"].check_quorum_timeout()
    net["n1"].check_quorum_timeout()
    net.flush("n1")
    assert net["n1"].role is Role.FOLLOWER
    assert net.nodes["n1"].aborted == [9]


def test_check_quorum_step_down() -> None:
    """Reference: thesis 6.2 — a leader that cannot reach a quorum steps down."""
    net = Net(3)
    net.elect("n1")
    net.heartbeat()
    net["n1"].check_quorum_timeout()  # peers were active since election
    assert net["n1"].role is Role.LEADER
    net.isolate("n1")
    net.heartbeat("n1")
    net["n1"].check_quorum_timeout()
    net.flush("n1")
    assert role_of(net["n1"]) is Role.FOLLOWER and net["n1"].term == 1
    assert net.nodes["n1"].timer is TimerCommand.RESET


def test_check_quorum_keeps_leader_with_one_live_peer() -> None:
    net = Net(3)
    net.elect("n1")
    net.cut("n1", "n3")
    for _ in range(3):
        net.heartbeat("n1")
        net["n1"].check_quorum_timeout()
    assert net["n1"].role is Role.LEADER


def test_leader_stickiness_rejects_prevote() -> None:
    """Reference: thesis 9.6 — a follower that hears its leader ignores prevotes."""
    net = Net(3)
    net.elect("n1")
    net.heartbeat()
    n2 = net["n2"]
    n2.receive(VoteRequest(CLUSTER, "n3", 1, True, 99, 1))
    (env,) = n2.ready().messages
    assert isinstance(env.message, VoteResponse) and not env.message.granted
    n2.check_quorum_timeout()  # lease ends: no leader heard since
    n2.receive(VoteRequest(CLUSTER, "n3", 1, True, 99, 1))
    (env,) = n2.ready().messages
    assert isinstance(env.message, VoteResponse) and env.message.granted
    assert n2.term == 1 and n2.voted_for == "n1"  # the prevote changed nothing


def test_precandidate_forgets_leader() -> None:
    """Reference: etcd PR #8334 — becoming pre-candidate forgets the leader."""
    net = Net(3)
    net.elect("n1")
    net.isolate("n2")
    net.timeout("n2")
    assert net["n2"].role is Role.PRECANDIDATE and net["n2"].leader_id is None
