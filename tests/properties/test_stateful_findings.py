"""Runs the stateful engine's authors found worth keeping: replayed step by step on the spec.

Reference: Raft paper section 5.4.3 (Leader Completeness: "if a log entry is committed in a
given term, then that entry will be present in the logs of the leaders for all higher-numbered
terms").
"""

from __future__ import annotations

from collections.abc import Callable

import spec
from properties import check_state, check_transition
from spec import (
    Action,
    ClientRequest,
    ClusterState,
    Deliver,
    Drop,
    ElectionTimeout,
    Message,
    NodeInput,
    Role,
    SendAppend,
    VoteRequest,
    VoteResponse,
)


class _Run:
    """_Run drives the spec cluster, demanding every action be enabled and every step safe."""

    def __init__(self, size: int) -> None:
        self.cluster: ClusterState = spec.initial_cluster(size)

    def do(self, action: Action) -> None:
        result = spec.cluster_step(self.cluster, action)
        assert result.rejected is None, (action, result.rejected)
        assert check_transition(self.cluster, action, result.state) == []
        self.cluster = result.state

    def deliver(self, wanted: Callable[[Message], bool]) -> None:
        for message in [m for m in self.cluster.network if wanted(m)]:
            self.do(Deliver(message))

    def drop_all(self) -> None:
        for message in self.cluster.network:
            self.do(Drop(message))


def _to(node: int, kind: type[Message] | None = None) -> Callable[[Message], bool]:
    return lambda m: m.dst == node and (kind is None or isinstance(m, kind))


def _stale_leader_run() -> ClusterState:
    a, b, c = 0, 1, 2
    run = _Run(3)
    run.do(NodeInput(a, ElectionTimeout()))
    for _ in range(4):  # prevotes, their grants, votes, their grants: a leads term 1
        run.deliver(lambda m: True)
    run.do(NodeInput(a, ClientRequest(b"x")))  # entry 1 (term 1), on a only
    run.do(NodeInput(b, ElectionTimeout()))  # b wins term 2 with c's vote and an empty log
    run.deliver(_to(c))
    run.deliver(_to(b))
    run.deliver(_to(c, VoteRequest))
    run.deliver(_to(b, VoteResponse))
    run.drop_all()
    run.do(NodeInput(b, SendAppend(a)))  # a hears of term 2 and keeps entry 1
    run.deliver(_to(a))
    run.drop_all()
    run.do(NodeInput(a, ElectionTimeout()))  # a wins term 3 with c; b never hears of it
    run.deliver(_to(c))
    run.deliver(_to(a, VoteResponse))
    run.deliver(_to(c, VoteRequest))
    run.deliver(_to(a, VoteResponse))
    run.drop_all()
    run.do(NodeInput(a, SendAppend(c, prev_index=0)))  # entries 1 and 2 (the sentinel) to c
    run.deliver(_to(c))
    run.deliver(_to(a))
    return run.cluster


def test_a_stale_leader_of_an_earlier_term_may_lack_an_entry_committed_later() -> None:
    """A leader of term 2 that never heard of term 3 need not hold what term 3 committed.

    b leads term 2 with an empty log; a then leads term 3 and commits entry 1 (of term 1)
    together with its term-3 sentinel. Section 5.4.3 promises entry 1 to leaders of terms
    after 3 only; b, still leader of term 2 until it hears of term 3, breaks no rule of Raft.
    """
    final = _stale_leader_run()
    nodes = final.nodes
    assert (nodes[1].role, nodes[1].term, nodes[1].log) == (Role.LEADER, 2, ())
    assert (nodes[0].role, nodes[0].term, nodes[0].commit) == (Role.LEADER, 3, 2)
    assert [str(violation) for violation in check_state(final)] == []
