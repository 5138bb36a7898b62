"""Figure 8 of the Raft paper, played on the five-node cluster model (section 5.4.2).

Servers S1..S5 are nodes 0..4. The history: (a) S1 leads term 2 and gets index 2 onto S2
only; (b) S1 crashes, S5 leads term 3 and appends its own index 2; (c) S5 crashes, S1 comes
back and leads term 4 and puts its term-2 entry on a majority. The paper's point: S1 must not
count that majority as a commit, because in (d) S5 can still win term 5 and overwrite index 2.
In (e) S1 instead gets an entry of its own term onto a majority, and then S5 can never win.
Our spec's leader also appends a term-change NOOP at takeover (the seed's sentinel), which is
exactly the entry of the current term that makes (e) safe.
"""

from __future__ import annotations

from spec import (
    CheckQuorum,
    ClusterState,
    Crash,
    Heal,
    NodeInput,
    Partition,
    Recover,
    Role,
    SendAppend,
    initial_cluster,
    quorum_match,
)
from tests.spec._helpers import (
    act,
    committed_prefix,
    deliver_all,
    drop_blocked,
    elect,
    expire_leases,
    propose,
    run,
    sync,
    timeout,
)

S1, S2, S3, S4, S5 = range(5)


def _history_until_c() -> tuple[ClusterState, list[tuple[object, ...]]]:
    """Plays (a), (b) and the start of (c); returns the cluster and committed-prefix snapshots."""
    seen: list[tuple[object, ...]] = []
    # Term 1: S1 leads and commits index 1 everywhere.
    cluster = sync(propose(sync(elect(initial_cluster(5), S1), S1), S1, b"x1"), S1)
    assert all(s.commit == 1 for s in cluster.nodes)
    seen.append(committed_prefix(cluster))
    # (a) S1 loses its lease (check-quorum with no replies), is re-elected in term 2, and
    # replicates index 2 (term 2) to S2 only.
    cluster = run(cluster, NodeInput(S1, CheckQuorum()), NodeInput(S1, CheckQuorum()))
    assert cluster.nodes[S1].role is Role.FOLLOWER
    cluster = elect(expire_leases(cluster), S1)
    assert cluster.nodes[S1].term == 2
    cluster = deliver_all(act(propose(cluster, S1, b"x2"), NodeInput(S1, SendAppend(S2))))
    assert [len(s.log) for s in cluster.nodes] == [2, 2, 1, 1, 1]
    assert cluster.nodes[S1].commit == 1
    # (b) S1 crashes; S5 is elected in term 3 by S3, S4 and itself, and appends index 2 locally.
    cluster = run(cluster, Crash(S1), Partition((frozenset({S1, S2}), frozenset({S3, S4, S5}))))
    cluster = drop_blocked(elect(expire_leases(cluster), S5))
    assert cluster.nodes[S5].term == 3
    cluster = drop_blocked(propose(cluster, S5, b"x3"))
    assert [s.log[-1].term for s in cluster.nodes] == [2, 2, 1, 1, 3]
    seen.append(committed_prefix(cluster))
    # (c) S5 crashes, S1 recovers from its disk and wins term 4 (its log ends in term 2).
    cluster = drop_blocked(run(cluster, Crash(S5), Heal(), Recover(S1)))
    cluster = deliver_all(timeout(expire_leases(cluster), S1))  # learns term 3 from S3/S4
    cluster = drop_blocked(elect(expire_leases(cluster), S1))
    assert cluster.nodes[S1].term == 4
    seen.append(committed_prefix(cluster))
    return cluster, seen


def test_a_leader_does_not_commit_an_earlier_term_entry_by_counting() -> None:
    """In (c), index 2 (term 2) is on S1, S2, S3, a majority, and is still not committed.

    Reference: section 5.4.2 ("Raft never commits log entries from previous terms by counting
    replicas"), Figure 8 (c).
    """
    cluster, _ = _history_until_c()
    for peer in (S2, S3):
        cluster = act(cluster, NodeInput(S1, SendAppend(peer, prev_index=1, count=1)))
    cluster = deliver_all(cluster)
    lead = cluster.nodes[S1]
    assert [s.log[1].term for s in cluster.nodes[:3]] == [2, 2, 2]
    assert quorum_match(lead) == 2  # a majority stores index 2 ...
    assert lead.commit == 1  # ... yet it is not committed


def test_figure_8_d_the_uncommitted_entry_is_overwritten_and_nothing_committed_is_lost() -> None:
    """In (d), S5 wins term 5 (its last term 3 beats term 2) and replaces index 2 everywhere;
    that is safe only because (c) did not commit it. Index 1 survives throughout.

    Reference: section 5.4.2, Figure 8 (d).
    """
    cluster, seen = _history_until_c()
    for peer in (S2, S3):
        cluster = act(cluster, NodeInput(S1, SendAppend(peer, prev_index=1, count=1)))
    cluster = deliver_all(cluster)
    cluster = drop_blocked(run(cluster, Crash(S1), Recover(S5)))
    cluster = deliver_all(timeout(expire_leases(cluster), S5))  # learns term 4
    cluster = sync(elect(expire_leases(cluster), S5), S5)
    assert cluster.nodes[S5].term == 5
    live = [s for s in cluster.nodes if s.id != S1]
    assert all(s.log[1].term == 3 for s in live)
    assert all(s.commit == 3 for s in live)
    final = committed_prefix(cluster)
    for earlier in seen:
        assert final[: len(earlier)] == earlier
    assert final[0].payload == b"x1"


def test_figure_8_e_a_current_term_entry_on_a_majority_commits_and_blocks_s5() -> None:
    """In (e), S1 replicates its own term's entry (the NOOP) to a majority: index 2 and 3
    commit, and S5, whose log ends in term 3, can no longer be elected.

    Reference: section 5.4.2, Figure 8 (e); section 5.4.3 (safety argument).
    """
    cluster, seen = _history_until_c()
    cluster = sync(cluster, S1)
    assert cluster.nodes[S1].commit == 3
    committed = committed_prefix(cluster)
    assert committed[1].term == 2 and committed[0] == seen[0][0]
    cluster = drop_blocked(run(cluster, Crash(S1), Recover(S5)))
    for _ in range(3):
        cluster = deliver_all(timeout(expire_leases(cluster), S5))
        assert cluster.nodes[S5].role is not Role.LEADER
    cluster = sync(elect(expire_leases(cluster), S2), S2)
    assert cluster.nodes[S5].log[:3] == committed
    assert committed_prefix(cluster)[:3] == committed
