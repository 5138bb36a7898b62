"""Log replication and commitment. Reference: Raft paper sections 5.3, 5.4.2 (Figure 8)."""

from __future__ import annotations

import pytest

from impl._core import (
    AppendRequest,
    AppendResponse,
    CommittedConflict,
    CoreConfig,
    EntryKind,
    HardState,
    ProgressState,
    RaftCore,
    Role,
    StoredState,
    VoteResponse,
)

from ._harness import CLUSTER, Net, entry

VOTERS3 = ("n1", "n2", "n3")


def _leader3() -> RaftCore:
    """A 3-node leader n1 at term 1 whose NOOP-free start left nothing to persist."""
    core = RaftCore(CoreConfig("n1", VOTERS3, CLUSTER), StoredState.empty())
    core.election_timeout()
    core.receive(VoteResponse(CLUSTER, "n2", 0, True, True, 0))
    core.receive(VoteResponse(CLUSTER, "n2", 1, False, True, 1))
    assert core.role is Role.LEADER
    core.advance(core.ready())
    for peer in ("n2", "n3"):  # both answer the leader's first probe: pipelining starts
        core.receive(AppendResponse(CLUSTER, peer, 1, True, 0, 0, 0, 0))
    assert core.progress["n2"].state is ProgressState.REPLICATE
    return core


def test_replicate_and_commit_three_nodes() -> None:
    """Reference: section 5.3 — a quorum-replicated entry commits and is applied everywhere."""
    net = Net(3)
    net.elect("n1")
    idx = [net.propose(f"cmd{i}".encode()) for i in range(5)]
    net.run()
    net.heartbeat()
    for node_id in net.voters:
        assert net[node_id].commit_index == idx[-1]
        assert net.nodes[node_id].applied == [f"cmd{i}".encode() for i in range(5)]
        assert net.logs(node_id) == net.logs("n1")


def test_leader_counts_itself_only_for_durable_entries() -> None:
    """Reference: thesis 10.2.1 — appends go out in parallel with the leader's own write."""
    core = _leader3()
    index = core.propose(b"a")
    rd = core.ready()  # entries handed out, appends sent, NOT durable yet
    assert [e.index for e in rd.entries] == [index]
    assert any(isinstance(env.message, AppendRequest) for env in rd.messages)
    core.receive(AppendResponse(CLUSTER, "n2", 1, True, index, 0, 0, 0))
    assert core.commit_index == 0  # n2 alone is not a quorum of 3
    core.persisted(index, 1)
    assert core.commit_index == index
    # stale durability reports for an overwritten term are ignored
    core.persisted(index, 7)
    assert core.durable_index == index


def test_single_node_commits_after_durable() -> None:
    """Reference: section 5.3 — with one voter the leader's own disk is the quorum."""
    net = Net(1)
    net.timeout("n1")
    index = net["n1"].propose(b"a")
    assert net["n1"].commit_index < index
    net.flush("n1")  # persists, advance() reports durability
    net.flush("n1")  # hands out the committed entry
    assert net["n1"].commit_index == index
    assert net.nodes["n1"].applied == [b"a"]


def test_far_behind_follower_catches_up_in_few_round_trips() -> None:
    """Reference: section 5.3 — the follower's hint lets the leader skip whole terms."""
    net = Net(3, max_entries_per_append=64)
    net.elect("n1")
    net.isolate("n3")
    for i in range(2000):
        net.propose(str(i).encode())
    net.run()
    # a new leader term: the leader no longer knows how far n3 got
    net.restart("n1")
    net["n2"].check_quorum_timeout()
    net.elect("n1")
    net.heal()
    before = len(net.sent)
    net.heartbeat()
    to_n3 = [s for s in net.sent[before:] if s.dst == "n3" and isinstance(s.message, AppendRequest)]
    rejected = [
        s
        for s in net.sent[before:]
        if s.src == "n3" and isinstance(s.message, AppendResponse) and not s.message.success
    ]
    assert net["n3"].last_index == net["n1"].last_index
    assert len(rejected) == 1  # one probe back-off, then straight to the right index
    # 2001 entries / 64 per batch = 32 batches, plus the probe and its retry
    assert len(to_n3) <= 2001 // 64 + 3


