"""Scenarios on the cluster model: elections, crashes, partitions, restarts, a hostile network.

Every step of every scenario goes through the helpers, which check Election Safety, Leader
Completeness and State Machine Safety (Raft paper section 5.4, Figure 3) after each action.
"""

from __future__ import annotations

import random

import pytest

from spec import (
    Action,
    CheckQuorum,
    ClientRequest,
    ClusterState,
    Crash,
    Deliver,
    Drop,
    Duplicate,
    ElectionTimeout,
    Heal,
    HeartbeatDue,
    NodeInput,
    Partition,
    ReadRequest,
    Receive,
    Recover,
    Role,
    SendAppend,
    VoteRequest,
    VoteResponse,
    cluster_step,
    initial_cluster,
    step,
)
from tests.spec._helpers import (
    act,
    check_safety,
    committed_prefix,
    deliver_all,
    deliverable,
    drop_blocked,
    elect,
    expire_leases,
    heartbeat,
    propose,
    run,
    sync,
    timeout,
)


def test_initial_election_persists_terms_and_votes() -> None:
    """From a cold start, one timeout elects a leader; every voter's term and vote are on
    its disk (persist before send).

    Reference: section 5.2; Figure 2 (persistent state).
    """
    cluster = elect(initial_cluster(3), 0)
    assert [s.term for s in cluster.nodes] == [1, 1, 1]
    assert [d.voted_for for d in cluster.disks] == [0, 0, 0]
    assert [d.term for d in cluster.disks] == [1, 1, 1]
    cluster = heartbeat(cluster, 0)
    assert [s.leader for s in cluster.nodes] == [0, 0, 0]


def test_re_election_after_a_leader_crash_and_the_old_leader_rejoins_as_follower() -> None:
    """The leader crashes; the others elect a new one in a higher term; the old leader recovers
    from its disk as a follower, learns the new term and catches up.

    Reference: section 5.2 (followers time out and elect), 5.1 (the old leader adopts the new
    term), 5.3 (its log is brought up to date).
    """
    cluster = sync(propose(sync(elect(initial_cluster(3), 0), 0), 0, b"a", b"b"), 0)
    cluster = drop_blocked(run(cluster, Crash(0)))
    cluster = elect(expire_leases(cluster), 1)
    assert cluster.nodes[1].term == 2
    cluster = propose(cluster, 1, b"c")
    cluster = run(cluster, Recover(0))
    assert cluster.nodes[0].role is Role.FOLLOWER and cluster.nodes[0].term == 1
    cluster = sync(cluster, 1)
    old = cluster.nodes[0]
    assert old.role is Role.FOLLOWER and old.term == 2 and old.leader == 1
    assert old.log == cluster.nodes[1].log and old.commit == cluster.nodes[1].commit
    assert [e.payload for e in old.log][:2] == [b"a", b"b"]


def test_a_partitioned_node_rejoining_does_not_disturb_the_leader() -> None:
    """A node cut off for many election timeouts keeps its term (prevote), and after the heal
    its prevotes are refused; the leader keeps its term and office.

    Reference: thesis section 9.6 ("a server rejoining the cluster ... will not disrupt"),
    section 4.2.3 (disruptive servers).
    """
    cluster = sync(elect(initial_cluster(5), 0), 0)
    cluster = run(cluster, Partition((frozenset({0, 1, 2, 3}), frozenset({4}))))
    for _ in range(5):
        cluster = drop_blocked(timeout(cluster, 4))
        cluster = act(cluster, NodeInput(4, CheckQuorum()))
        cluster = heartbeat(cluster, 0)
        cluster = drop_blocked(cluster)
    assert cluster.nodes[4].term == 1
    cluster = run(cluster, Heal())
    cluster = deliver_all(timeout(cluster, 4))
    assert cluster.nodes[0].role is Role.LEADER and cluster.nodes[0].term == 1
    assert [s.term for s in cluster.nodes] == [1] * 5
    cluster = heartbeat(cluster, 0)
    assert cluster.nodes[4].role is Role.FOLLOWER and cluster.nodes[4].leader == 0


def test_restart_keeps_term_vote_and_log_from_the_disk() -> None:
    """After crash and recovery a node has its durable state and nothing volatile; it re-applies
    its committed prefix, and it does not vote twice in the term it voted in.

    Reference: Figure 2 (persistent state on all servers); PySyncObj #84, #201.
    """
    cluster = sync(propose(sync(elect(initial_cluster(3), 0), 0), 0, b"a"), 0)
    before = cluster.nodes[2]
    cluster = run(cluster, Crash(2))
    result = cluster_step(cluster, Recover(2))
    assert result.rejected is None and result.node_step is not None
    after = result.state.nodes[2]
    assert (after.term, after.voted_for, after.log, after.commit) == (
        before.term,
        before.voted_for,
        before.log,
        before.commit,
    )
    assert after.role is Role.FOLLOWER and after.leader is None
    assert result.node_step.committed == before.log[: before.commit]
    # A rival asking for node 2's vote in the term it already voted in is refused.
    rival = VoteRequest(1, 2, before.term, False, 9, before.term)
    (reply,) = step(after, Receive(rival)).messages
    assert isinstance(reply, VoteResponse) and not reply.granted


