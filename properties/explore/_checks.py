"""Every invariant on every int state and edge, memoised by the part of the state it reads.

The explorer must run each of `properties.STATE_INVARIANTS` on every new state and each of
`properties.TRANSITION_INVARIANTS` on every edge. Most of them read only part of a state,
and that part repeats across many states, so a verdict is memoised on exactly the part read:

* the node-only claims (election safety, leader votes, log matching, commit within log,
  leader completeness, state machine safety) read `cluster.nodes` alone: keyed by the node
  numbers;
* one vote per term and persist-before-send read nodes, disks and network: keyed by those;
* read safety reads the ghost reads alone: keyed by them;
* every transition invariant compares each node before and after the step, pair by pair
  (`zip(before.nodes, after.nodes)`), looking at nothing else but the action, and holds for
  a node the step did not change; so it runs once per (node before, node after, input) on a
  one-node cluster, and not at all for nodes that stayed the same. Commit-by-voter-quorum
  also reads the disks after the step, so they join its key;
* votes-respect-restriction says nothing unless a vote request is delivered, and then reads
  the receiver before the step and the network before and after: keyed by those.

The tables below name the functions of `properties._invariants` these readings were taken
from (read them there). An invariant not in a table, such as one added later, is simply run on
the whole materialised state or edge every time: slower, never unsound.
`tests/properties/test_explore_engine.py` checks that each memoised verdict equals the full one.
"""

from __future__ import annotations

from collections.abc import Callable

import properties
from properties import _invariants as inv
from properties._invariants import Violation
from properties.explore._engine import DELIVER, Engine, IntAction, IntState
from spec import ClusterState, VoteRequest

__all__ = [
    "NODES_DISKS_NETWORK",
    "NODE_ONLY",
    "PER_NODE_TRANSITIONS",
    "PER_NODE_WITH_DISKS_TRANSITIONS",
    "READS_ONLY",
    "VOTE_DELIVERY_TRANSITIONS",
    "Checks",
]

NODE_ONLY: frozenset[Callable[..., str | None]] = frozenset(
    {
        inv.election_safety,
        inv.leader_holds_quorum_of_votes,
        inv.log_matching,
        inv.commit_within_log,
        inv.leader_completeness,
        inv.state_machine_safety,
        inv.one_uncommitted_config,
        inv.config_near_committed,
    }
)
NODES_DISKS_NETWORK: frozenset[Callable[..., str | None]] = frozenset(
    {inv.one_vote_per_term, inv.persist_before_send}
)
READS_ONLY: frozenset[Callable[..., str | None]] = frozenset({inv.read_safety})
PER_NODE_TRANSITIONS: frozenset[Callable[..., str | None]] = frozenset(
    {
        inv.terms_never_decrease,
        inv.commit_never_regresses,
        inv.leader_append_only,
        inv.no_term_inflation,
    }
)
PER_NODE_WITH_DISKS_TRANSITIONS: frozenset[Callable[..., str | None]] = frozenset(
    {inv.commit_by_voter_quorum}
)
# Silent unless the action delivers a vote request; then it reads the receiver before the
# step and the network before and after (looked up by name: it is newer than the others).
VOTE_DELIVERY_TRANSITIONS: frozenset[Callable[..., str | None]] = frozenset(
    check for check in [getattr(inv, "votes_respect_restriction", None)] if check is not None
)

Found = tuple[tuple[int, Violation], ...]  # (position in the invariant list, violation)
_NOTHING: Found = ()