def test_divergent_follower_backs_off_by_term() -> None:
    """Reference: section 5.3 — conflicting suffix from old terms is found in a few rounds."""
    # follower n2 holds 1000 entries of term 2 that the new leader never had
    leader_log = [entry(i, 1) for i in range(1, 11)] + [entry(i, 3) for i in range(11, 21)]
    follower_log = [entry(i, 1) for i in range(1, 11)] + [entry(i, 2) for i in range(11, 1011)]
    leader = RaftCore(
        CoreConfig("n1", VOTERS3, CLUSTER), StoredState(HardState(3, "n1", 5), None, leader_log)
    )
    follower = RaftCore(
        CoreConfig("n2", VOTERS3, CLUSTER), StoredState(HardState(2, None, 5), None, follower_log)
    )
    leader.election_timeout()
    leader.receive(VoteResponse(CLUSTER, "n2", 3, True, True, 3))
    leader.receive(VoteResponse(CLUSTER, "n3", 4, False, True, 4))
    assert leader.role is Role.LEADER
    rounds = 0
    pending = [e.message for e in leader.ready().messages if e.to == "n2"]
    while pending and rounds < 20:
        rounds += 1
        replies = []
        for msg in pending:
            follower.receive(msg)
            replies += [e.message for e in follower.ready().messages]
        pending = []
        for reply in replies:
            leader.receive(reply)
            pending += [e.message for e in leader.ready().messages if e.to == "n2"]
    assert follower.last_index == leader.last_index
    assert [follower.term_at(i) for i in range(1, 22)] == [leader.term_at(i) for i in range(1, 22)]
    assert rounds <= 4


def test_conflict_truncation_on_follower() -> None:
    """Reference: section 5.3 — delete the conflicting entry and all that follow it."""
    follower = RaftCore(
        CoreConfig("n2", VOTERS3, CLUSTER),
        StoredState(HardState(2, None, 1), None, [entry(1, 1), entry(2, 2), entry(3, 2)]),
    )
    follower.ready()
    msg = AppendRequest(CLUSTER, "n1", 3, 1, 1, (entry(2, 3, b"new"),), 2, 0)
    follower.receive(msg)
    rd = follower.ready()
    assert [(e.index, e.term) for e in rd.entries] == [(2, 3)]  # storage truncates from 2
    assert follower.last_index == 2 and follower.term_at(2) == 3
    assert follower.commit_index == 2
    (env,) = rd.messages
    assert isinstance(env.message, AppendResponse) and env.message.success
    assert env.message.match_index == 2


def test_matching_append_does_not_truncate() -> None:
    """Reference: section 5.3 — an old, already-matching append must not drop later entries."""
    follower = RaftCore(
        CoreConfig("n2", VOTERS3, CLUSTER),
        StoredState(HardState(1, None, 0), None, [entry(i, 1) for i in range(1, 6)]),
    )
    follower.receive(AppendRequest(CLUSTER, "n1", 1, 1, 1, (entry(2, 1), entry(3, 1)), 0, 0))
    assert follower.last_index == 5
    rd = follower.ready()
    assert rd.entries == ()
    (env,) = rd.messages
    assert isinstance(env.message, AppendResponse) and env.message.match_index == 3


def test_never_truncate_committed() -> None:
    """Reference: section 5.4 (State Machine Safety) — committed entries are never replaced."""
    follower = RaftCore(
        CoreConfig("n2", VOTERS3, CLUSTER),
        StoredState(HardState(2, None, 2), None, [entry(1, 1), entry(2, 2), entry(3, 2)]),
    )
    before = follower.status()
    with pytest.raises(CommittedConflict):
        follower.receive(AppendRequest(CLUSTER, "n1", 3, 1, 1, (entry(2, 3),), 3, 0))
    assert follower.status() == before
    assert follower.term_at(2) == 2


def test_figure8_old_term_entry_not_committed_by_counting() -> None:
    """Reference: section 5.4.2, Figure 8 — a leader never commits an old-term entry by count."""
    # n1 leads term 4 with an entry of term 2 at index 2 that it is re-replicating
    log = [entry(1, 1), entry(2, 2)]
    core = RaftCore(
        CoreConfig("n1", ("n1", "n2", "n3", "n4", "n5"), CLUSTER),
        StoredState(HardState(3, None, 1), None, log),
    )
    core.election_timeout()
    for peer in ("n2", "n3"):
        core.receive(VoteResponse(CLUSTER, peer, 3, True, True, 3))
    for peer in ("n2", "n3"):
        core.receive(VoteResponse(CLUSTER, peer, 4, False, True, 4))
    assert core.role is Role.LEADER and core.term == 4
    sentinel = core.last_index
    assert core.term_at(sentinel) == 4
    assert core.entries_from(sentinel)[0].kind is EntryKind.NOOP
    core.advance(core.ready())
    # a majority (n1 + n2 + n3) now holds index 2, but only up to 2: no commit
    for peer in ("n2", "n3"):
        core.receive(AppendResponse(CLUSTER, peer, 4, True, 2, 0, 0, 0))
    assert core.commit_index == 1
    # once the term-4 sentinel is on a majority, both commit together
    for peer in ("n2", "n3"):
        core.receive(AppendResponse(CLUSTER, peer, 4, True, sentinel, 0, 0, 0))
    assert core.commit_index == sentinel