def test_duplicated_and_reordered_messages_do_not_break_anything() -> None:
    """Every message duplicated and all delivered newest-first: one leader, logs converge.

    Reference: section 5 ("messages can be duplicated, reordered or lost"); section 5.3
    (AppendEntries is idempotent and truncates only on conflicts).
    """
    cluster = timeout(initial_cluster(3), 0)
    cluster = run(cluster, *(Duplicate(m) for m in cluster.network))
    cluster = deliver_all(cluster, pick=lambda ms: ms[-1])
    lead = next(s.id for s in cluster.nodes if s.role is Role.LEADER)
    cluster = propose(cluster, lead, b"1", b"2", b"3")
    for peer in (p for p in range(3) if p != lead):
        for prev in (0, 1, 2):
            cluster = act(cluster, NodeInput(lead, SendAppend(peer, prev_index=prev, count=1)))
    cluster = run(cluster, *(Duplicate(m) for m in cluster.network))
    cluster = deliver_all(cluster, pick=lambda ms: ms[-1])
    # Newest-first, the later ranges were refused (no prev entry yet) and the first accepted.
    log = cluster.nodes[lead].log
    assert all(s.log == log[: len(s.log)] and len(s.log) >= 1 for s in cluster.nodes)
    cluster = sync(cluster, lead)
    assert all(s.log == cluster.nodes[lead].log and s.commit == 3 for s in cluster.nodes)


def _random_action(rng: random.Random, cluster: ClusterState) -> Action:
    """A weighted random action: mostly deliveries and leader work, sometimes faults.

    Timeouts and faults stay rare (a minority crashed at most, partitions soon healed), like
    real timers that are long compared with a message delay, so elections can complete and the
    schedule reaches deep states instead of churning through prevote rounds.
    """
    size = cluster.size
    roll = rng.random()
    ready = deliverable(cluster)
    if ready and roll < 0.8:
        message = rng.choice(ready)
        kind = rng.random()
        if kind < 0.9:
            return Deliver(message)
        return Drop(message) if kind < 0.97 else Duplicate(message)
    leaders = [s.id for s in cluster.nodes if s.role is Role.LEADER and s.id not in cluster.crashed]
    node = rng.randrange(size)
    fault = rng.random()
    if leaders and fault < 0.85:
        lead = rng.choice(leaders)
        choice = rng.random()
        if choice < 0.3:
            return NodeInput(lead, ClientRequest(bytes([rng.randrange(256)])))
        if choice < 0.45:
            return NodeInput(lead, HeartbeatDue())
        if choice < 0.5:
            return NodeInput(lead, ReadRequest(rng.randrange(1_000)))
        peer = rng.choice([p for p in range(size) if p != lead])
        return NodeInput(lead, SendAppend(peer))
    if fault < 0.94 or (not leaders and fault < 0.97):
        event = ElectionTimeout() if rng.random() < 0.6 else CheckQuorum()
        return NodeInput(node, event)
    if cluster.partition:
        return Heal()
    crashed = sorted(cluster.crashed)
    if crashed:
        return Recover(crashed[0])
    if fault < 0.985:
        return Crash(node)
    side = frozenset(rng.sample(range(size), rng.randrange(1, size)))
    return Partition((side, frozenset(range(size)) - side))


@pytest.mark.parametrize("seed", range(12))
def test_random_schedules_keep_every_safety_property(seed: int) -> None:
    """Seeded random schedules of every action, safety checked after each one.

    Reference: section 5.4 (Election Safety, Log Matching, Leader Completeness, State Machine
    Safety, Figure 3) under crashes, partitions and a lossy, duplicating, reordering network.
    """
    rng = random.Random(seed)
    cluster = initial_cluster(3 + seed % 3)
    committed = committed_prefix(cluster)
    terms: set[int] = set()
    for _ in range(600):
        result = cluster_step(cluster, _random_action(rng, cluster))
        cluster = result.state
        check_safety(cluster)
        now = committed_prefix(cluster)
        assert now[: len(committed)] == committed, "a committed entry was lost"
        committed = now if len(now) > len(committed) else committed
        terms |= {s.term for s in cluster.nodes if s.role is Role.LEADER}
        while len(cluster.network) > 40:  # a lossy network, so the bag stays small
            cluster = cluster_step(cluster, Drop(rng.choice(cluster.network))).state
    assert terms, "the schedule never elected a leader"  # so it exercised replication ...
    assert committed, "nothing was ever committed"  # ... and commitment
