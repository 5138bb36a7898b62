"""Every invariant on every int state and edge, memoised by the part of the state it reads.

The explorer must run each of `properties.STATE_INVARIANTS` on every new state and each of
`properties.TRANSITION_INVARIANTS` on every edge. Most of them read only part of a state,
and that part repeats across many states, so a verdict is memoised on exactly the part read:

* the node-only claims (election safety, leader votes, log matching, commit within log,
  leader completeness, state machine safety) read `cluster.nodes` alone: keyed by the node
  numbers;
* one vote per term reads nodes, disks and network: keyed by those; persist-before-send
  reads only the disks and the network (a message's sender's disk): keyed by those two;
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
from spec import ClusterState, Role, VoteRequest, VoteResponse

__all__ = [
    "DISKS_NETWORK",
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
NODES_DISKS_NETWORK: frozenset[Callable[..., str | None]] = frozenset({inv.one_vote_per_term})
DISKS_NETWORK: frozenset[Callable[..., str | None]] = frozenset({inv.persist_before_send})
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
        self._disks_network = [(k, x.name, x.check) for k, x in states if x.check in DISKS_NETWORK]
        self._reads = [(k, x.name, x.check) for k, x in states if x.check in READS_ONLY]
        known = NODE_ONLY | NODES_DISKS_NETWORK | DISKS_NETWORK | READS_ONLY
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
        # Without whole-edge claims, an edge where no node stepped and nothing was delivered
        # (drop, duplicate, crash, partition) cannot break a transition invariant.
        self.has_whole_edge = bool(self._whole_edge)
        self._by_delivery: dict[tuple[int, int, tuple[int, ...], tuple[int, ...]], Found] = {}
        self._by_nodes: dict[tuple[int, ...], Found] = {}
        self._by_network: dict[tuple[tuple[int, ...], ...], Found] = {}
        # Exact screens for the two claims every new state needs (see `_votes_clear`).
        self._screen_votes = [c for _, _, c in self._network] == [inv.one_vote_per_term]
        self._screen_persist = [c for _, _, c in self._disks_network] == [inv.persist_before_send]
        self._node_evidence: dict[int, tuple[tuple[tuple[int, int], int], ...]] = {}
        self._message_evidence: dict[int, tuple[tuple[int, int], int] | tuple[()]] = {}
        self._message_persisted: dict[int, bool] = {}
        self._by_reads: dict[object, Found] = {}
        self._by_pair: dict[tuple[int, int, int], Found] = {}
        self._by_pair_disks: dict[tuple[int, int, int, tuple[int, ...]], Found] = {}

    def state(self, state: IntState) -> list[Violation]:
        """state is `properties.check_state(materialise(state))`.

        Each table is looked up first; the state is materialised at most once, and only when
        some table misses.
        """
        nodes, disks, network, _, _, reads = state
        cluster: ClusterState | None = None
        found = self._by_nodes.get(nodes)
        if found is None:
            cluster = self.engine.materialise(state)
            found = self._by_nodes[nodes] = self._run(self._nodes, cluster)
        more = _NOTHING
        if self._network and not (self._screen_votes and self._votes_clear(state)):
            key = (nodes, disks, network)
            cached = self._by_network.get(key)
            if cached is None:
                if cluster is None:
                    cluster = self.engine.materialise(state)
                cached = self._by_network[key] = self._run(self._network, cluster)
            more = cached
        if self._disks_network and not (self._screen_persist and self._persist_clear(state)):
            if cluster is None:
                cluster = self.engine.materialise(state)
            more += self._run(self._disks_network, cluster)
        if self._reads:
            again = self._by_reads.get(reads)
            if again is None:
                if cluster is None:
                    cluster = self.engine.materialise(state)
                again = self._by_reads[reads] = self._run(self._reads, cluster)
            more += again
        if self._whole:
            if cluster is None:
                cluster = self.engine.materialise(state)
            more += self._run(self._whole, cluster)
        if not found and not more:
            return []
        return [violation for _, violation in sorted((*found, *more), key=lambda f: f[0])]

    # --- screens: exact "certainly holds" tests from memoised parts of a state -------------

    def _votes_clear(self, state: IntState) -> bool:
        """_votes_clear: no voter has two candidates in one term across the state's evidence.

        The evidence is `_invariants._vote_evidence`'s, taken apart: each node's memory and
        tally, each (position, disk), each granted vote reply in flight, memoised per part.
        True means one_vote_per_term holds; False sends the state to the invariant itself.
        """
        seen: dict[tuple[int, int], int] = {}
        node_ev = self._node_evidence
        for a in state[0]:
            items = node_ev.get(a)
            if items is None:
                items = node_ev[a] = self._evidence_of_node(a)
            for key, candidate in items:
                if seen.setdefault(key, candidate) != candidate:
                    return False
        disk_objs = self.engine.disk_objs
        for i, d in enumerate(state[1]):
            disk = disk_objs[d]
            vote = disk.voted_for
            if vote is not None and seen.setdefault((i, disk.term), vote) != vote:
                return False
        msg_ev = self._message_evidence
        for m in state[2]:
            item = msg_ev.get(m)
            if item is None:
                item = msg_ev[m] = self._evidence_of_message(m)
            if item and seen.setdefault(item[0], item[1]) != item[1]:
                return False
        return True

    def _evidence_of_node(self, a: int) -> tuple[tuple[tuple[int, int], int], ...]:
        node = self.engine.node_objs[a]
        out = []
        if node.voted_for is not None:
            out.append(((node.id, node.term), node.voted_for))
        if node.role in (Role.CANDIDATE, Role.LEADER):
            out.extend(((voter, node.term), node.id) for voter in node.votes)
        return tuple(out)

    def _evidence_of_message(self, m: int) -> tuple[tuple[int, int], int] | tuple[()]:
        message = self.engine.msg_objs[m]
        if isinstance(message, VoteResponse) and message.granted and not message.prevote:
            return ((message.src, message.request_term), message.dst)
        return ()

    def _persist_clear(self, state: IntState) -> bool:
        """_persist_clear: persist_before_send passes on every in-flight message by itself.

        The invariant judges each message against its sender's disk alone, so the verdict
        is memoised per (message, disk) and computed by the invariant on a one-message state.
        """
        engine = self.engine
        disks = state[1]
        msg_src = engine.msg_src
        verdicts = self._message_persisted
        for m in state[2]:
            key = m << 32 | disks[msg_src[m]]
            ok = verdicts.get(key)
            if ok is None:
                ok = verdicts[key] = self._persisted(m, disks[msg_src[m]])
            if not ok:
                return False
        return True

    def _persisted(self, m: int, d: int) -> bool:
        engine = self.engine
        message = engine.msg_objs[m]
        disks = [engine.disk_objs[d]] * engine.size
        one = ClusterState(nodes=(), disks=tuple(disks), network=(message,))
        return all(check(one) is None for _, _, check in self._disks_network)

    @staticmethod
    def _run(
        checks: list[tuple[int, str, Callable[..., str | None]]], cluster: ClusterState
    ) -> Found:
        if not checks:
            return _NOTHING
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
