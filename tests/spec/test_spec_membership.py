"""Membership change, one server at a time (Raft thesis chapter 4).

Reference: thesis section 4.1 (single-server changes; the latest configuration in the log is in
use, committed or not; truncation reverts it), section 4.2.1 (new servers catch up as
non-voting learners), section 4.2.2 (removing the leader), and Ongaro's 2015 raft-dev fix for
the single-server change bug (no configuration entry before an entry of the leader's own term
has committed).
"""

from __future__ import annotations

import pytest

from spec import (
    AddLearner,
    AppendSentinel,
    ClientRequest,
    ClusterState,
    Config,
    ElectionTimeout,
    EntryKind,
    Input,
    NodeInput,
    Partition,
    PromoteLearner,
    RemoveServer,
    Restart,
    Role,
    SendAppend,
    committed_config,
    config_in_use,
    initial_cluster,
    initial_node,
    quorum_match,
    step,
    voters_in_use,
)
from tests.spec._helpers import act, deliver_all, elect, expire_leases, propose, sync


def _ready(size: int = 4, voters: tuple[int, ...] = (0, 1, 2)) -> ClusterState:
    """A leader (node 0) of term 1 with an own-term entry committed, so changes are enabled."""
    cluster = elect(initial_cluster(size, voters), 0)
    cluster = propose(cluster, 0, b"a")
    return sync(cluster, 0)


def _do(
    cluster: ClusterState, node: int, event: AddLearner | PromoteLearner | RemoveServer
) -> ClusterState:
    return act(cluster, NodeInput(node, event))


def test_default_cluster_has_every_node_as_voter() -> None:
    """Without config entries the initial configuration is all voters (thesis 4.1)."""
    cluster = initial_cluster(3)
    for node in cluster.nodes:
        assert node.initial_config is None
        assert voters_in_use(node) == (0, 1, 2)
        assert config_in_use(node) == Config((0, 1, 2))


def test_a_smaller_initial_config_leaves_outsiders_out() -> None:
    """A universe larger than the configuration: outsiders never campaign (thesis 4.1)."""
    cluster = initial_cluster(4, (0, 1, 2))
    assert config_in_use(cluster.nodes[3]) == Config((0, 1, 2))
    result = step(cluster.nodes[3], ElectionTimeout())
    assert result.rejected is not None and "not a voter" in result.rejected
    assert result.state is cluster.nodes[3]


def test_config_rejects_malformed_configurations() -> None:
    with pytest.raises(ValueError, match="at least one voter"):
        Config(())
    with pytest.raises(ValueError, match="either a voter or a learner"):
        Config((0, 1), (1,))
    with pytest.raises(ValueError, match="sorted"):
        Config((1, 0))
    with pytest.raises(ValueError, match="outside"):
        initial_cluster(3, (0, 1, 5))


def test_add_learner_appends_a_config_entry_that_is_in_use_at_once() -> None:
    """The leader uses the new configuration as soon as it is in its log (thesis 4.1)."""
    cluster = _do(_ready(), 0, AddLearner(3))
    leader = cluster.nodes[0]
    entry = leader.log[-1]
    assert entry.kind is EntryKind.CONFIG and entry.term == 1
    assert entry.config == Config((0, 1, 2), (3,))
    assert config_in_use(leader) == Config((0, 1, 2), (3,))
    assert committed_config(leader) == Config((0, 1, 2))
    cluster = sync(cluster, 0)
    assert cluster.nodes[3].log == leader.log  # the learner receives appends
    assert all(committed_config(n) == Config((0, 1, 2), (3,)) for n in cluster.nodes)


def test_learner_does_not_count_for_quorum() -> None:
    """A learner's acknowledgement never commits an entry (thesis 4.2.1)."""
    cluster = sync(_do(_ready(), 0, AddLearner(3)), 0)
    cluster = propose(cluster, 0, b"b")
    cluster = act(cluster, Partition((frozenset({0, 3}), frozenset({1, 2}))))
    cluster = act(cluster, NodeInput(0, SendAppend(3)))
    cluster = deliver_all(cluster)
    leader = cluster.nodes[0]
    assert leader.match_index[3] == len(leader.log)
    assert quorum_match(leader) < len(leader.log)
    assert leader.commit == len(leader.log) - 1


def test_learner_never_starts_an_election() -> None:
    """Learners receive appends, never campaign (thesis 4.2.1)."""
    cluster = sync(_do(_ready(), 0, AddLearner(3)), 0)
    result = step(cluster.nodes[3], ElectionTimeout())
    assert result.rejected is not None and "not a voter" in result.rejected