def test_commit_and_match_never_go_backwards() -> None:
    """Reference: PySyncObj #166/#167 — stale acks must not regress match or commit."""
    core = _leader3()
    for i in range(5):
        core.propose(bytes([i]))
    core.advance(core.ready())
    core.receive(AppendResponse(CLUSTER, "n2", 1, True, 5, 0, 0, 0))
    assert core.commit_index == 5
    core.receive(AppendResponse(CLUSTER, "n2", 1, True, 2, 0, 0, 0))  # reordered old ack
    assert core.progress["n2"].match == 5
    assert core.commit_index == 5
    # follower side: an old heartbeat with a lower leader_commit does not lower commit
    follower = RaftCore(
        CoreConfig("n2", VOTERS3, CLUSTER),
        StoredState(HardState(1, None, 3), None, [entry(i, 1) for i in range(1, 6)]),
    )
    follower.receive(AppendRequest(CLUSTER, "n1", 1, 5, 1, (), 1, 0))
    assert follower.commit_index == 3


def test_follower_commit_bounded_by_last_new_entry() -> None:
    """Reference: Figure 2 — commitIndex = min(leaderCommit, index of last new entry)."""
    follower = RaftCore(
        CoreConfig("n2", VOTERS3, CLUSTER),
        StoredState(HardState(1, None, 0), None, [entry(i, 1) for i in range(1, 6)]),
    )
    # prev=2 matches; entries 3..3; leader_commit 9 — entries 4, 5 are not verified
    follower.receive(AppendRequest(CLUSTER, "n1", 2, 2, 1, (entry(3, 1),), 9, 0))
    assert follower.commit_index == 3


def test_pipeline_respects_inflight_limit_and_batches() -> None:
    """Flow control: at most max_inflight_appends unacknowledged appends per follower."""
    net = Net(3, max_inflight_appends=2, max_entries_per_append=10)
    net.elect("n1")
    leader = net["n1"]
    leader.heartbeat_timeout()
    net.run()
    assert leader.progress["n2"].state is ProgressState.REPLICATE
    net.drop_all()
    net.isolate("n1")
    for i in range(100):
        leader.propose(bytes([i]))
    rd = net.flush("n1")
    assert rd is not None
    appends = [e for e in rd.messages if e.to == "n2" and isinstance(e.message, AppendRequest)]
    assert len(appends) == 2  # paused after two in flight
    assert leader.progress["n2"].inflight == 2
    net.heal()
    net.queue.clear()
    net.heartbeat()  # stalled pipeline is re-probed and then catches up in batches of 10
    assert net["n2"].last_index == leader.last_index
    sizes = [len(s.message.entries) for s in net.sent if isinstance(s.message, AppendRequest)]
    assert max(sizes) == 10


def test_bytes_limit_per_append() -> None:
    """Flow control: a batch stops at max_bytes_per_append (but always carries one entry)."""
    net = Net(3, max_bytes_per_append=250)
    net.elect("n1")
    net.isolate("n1")
    for _ in range(5):
        net["n1"].propose(b"x" * 100)
    net.heal()
    net.queue.clear()
    net.heartbeat()
    net.heartbeat()
    batches = [
        len(s.message.entries)
        for s in net.sent
        if isinstance(s.message, AppendRequest) and s.message.entries and s.dst == "n2"
    ]
    assert batches and max(batches) <= 2
    assert net["n2"].last_index == net["n1"].last_index


def test_lost_appends_are_retried_after_a_heartbeat() -> None:
    """Raft retries indefinitely (section 5.3); a dropped append is resent."""
    net = Net(3)
    net.elect("n1")
    net.heartbeat()
    net.filter = lambda s: not (s.dst == "n3" and isinstance(s.message, AppendRequest))
    net.propose(b"a")
    net.run()
    assert net["n3"].last_index < net["n1"].last_index
    net.filter = None
    net.heartbeat()
    net.heartbeat()
    assert net["n3"].last_index == net["n1"].last_index
    assert net.nodes["n3"].applied == [b"a"]
