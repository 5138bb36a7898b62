"""Disabled inputs change nothing and say why (h11 style; the spec's step contract).

Every input that is not enabled in a state must come back with `result.state` being that very
state, no outputs of any kind, and a non-empty reason, so the checkers can offer every input in
every state without special cases.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spec import (
    Action,
    AddLearner,
    AppendResponse,
    ClientRequest,
    ClusterState,
    Crash,
    Deliver,
    Drop,
    Duplicate,
    ElectionTimeout,
    Heal,
    HeartbeatDue,
    Input,
    NodeInput,
    NodeState,
    Partition,
    PromoteLearner,
    ReadRequest,
    Receive,
    Recover,
    RemoveServer,
    SendAppend,
    TransferLeadership,
    VoteRequest,
    VoteResponse,
    cluster_step,
    initial_cluster,
    step,
)
from tests.spec._helpers import append, entries, feed, leader, node_with, timeout


def _follower() -> NodeState:
    return node_with(1, 3, term=2, log=entries(1, 2), commit=2)


def _leader() -> NodeState:
    return feed(leader(3, term=1, log=entries(1, 1), commit=2), ReadRequest(5))


def _fresh_leader() -> NodeState:
    """A leader of term 2 whose commit index is behind its sentinel (thesis 4.1, 2015 fix)."""
    return leader(3, term=1, log=entries(1, 1), commit=1)


def _transferring() -> NodeState:
    """A leader of term 2 handing over to node 1 (thesis 3.10)."""
    state = leader(3, term=1, log=entries(1, 1), commit=2)
    return feed(state, TransferLeadership(1))


CASES: dict[str, tuple[Callable[[], NodeState], Input]] = {
    "leader election timeout": (_leader, ElectionTimeout()),
    "follower heartbeat": (_follower, HeartbeatDue()),
    "follower client request": (_follower, ClientRequest(b"x")),
    "follower read": (_follower, ReadRequest(1)),
    "follower send append": (_follower, SendAppend(0)),
    "duplicate read id": (_leader, ReadRequest(5)),
    "send append to self": (_leader, SendAppend(0)),
    "send append to non-peer": (_leader, SendAppend(7)),
    "prev index beyond log": (_leader, SendAppend(1, prev_index=9)),
    "negative prev index": (_leader, SendAppend(1, prev_index=-1)),
    "count beyond log": (_leader, SendAppend(1, prev_index=0, count=9)),
    "negative count": (_leader, SendAppend(1, prev_index=0, count=-1)),
    "message for another node": (_follower, Receive(append(0, 2, 2))),
    "message from itself": (_follower, Receive(append(1, 1, 2))),
    "message from a non-voter": (_follower, Receive(append(9, 1, 2))),
    "negative term": (_follower, Receive(VoteRequest(0, 1, -1, False, 0, 0))),
    "negative prev index in append": (_follower, Receive(append(0, 1, 2, prev_index=-1))),
    "negative leader commit": (_follower, Receive(append(0, 1, 2, leader_commit=-1))),
    "entry from a future term": (_follower, Receive(append(0, 1, 2, new=entries(3)))),
    "negative match in response": (
        _leader,
        Receive(AppendResponse(1, 0, 2, True, -1, 0, 0)),
    ),
    "negative hint in response": (
        _leader,
        Receive(AppendResponse(1, 0, 2, False, 0, -1, 0)),
    ),
    "vote reply from a non-voter": (
        _leader,
        Receive(VoteResponse(5, 0, 2, False, True, 2)),
    ),
    "follower adds a learner (4.1)": (_follower, AddLearner(2)),
    "follower removes a server (4.1)": (_follower, RemoveServer(2)),
    "follower transfers leadership (3.10)": (_follower, TransferLeadership(0)),
    "change before own-term commit (4.1, 2015)": (_fresh_leader, RemoveServer(2)),
    "add a member again (4.1)": (_leader, AddLearner(1)),
    "promote a voter (4.2.1)": (_leader, PromoteLearner(1)),
    "remove an outsider (4.1)": (_leader, RemoveServer(7)),
    "transfer to self (3.10)": (_leader, TransferLeadership(0)),
    "transfer to a non-voter (3.10)": (_leader, TransferLeadership(5)),
    "client request while transferring (3.10)": (_transferring, ClientRequest(b"x")),
    "second transfer (3.10)": (_transferring, TransferLeadership(2)),
    "change while transferring (3.10)": (_transferring, RemoveServer(2)),
    "append overwriting a committed entry": (
        _follower,
        Receive(append(0, 1, 3, prev_index=1, prev_term=1, new=entries(3))),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_disabled_input_leaves_the_state_unchanged_with_a_reason(name: str) -> None:
    """Reference: DESIGN, architecture ("an input that is not enabled leaves the state
    unchanged and says why"); section 5.4 for the committed-entry case.
    """
    make, event = CASES[name]
    state = make()
    result = step(state, event)
    assert result.state is state
    assert result.persist is None
    assert result.messages == () and result.committed == () and result.reads == ()
    assert isinstance(result.rejected, str) and result.rejected
    assert not result.enabled


def _cluster_cases() -> dict[str, tuple[ClusterState, Action]]:
    base = initial_cluster(3)
    crashed = cluster_step(base, Crash(2)).state
    with_msgs = timeout(base, 0)
    message = with_msgs.network[0]
    cut = cluster_step(with_msgs, Partition((frozenset({0}), frozenset({1, 2})))).state
    ghost = VoteRequest(1, 2, 0, True, 0, 0)
    return {
        "deliver not in flight": (base, Deliver(ghost)),
        "drop not in flight": (base, Drop(ghost)),
        "duplicate not in flight": (base, Duplicate(ghost)),
        "input to a crashed node": (crashed, NodeInput(2, ElectionTimeout())),
        "crash a crashed node": (crashed, Crash(2)),
        "recover a running node": (base, Recover(1)),
        "heal without a partition": (base, Heal()),
        "partition missing a node": (base, Partition((frozenset({0, 1}),))),
        "partition with a node twice": (
            base,
            Partition((frozenset({0, 1}), frozenset({1, 2}))),
        ),
        "deliver across a partition": (cut, Deliver(message)),
        "node input that is disabled": (base, NodeInput(0, HeartbeatDue())),
    }


CLUSTER_CASES = _cluster_cases()


@pytest.mark.parametrize("name", sorted(CLUSTER_CASES))
def test_a_disabled_cluster_action_leaves_the_cluster_unchanged(name: str) -> None:
    """Reference: DESIGN, architecture (a disabled action leaves the cluster unchanged)."""
    cluster, action = CLUSTER_CASES[name]
    result = cluster_step(cluster, action)
    assert result.state is cluster
    assert isinstance(result.rejected, str) and result.rejected


def test_an_invalid_message_is_consumed_but_changes_no_node() -> None:
    """A delivered message that its receiver refuses leaves the network, nothing else changes.

    Reference: DESIGN, architecture (the network is adversarial; a refused input is a no-op).
    """
    bad = append(0, 1, 3, prev_index=-1)
    cluster = ClusterState(
        nodes=initial_cluster(3).nodes, disks=initial_cluster(3).disks, network=(bad,)
    )
    result = cluster_step(cluster, Deliver(bad))
    assert result.rejected is None
    assert result.state.network == () and result.state.nodes == cluster.nodes
