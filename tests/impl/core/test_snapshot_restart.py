"""Snapshots and restarts. Reference: Raft paper section 7 and Figure 2 (persistent state)."""

from __future__ import annotations

import pytest

from impl._core import (
    AppendRequest,
    CoreConfig,
    HardState,
    ProgressState,
    RaftCore,
    Role,
    SnapshotMeta,
    SnapshotRequest,
    SnapshotResponse,
    StoredState,
)

from ._harness import CLUSTER, Net, entry


def test_snapshot_taken_compacts_and_keeps_base_lookups() -> None:
    """Reference: section 7 — the snapshot's last index and term stay for the next check."""
    net = Net(3)
    net.elect("n1")
    for i in range(10):
        net.propose(bytes([i]))
    net.run()
    net.heartbeat()
    meta = net.take_snapshot("n1")
    core = net["n1"]
    assert meta.index == 10 and core.first_index == 11
    assert core.term_at(10) == meta.term and core.term_at(9) is None
    net.propose(b"after")
    net.run()
    net.heartbeat()
    assert net.nodes["n2"].applied[-1] == b"after"


def test_snapshot_taken_refuses_unapplied_or_mismatched() -> None:
    net = Net(1)
    net.timeout("n1")
    net["n1"].propose(b"a")
    with pytest.raises(ValueError, match="applied"):
        net["n1"].snapshot_taken(SnapshotMeta(1, 1, ("n1",)))
    net.flush_all()
    with pytest.raises(ValueError, match="does not match"):
        net["n1"].snapshot_taken(SnapshotMeta(1, 9, ("n1",)))


def test_install_snapshot_on_follower_behind_compacted_log() -> None:
    """Reference: section 7 — a follower behind the leader's first index gets a snapshot."""
    net = Net(3)
    net.elect("n1")
    net.heartbeat()
    net.isolate("n3")
    for i in range(20):
        net.propose(f"v{i}".encode())
    net.run()
    net.heartbeat()
    net.take_snapshot("n1")
    for i in range(20, 25):
        net.propose(f"v{i}".encode())
    net.run()
    net.heal()
    net.heartbeat()  # stalled pipeline -> probe below the base -> snapshot
    net.heartbeat()
    snaps = [s for s in net.sent if isinstance(s.message, SnapshotRequest) and s.dst == "n3"]
    assert len(snaps) == 1
    n3 = net["n3"]
    assert n3.commit_index == net["n1"].commit_index
    assert net.nodes["n3"].applied == [f"v{i}".encode() for i in range(25)]
    assert net["n1"].progress["n3"].state is ProgressState.REPLICATE
    # the follower's storage holds the snapshot and the log after it
    stored = net.nodes["n3"].storage.load()
    assert stored.snapshot_meta is not None and stored.snapshot_meta.index == 20
    assert [e.index for e in stored.entries] == list(range(21, 26))


def test_snapshot_at_or_below_commit_is_not_installed() -> None:
    follower = RaftCore(
        CoreConfig("n2", ("n1", "n2", "n3"), CLUSTER),
        StoredState(HardState(1, None, 3), None, [entry(i, 1) for i in range(1, 5)]),
    )
    follower.receive(SnapshotRequest(CLUSTER, "n1", 1, SnapshotMeta(2, 1, ("n1",)), b"[]"))
    rd = follower.ready()
    assert rd.snapshot is None
    (env,) = rd.messages
    assert isinstance(env.message, SnapshotResponse) and env.message.match_index == 3
    assert follower.last_index == 4


def test_snapshot_replaces_conflicting_log() -> None:
    """Reference: section 7 — a log that disagrees with the snapshot is discarded."""
    follower = RaftCore(
        CoreConfig("n2", ("n1", "n2", "n3"), CLUSTER),
        StoredState(HardState(2, None, 1), None, [entry(1, 1), entry(2, 2), entry(3, 2)]),
    )
    follower.receive(SnapshotRequest(CLUSTER, "n1", 3, SnapshotMeta(5, 3, ("n1",)), b"[]"))
    rd = follower.ready()
    assert rd.snapshot is not None and rd.snapshot[0].index == 5
    assert follower.last_index == 5 and follower.first_index == 6
    assert follower.commit_index == 5
    assert rd.hard_state == HardState(3, None, 5)
    # the next append from the leader lines up on the snapshot's base
    follower.receive(AppendRequest(CLUSTER, "n1", 3, 5, 3, (entry(6, 3),), 6, 0))
    assert follower.last_index == 6 and follower.commit_index == 6


def test_restart_keeps_term_vote_and_log() -> None:
    """Reference: Figure 2 / PySyncObj #84, #201 — term, vote and log survive a restart."""
    net = Net(3)
    net.elect("n1")
    for i in range(5):
        net.propose(bytes([i]))
    net.run()
    net.heartbeat()
    for node_id in net.voters:
        before = (net[node_id].term, net[node_id].voted_for, net.logs(node_id))
        commit = net[node_id].commit_index
        net.restart(node_id)
        core = net[node_id]
        assert (core.term, core.voted_for, net.logs(node_id)) == before
        assert core.role is Role.FOLLOWER
        assert core.commit_index == commit
        net.flush(node_id)  # the restarted node re-applies its committed prefix
        assert net.nodes[node_id].applied == [bytes([i]) for i in range(5)]


def test_restarted_voter_does_not_vote_twice() -> None:
    """Reference: section 5.2 — a vote persisted before the reply binds after a restart."""
    net = Net(3)
    net.isolate("n1")
    n3 = net["n3"]
    from impl._core import VoteRequest, VoteResponse

    n3.receive(VoteRequest(CLUSTER, "n1", 1, False, 0, 0))
    net.flush("n3")
    net.restart("n3")
    net["n3"].receive(VoteRequest(CLUSTER, "n2", 1, False, 0, 0))
    rd = net["n3"].ready()
    (env,) = rd.messages
    assert isinstance(env.message, VoteResponse) and not env.message.granted


def test_restart_with_snapshot_and_continue() -> None:
    net = Net(3)
    net.elect("n1")
    for i in range(8):
        net.propose(bytes([i]))
    net.run()
    net.heartbeat()
    net.take_snapshot("n2")
    net.restart("n2")
    assert net["n2"].first_index == 9
    net.flush("n2")
    assert net.nodes["n2"].applied == [bytes([i]) for i in range(8)]
    net.propose(b"z")
    net.run()
    net.heartbeat()
    assert net.nodes["n2"].applied[-1] == b"z"


def test_invalid_stored_state_is_refused() -> None:
    with pytest.raises(ValueError, match="not a valid Raft log"):
        RaftCore(
            CoreConfig("n1", ("n1",), CLUSTER),
            StoredState(HardState(1, None, 0), None, [entry(1, 1), entry(3, 1)]),
        )
    with pytest.raises(ValueError, match="commit"):
        RaftCore(
            CoreConfig("n1", ("n1",), CLUSTER),
            StoredState(HardState(1, None, 5), None, [entry(1, 1)]),
        )