def test_learner_is_not_asked_for_votes() -> None:
    """A candidate asks only the voters of its configuration (thesis 4.1)."""
    cluster = sync(_do(_ready(), 0, AddLearner(3)), 0)
    cluster = expire_leases(cluster)
    cluster = act(cluster, NodeInput(1, ElectionTimeout()))
    assert sorted(m.dst for m in cluster.network if m.src == 1) == [0, 2]


def test_promote_requires_a_caught_up_learner() -> None:
    """Promotion waits until the learner's match index reaches the commit (thesis 4.2.1)."""
    cluster = act(
        _do(_ready(), 0, AddLearner(3)), Partition((frozenset({0, 1, 2}), frozenset({3})))
    )
    cluster = sync(cluster, 0)
    leader = cluster.nodes[0]
    refused = step(leader, PromoteLearner(3))
    assert refused.rejected is not None and "behind commit" in refused.rejected
    assert refused.state is leader
    cluster = sync(act(cluster, Partition((frozenset({0, 1, 2, 3}),))), 0)
    cluster = _do(cluster, 0, PromoteLearner(3))
    assert config_in_use(cluster.nodes[0]) == Config((0, 1, 2, 3))
    # Quorum is now 3 of 4: the promoted learner counts.
    assert voters_in_use(cluster.nodes[0]) == (0, 1, 2, 3)


def test_change_refused_before_an_own_term_entry_commits() -> None:
    """The 2015 fix: no configuration entry until an entry of the leader's term has committed."""
    cluster = elect(initial_cluster(4, (0, 1, 2)), 0)  # empty log: no sentinel, nothing of term 1
    leader = cluster.nodes[0]
    for event in (AddLearner(3), RemoveServer(2)):
        result = step(leader, event)
        assert result.rejected is not None and "no entry of term 1" in result.rejected
        assert result.state is leader and not result.messages and result.persist is None
    cluster = sync(propose(cluster, 0, b"a"), 0)
    assert step(cluster.nodes[0], AddLearner(3)).enabled


def test_sentinel_on_request_unblocks_a_change_on_an_idle_cluster() -> None:
    """A leader elected with a fully committed log has no entry of its term (the seed appends
    a sentinel only when the commit index is behind); AppendSentinel supplies one, and once it
    commits the change the 2015 fix was holding back goes ahead (thesis 4.1, 6.4)."""
    cluster = elect(initial_cluster(4, (0, 1, 2)), 0)
    assert not step(cluster.nodes[0], AddLearner(3)).enabled
    cluster = act(cluster, NodeInput(0, AppendSentinel()))
    leader = cluster.nodes[0]
    assert [entry.kind for entry in leader.log] == [EntryKind.NOOP]
    assert leader.log[0].term == leader.term and leader.commit == 0
    again = step(leader, AppendSentinel())  # one is enough: it is in the log, uncommitted
    assert again.rejected is not None and "already holds an entry of term 1" in again.rejected
    assert not step(leader, AddLearner(3)).enabled  # not committed yet
    cluster = sync(cluster, 0)
    assert cluster.nodes[0].commit == 1
    assert step(cluster.nodes[0], AddLearner(3)).enabled


def test_sentinel_refused_off_the_leader() -> None:
    cluster = elect(initial_cluster(3), 0)
    result = step(cluster.nodes[1], AppendSentinel())
    assert result.rejected == "only the leader appends a sentinel"
    assert result.state is cluster.nodes[1]


def test_change_refused_while_an_earlier_one_is_uncommitted() -> None:
    """One configuration change at a time (thesis 4.1)."""
    cluster = _do(_ready(), 0, AddLearner(3))
    leader = cluster.nodes[0]
    result = step(leader, RemoveServer(2))
    assert result.rejected is not None and "not committed yet" in result.rejected
    assert result.state is leader


def test_membership_inputs_refused_on_a_follower_and_for_bad_nodes() -> None:
    """Leader-only requests; unknown, duplicate or absent members are refused (thesis 4.1)."""
    cluster = _ready()
    follower = cluster.nodes[1]
    for event in (AddLearner(3), PromoteLearner(3), RemoveServer(2)):
        result = step(follower, event)
        assert result.rejected == "only the leader changes membership"
        assert result.state is follower
    leader = cluster.nodes[0]
    cases: dict[Input, str] = {
        AddLearner(9): "not in the cluster's universe",
        AddLearner(2): "already a member",
        PromoteLearner(3): "not a learner",
        RemoveServer(3): "not a member",
    }
    for change, reason in cases.items():
        result = step(leader, change)
        assert result.rejected is not None and reason in result.rejected, change
        assert result.state is leader