class Checks:
    """Checks runs the invariant lists as they are when the search starts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        states = list(enumerate(properties.STATE_INVARIANTS))
        self._nodes = [(k, x.name, x.check) for k, x in states if x.check in NODE_ONLY]
        self._network = [(k, x.name, x.check) for k, x in states if x.check in NODES_DISKS_NETWORK]
        self._reads = [(k, x.name, x.check) for k, x in states if x.check in READS_ONLY]
        known = NODE_ONLY | NODES_DISKS_NETWORK | READS_ONLY
        self._whole = [(k, x.name, x.check) for k, x in states if x.check not in known]
        edges = list(enumerate(properties.TRANSITION_INVARIANTS))
        self._per_node = [(k, x.name, x.check) for k, x in edges if x.check in PER_NODE_TRANSITIONS]
        self._per_node_disks = [
            (k, x.name, x.check) for k, x in edges if x.check in PER_NODE_WITH_DISKS_TRANSITIONS
        ]
        self._vote_delivery = [
            (k, x.name, x.check) for k, x in edges if x.check in VOTE_DELIVERY_TRANSITIONS
        ]
        paired = PER_NODE_TRANSITIONS | PER_NODE_WITH_DISKS_TRANSITIONS | VOTE_DELIVERY_TRANSITIONS
        self._whole_edge = [(k, x.name, x.check) for k, x in edges if x.check not in paired]
        self._by_delivery: dict[tuple[int, int, tuple[int, ...], tuple[int, ...]], Found] = {}
        self._by_nodes: dict[tuple[int, ...], Found] = {}
        self._by_network: dict[tuple[tuple[int, ...], ...], Found] = {}
        self._by_reads: dict[object, Found] = {}
        self._by_pair: dict[tuple[int, int, int], Found] = {}
        self._by_pair_disks: dict[tuple[int, int, int, tuple[int, ...]], Found] = {}

    def state(self, state: IntState) -> list[Violation]:
        """state is `properties.check_state(materialise(state))`."""
        nodes, disks, network, _, _, reads = state
        found = self._by_nodes.get(nodes)
        if found is None:
            found = self._by_nodes[nodes] = self._run(self._nodes, state)
        key = (nodes, disks, network)
        more = self._by_network.get(key)
        if more is None:
            more = self._by_network[key] = self._run(self._network, state)
        if self._reads:
            again = self._by_reads.get(reads)
            if again is None:
                again = self._by_reads[reads] = self._run(self._reads, state)
            more += again
        if self._whole:
            more += self._run(self._whole, state)
        if not found and not more:
            return []
        return [violation for _, violation in sorted((*found, *more), key=lambda f: f[0])]

    def _run(
        self, checks: list[tuple[int, str, Callable[..., str | None]]], state: IntState
    ) -> Found:
        if not checks:
            return _NOTHING
        cluster = self.engine.materialise(state)
        out = []
        for k, name, check in checks:
            detail = check(cluster)
            if detail is not None:
                out.append((k, Violation(name, detail)))
        return tuple(out)

    def transition(
        self, before: IntState, action: IntAction, after: IntState, changed: int, event: int
    ) -> list[Violation]:
        """transition is `properties.check_transition` over one edge (ints throughout).

        `changed` is the node the step went to (-1 for none) and `event` its input number.
        """
        found = _NOTHING
        if changed >= 0:
            old = before[0][changed]
            new = after[0][changed]
            if old != new:
                key = (old, new, event)
                cached = self._by_pair.get(key)
                if cached is None:
                    cached = self._by_pair[key] = self._pair(self._per_node, old, new, action, ())
                found = cached
                if self._per_node_disks:
                    disks = after[1]
                    key2 = (old, new, event, disks)
                    more = self._by_pair_disks.get(key2)
                    if more is None:
                        more = self._by_pair_disks[key2] = self._pair(
                            self._per_node_disks, old, new, action, disks
                        )
                    found += more
        if self._vote_delivery and action[0] == DELIVER:
            engine = self.engine
            m = action[1]
            if isinstance(engine.msg_objs[m], VoteRequest):
                key3 = (before[0][engine.msg_dst[m]], m, before[2], after[2])
                cached = self._by_delivery.get(key3)
                if cached is None:
                    cached = self._by_delivery[key3] = self._on_edge(
                        self._vote_delivery, before, action, after
                    )
                found += cached
        if self._whole_edge:
            found += self._on_edge(self._whole_edge, before, action, after)
        if not found:
            return []
        return [violation for _, violation in sorted(found, key=lambda f: f[0])]

    def _on_edge(
        self,
        checks: list[tuple[int, str, Callable[..., str | None]]],
        before: IntState,
        action: IntAction,
        after: IntState,
    ) -> Found:
        """_on_edge runs transition checks on the whole materialised edge."""
        if checks:
            engine = self.engine
            whole_before = engine.materialise(before)
            whole_after = engine.materialise(after)
            out = []
            for k, name, check in checks:
                detail = check(whole_before, action[4], whole_after)
                if detail is not None:
                    out.append((k, Violation(name, detail)))
            return tuple(out)
        return _NOTHING

    def _pair(
        self,
        checks: list[tuple[int, str, Callable[..., str | None]]],
        old: int,
        new: int,
        action: IntAction,
        disks: tuple[int, ...],
    ) -> Found:
        """_pair runs per-node transition checks on one-node clusters (with the disks after)."""
        engine = self.engine
        objs = engine.node_objs
        after_disks = tuple(engine.disk_objs[d] for d in disks)
        one_before = ClusterState(nodes=(objs[old],), disks=())
        one_after = ClusterState(nodes=(objs[new],), disks=after_disks)
        out = []
        for k, name, check in checks:
            detail = check(one_before, action[4], one_after)
            if detail is not None:
                out.append((k, Violation(name, detail)))
        return tuple(out)