def test_last_voter_cannot_be_removed() -> None:
    cluster = _ready(2, (0,))
    result = step(cluster.nodes[0], RemoveServer(0))
    assert result.rejected is not None and "last voter" in result.rejected


def test_single_voter_commits_its_own_change_at_once() -> None:
    """With one voter the leader's own copy is a quorum (thesis 4.1)."""
    cluster = _do(_ready(2, (0,)), 0, AddLearner(1))
    leader = cluster.nodes[0]
    assert leader.commit == len(leader.log)
    assert committed_config(leader) == Config((0,), (1,))


def test_remove_a_follower_shrinks_the_quorum() -> None:
    """After removing a voter the quorum is a majority of the rest (thesis 4.1)."""
    cluster = _ready(3, (0, 1, 2))
    cluster = sync(_do(cluster, 0, RemoveServer(2)), 0)
    leader = cluster.nodes[0]
    assert committed_config(leader) == Config((0, 1))
    result = step(leader, SendAppend(2))
    assert result.rejected is not None  # the leader no longer replicates to it
    cluster = propose(cluster, 0, b"b")
    cluster = act(cluster, Partition((frozenset({0, 1}), frozenset({2}))))
    cluster = sync(cluster, 0)
    assert cluster.nodes[0].commit == len(cluster.nodes[0].log)


def test_removed_leader_steps_down_once_its_removal_commits() -> None:
    """The leader keeps leading until the config without it commits, then steps down (4.2.2)."""
    cluster = _do(_ready(3, (0, 1, 2)), 0, RemoveServer(0))
    leader = cluster.nodes[0]
    assert leader.role is Role.LEADER
    assert voters_in_use(leader) == (1, 2)
    assert quorum_match(leader) < len(leader.log)  # it does not count itself
    cluster = act(cluster, NodeInput(0, SendAppend(1)))
    cluster = deliver_all(cluster)
    assert cluster.nodes[0].role is Role.LEADER  # one of two voters is not a quorum
    cluster = act(cluster, NodeInput(0, SendAppend(2)))
    cluster = deliver_all(cluster)
    retired = cluster.nodes[0]
    assert retired.role is Role.FOLLOWER and retired.term == 1
    assert retired.commit == len(retired.log)
    refused = step(retired, ElectionTimeout())
    assert refused.rejected is not None and "not a voter" in refused.rejected
    cluster = expire_leases(cluster)
    cluster = elect(cluster, 1)
    assert cluster.nodes[1].term == 2


def test_truncating_a_config_entry_reverts_the_config() -> None:
    """An uncommitted config entry that is overwritten stops being in use (thesis 4.1)."""
    cluster = _ready(4, (0, 1, 2))
    cluster = act(cluster, Partition((frozenset({0, 3}), frozenset({1, 2}))))
    cluster = _do(cluster, 0, AddLearner(3))  # in node 0's log only
    cluster = sync(cluster, 0)
    assert config_in_use(cluster.nodes[0]) == Config((0, 1, 2), (3,))
    cluster = expire_leases(cluster, 1, 2)
    cluster = elect(cluster, 1)
    cluster = act(cluster, Partition((frozenset({0, 1, 2, 3}),)))
    cluster = propose(cluster, 1, b"b")
    cluster = sync(cluster, 1)
    old = cluster.nodes[0]
    assert old.role is Role.FOLLOWER
    assert all(e.kind is not EntryKind.CONFIG for e in old.log)
    assert config_in_use(old) == Config((0, 1, 2))


def test_initial_config_survives_a_restart() -> None:
    """The initial configuration is part of the node's identity, not of its memory."""
    cluster = initial_cluster(4, (0, 1, 2))
    node = cluster.nodes[3]
    restarted = step(node, Restart(node.durable())).state
    assert restarted.initial_config == Config((0, 1, 2))
    assert initial_node(3, node.voters).initial_config is None


def test_outsider_added_and_promoted_can_then_lead() -> None:
    """A full add -> catch up -> promote run; the new voter can be elected (thesis 4.2.1)."""
    cluster = sync(_do(_ready(), 0, AddLearner(3)), 0)
    cluster = sync(_do(cluster, 0, PromoteLearner(3)), 0)
    assert all(config_in_use(n) == Config((0, 1, 2, 3)) for n in cluster.nodes)
    cluster = expire_leases(cluster)
    cluster = elect(cluster, 3)
    assert cluster.nodes[3].role is Role.LEADER
    assert 3 in cluster.nodes[3].votes


def test_client_request_enabled_during_membership_change() -> None:
    """Membership changes do not block client requests (thesis 4.1)."""
    cluster = _do(_ready(), 0, AddLearner(3))
    assert step(cluster.nodes[0], ClientRequest(b"x")).enabled
