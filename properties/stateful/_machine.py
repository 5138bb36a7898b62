"""ClusterMachine: a Hypothesis rule-based state machine over the spec's cluster model.

Every rule is one or more `spec` cluster actions: node inputs (timers, client requests, reads,
a leader's choice of what to replicate), the adversarial network (deliver any message, drop,
duplicate; reordering is implicit because any in-flight message may go next), partitions and
crashes. After *every* cluster action, not merely every rule, the machine runs all of
`properties.check_state` and `properties.check_transition`; the first violation fails the run
with the whole (shrunk) run rendered by `properties.format_run`.

The cluster step is looked up at call time (`spec.cluster_step`, or the `step_fn` hook), never
captured at import, so a seeded bug patched into a spec module attribute is what runs.

Random choices are drawn as small integers and mapped onto what is currently possible (a node
among the live ones, a message among the deliverable ones). The mapping lists the useful
targets first (leaders for client requests, followers for timeouts), so Hypothesis's bias
towards small integers makes elections, commits and reads actually happen, and shrinking moves
towards them. Rejected inputs are still tried (a leader timeout, a follower asked to replicate):
a bug that enables a disabled input must be reachable too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

import spec
from properties._invariants import check_state, check_transition
from properties._report import format_run
from properties.stateful._coverage import Coverage, RunFlags
from spec import (
    Action,
    AddLearner,
    AppendSentinel,
    CheckQuorum,
    ClientRequest,
    ClusterResult,
    ClusterState,
    Crash,
    Deliver,
    Drop,
    Duplicate,
    ElectionTimeout,
    Heal,
    HeartbeatDue,
    Message,
    NodeInput,
    Partition,
    PromoteLearner,
    ReadRequest,
    Recover,
    RemoveServer,
    Role,
    SendAppend,
    TransferLeadership,
    config_in_use,
    last_index,
    voters_in_use,
)

__all__ = ["MAX_IN_FLIGHT", "MAX_NODES", "ClusterMachine", "StepFn"]

StepFn = Callable[[ClusterState, Action], ClusterResult]
"""StepFn is the cluster step the machine drives: `spec.cluster_step` or a stand-in for it."""

MAX_NODES = 5
MAX_IN_FLIGHT = 48
"""MAX_IN_FLIGHT caps duplication, so the bag (and each invariant check) stays small."""

_T = TypeVar("_T")
_WHO = st.one_of(st.just(0), st.integers(min_value=0, max_value=2 * MAX_NODES - 1))
"""_WHO picks a node: half the time the front of the preference list (a leader, a follower)."""
_SETTLE_ROUNDS = 8
_PICK = st.integers(min_value=0, max_value=255)
_OFFSET = st.one_of(st.none(), st.integers(min_value=-3, max_value=3))
_COUNT = st.one_of(st.none(), st.integers(min_value=0, max_value=4))
_CHANGE = st.sampled_from(("add", "promote", "remove"))
_OUTSIDERS = st.integers(min_value=0, max_value=2)
"""_OUTSIDERS: how many of the universe's nodes start outside the configuration (shrinks to 0,
the all-voters cluster of the paper)."""


def _choose(options: Sequence[_T], index: int) -> _T:
    """_choose maps a drawn integer onto a non-empty list; small integers pick the front."""
    return options[index % len(options)]


class ClusterMachine(RuleBasedStateMachine):
    """ClusterMachine explores runs of a 1- to 5-node cluster and checks every invariant.

    `step_fn` replaces the cluster step (mutants, the broken-step test); `coverage` collects
    what each run reached. `ClusterMachine.TestCase` runs it under pytest with default hooks.
    """

    def __init__(self, step_fn: StepFn | None = None, coverage: Coverage | None = None) -> None:
        super().__init__()
        self._step_fn = step_fn
        self._coverage = coverage
        self._initial: ClusterState | None = None
        self._cluster: ClusterState | None = None
        self._trace: list[tuple[Action, ClusterState]] = []
        self._flags = RunFlags()
        self._steps = 0
        self._next_read = 0
        self._next_payload = 0

    # --- plumbing ------------------------------------------------------------------------

    @property
    def cluster(self) -> ClusterState:
        """cluster is the current state (set by the initialize rule, which always runs first)."""
        assert self._cluster is not None, "the initialize rule has not run"
        return self._cluster

    @property
    def trace(self) -> tuple[tuple[Action, ClusterState], ...]:
        """trace is the run so far: every action that changed the state, with the result."""
        return tuple(self._trace)

    def _cluster_step(self, cluster: ClusterState, action: Action) -> ClusterResult:
        if self._step_fn is not None:
            return self._step_fn(cluster, action)
        return spec.cluster_step(cluster, action)  # looked up now, so patches take effect

    def _apply(self, action: Action) -> bool:
        """_apply runs one cluster action, checks every invariant and fails loudly if one broke.

        Returns whether the action was enabled. A refused action that left the state as it
        was is not recorded: it cannot break anything and would only lengthen the table.
        """
        before = self.cluster
        try:
            result = self._cluster_step(before, action)
        except Exception as crash:
            # Not a violation but a crash of the step itself: keep its type, add the run.
            assert self._initial is not None
            crash.add_note(format_run(self._initial, [*self._trace, (action, before)]))
            crash.add_note(
                f"the step raised on action {len(self._trace) + 1} (state shown is before it)"
            )
            raise
        self._steps += 1
        after = result.state
        if result.rejected is not None and (after is before or after == before):
            return False
        self._trace.append((action, after))
        self._cluster = after
        self._flags.observe(after)
        if result.rejected is None:
            if isinstance(action, Recover):
                self._flags.crashed_and_recovered = True
            elif isinstance(action, NodeInput) and isinstance(action.input, AppendSentinel):
                self._flags.sentinel_on_request = True
        violations = [*check_transition(before, action, after), *check_state(after)]
        if violations:
            detail = "; ".join(str(violation) for violation in violations)
            assert self._initial is not None
            table = format_run(self._initial, self._trace, detail)
            raise AssertionError(
                f"invariant violated at step {len(self._trace)} "
                f"({len(self.cluster.nodes)} nodes):\n{table}"
            )
        return result.rejected is None

    def _live(self) -> list[int]:
        return [i for i in range(self.cluster.size) if i not in self.cluster.crashed]

    def _leaders(self) -> list[int]:
        nodes = self.cluster.nodes
        return [i for i in self._live() if nodes[i].role is Role.LEADER]

    def _leaders_first(self) -> list[int]:
        nodes = self.cluster.nodes
        live = self._live()
        return [i for i in live if nodes[i].role is Role.LEADER] + [
            i for i in live if nodes[i].role is not Role.LEADER
        ]

    def _followers_first(self) -> list[int]:
        """_followers_first: non-leaders first, those that vote in their own config before the
        learners and outsiders, whose election timers are refused (thesis 4.1)."""
        order = list(reversed(self._leaders_first()))
        nodes = self.cluster.nodes
        voting = [
            i for i in order if nodes[i].role is not Role.LEADER and i in voters_in_use(nodes[i])
        ]
        return voting + [i for i in order if i not in voting]

    def _deliverable(self) -> list[Message]:
        cluster = self.cluster
        return [
            message
            for message in cluster.network
            if message.dst not in cluster.crashed and cluster.connected(message.src, message.dst)
        ]

    def _has_leader(self) -> bool:
        """_has_leader gates the leader-only inputs; they still sometimes go to a follower."""
        cluster = self.cluster
        return any(
            node.role is Role.LEADER and node.id not in cluster.crashed for node in cluster.nodes
        )

    def _peers(self, node: int) -> list[int]:
        """_peers lists the other nodes, learners of `node`'s configuration first.

        Learners are where membership bugs hide (an ack that must not count), so the bias
        towards small draws sends them appends of their own; the rest follow in id order.
        """
        learners = [i for i in config_in_use(self.cluster.nodes[node]).learners if i != node]
        return learners + [i for i in range(self.cluster.size) if i != node and i not in learners]

    def _has_live(self) -> bool:
        return len(self.cluster.crashed) < self.cluster.size

    # --- setup ---------------------------------------------------------------------------

    @initialize(
        size=st.integers(min_value=1, max_value=MAX_NODES),
        outsiders=_OUTSIDERS,
        learner=st.booleans(),
    )
    def start(self, size: int, outsiders: int, learner: bool) -> None:
        """start draws the universe (1 to 5 nodes: odd and even) and the initial configuration.

        With `outsiders` > 0 the last nodes start outside the configuration, so membership
        changes can add them (thesis 4.1), and with `learner` the first of them starts as a
        learner (thesis 4.2.1); 0 outsiders is the plain all-voters cluster.
        """
        voters = max(1, size - outsiders)
        if voters == size:
            self._initial = spec.initial_cluster(size)
        else:
            learners = (voters,) if learner else ()
            self._initial = spec.initial_cluster(size, tuple(range(voters)), learners)
        self._cluster = self._initial
        self._flags.size = size
        violations = check_state(self._initial)
        if violations:
            table = format_run(self._initial, (), "; ".join(str(v) for v in violations))
            raise AssertionError(f"invariant violated in the initial state:\n{table}")

    def teardown(self) -> None:
        """teardown reports what this run reached to the coverage tally."""
        if self._coverage is not None and self._cluster is not None:
            self._coverage.record(self._flags, self._steps)

    # --- node inputs ---------------------------------------------------------------------

    @precondition(lambda self: self._has_live())
    @rule(who=_WHO)
    def election_timeout(self, who: int) -> None:
        """election_timeout fires a node's election timer (followers first; section 5.2)."""
        self._apply(NodeInput(_choose(self._followers_first(), who), ElectionTimeout()))

    @precondition(lambda self: self._has_leader())
    @rule(who=_WHO)
    def heartbeat(self, who: int) -> None:
        """heartbeat fires a node's heartbeat timer (leaders first)."""
        self._apply(NodeInput(_choose(self._leaders_first(), who), HeartbeatDue()))

    @precondition(lambda self: self._has_live())
    @rule(who=_WHO)
    def check_quorum(self, who: int) -> None:
        """check_quorum ticks check-quorum / the leader lease on any live node (thesis 6.2)."""
        self._apply(NodeInput(_choose(self._live(), who), CheckQuorum()))

    @precondition(lambda self: self._has_leader())
    @rule(who=_WHO)
    def client_request(self, who: int) -> None:
        """client_request proposes a fresh command (leaders first; section 5.3)."""
        self._next_payload += 1
        payload = f"v{self._next_payload}".encode()
        self._apply(NodeInput(_choose(self._leaders_first(), who), ClientRequest(payload)))

    @precondition(lambda self: self._has_leader())
    @rule(who=_WHO)
    def read_request(self, who: int) -> None:
        """read_request asks for a linearizable read with a fresh id (thesis 6.4)."""
        self._next_read += 1
        self._apply(NodeInput(_choose(self._leaders_first(), who), ReadRequest(self._next_read)))

    @precondition(
        lambda self: (
            len(self._leaders()) == 1
            and self.cluster.size >= 3
            and not self.cluster.partition
            and not self.cluster.crashed
        )
    )
    @rule()
    def deposed_leader_read(self) -> None:
        """deposed_leader_read: the leader is cut off, the others elect and commit, and the old
        leader, which has not heard of it, is asked for a read (thesis 6.4, the stale read that
        ReadIndex exists to prevent). Each step is an ordinary action; any may be refused.
        """
        (old,) = self._leaders()
        rest = frozenset(range(self.cluster.size)) - {old}
        self._apply(Partition((frozenset({old}), rest)))
        for node in sorted(rest):
            self._apply(NodeInput(node, CheckQuorum()))  # their lease on the old leader ends
        self._apply(NodeInput(min(rest), ElectionTimeout()))
        self.settle()
        newer = [i for i in self._leaders() if i != old]
        if newer:
            self._next_payload += 1
            self._apply(NodeInput(newer[0], ClientRequest(f"v{self._next_payload}".encode())))
            for peer in sorted(rest - {newer[0]}):
                self._apply(NodeInput(newer[0], SendAppend(peer)))
            self.settle()
        self._next_read += 1
        self._apply(NodeInput(old, ReadRequest(self._next_read)))

    @precondition(lambda self: len(self._leaders()) > 1)
    @rule()
    def read_at_oldest_leader(self) -> None:
        """read_at_oldest_leader asks the leader of the oldest term for a read (thesis 6.4).

        A deposed leader that has not yet heard of its successor is where stale reads come
        from; leaders-first draws would rarely pick it while a newer leader exists.
        """
        nodes = self.cluster.nodes
        oldest = min(self._leaders(), key=lambda i: nodes[i].term)
        self._next_read += 1
        self._apply(NodeInput(oldest, ReadRequest(self._next_read)))

    @precondition(lambda self: self._has_leader() and self.cluster.size > 1)
    @rule(who=_WHO, peer=_WHO, offset=_OFFSET, count=_COUNT)
    def send_append(self, who: int, peer: int, offset: int | None, count: int | None) -> None:
        """send_append lets a leader replicate a range it chose (any prev, any count).

        `offset` moves prev_index around the peer's next index (None: the default), clamped to
        the leader's log so most choices are enabled; `count` is clamped to what is available.
        """
        node = _choose(self._leaders_first(), who)
        state = self.cluster.nodes[node]
        target = _choose(self._peers(node), peer)
        end = last_index(state.log)
        default = state.next_index[target] - 1 if state.next_index else end
        prev = None if offset is None else min(max(default + offset, 0), end)
        start = default if prev is None else prev
        size = None if count is None else min(count, max(end - start, 0))
        self._apply(NodeInput(node, SendAppend(target, prev, size)))

    @precondition(lambda self: self._has_leader() and self.cluster.size > 1)
    @rule(who=_WHO)
    def broadcast_append(self, who: int) -> None:
        """broadcast_append: a leader sends each peer everything from its next index."""
        node = _choose(self._leaders_first(), who)
        for peer in range(self.cluster.size):
            if peer != node:
                self._apply(NodeInput(node, SendAppend(peer)))

    @precondition(lambda self: self._has_live())
    @rule(who=_WHO)
    def elect(self, who: int) -> None:
        """elect is a timeout (followers first) followed by `settle`: a whole election round."""
        self._apply(NodeInput(_choose(self._followers_first(), who), ElectionTimeout()))
        self.settle()

    @precondition(lambda self: self._has_leader() and self.cluster.size > 1)
    @rule(who=_WHO)
    def replicate(self, who: int) -> None:
        """replicate is `broadcast_append` followed by `settle`: a whole replication round."""
        self.broadcast_append(who)
        self.settle()

    @precondition(lambda self: self._has_leader() and self.cluster.size > 1)
    @rule(who=_WHO, peer=_WHO)
    def replicate_one(self, who: int, peer: int) -> None:
        """replicate_one: a leader replicates to one peer only, then `settle` (a slow network
        where one follower hears first; how uncommitted entries end up on a minority)."""
        node = _choose(self._leaders_first(), who)
        self._apply(NodeInput(node, SendAppend(_choose(self._peers(node), peer))))
        if self._deliverable():
            self.settle()

    @precondition(lambda self: self._has_leader())
    @rule(who=_WHO)
    def commit_round(self, who: int) -> None:
        """commit_round proposes a command on a leader, then replicates and settles."""
        self.client_request(who)
        if self.cluster.size > 1:
            self.replicate(who)

    @precondition(lambda self: self._has_leader())
    @rule(who=_WHO)
    def read_round(self, who: int) -> None:
        """read_round asks a leader for a read, sends heartbeats and settles (thesis 6.4)."""
        self.read_request(who)
        self.heartbeat(who)
        self.settle()

    # --- the network ---------------------------------------------------------------------

    @precondition(lambda self: bool(self._deliverable()))
    @rule(pick=_PICK)
    def deliver(self, pick: int) -> None:
        """deliver hands any one deliverable message to its receiver (so order is arbitrary)."""
        self._apply(Deliver(_choose(self._deliverable(), pick)))

    @precondition(lambda self: bool(self._deliverable()))
    @rule()
    def deliver_all(self) -> None:
        """deliver_all delivers every message in flight now, in bag order (not the replies).

        This is the bias that makes runs interesting: one rule completes a round of prevotes,
        votes or appends, which single deliveries reach only rarely.
        """
        for message in self._deliverable():
            self._apply(Deliver(message))

    @precondition(lambda self: bool(self._deliverable()))
    @rule()
    def settle(self) -> None:
        """settle delivers rounds of messages, replies included, until the network is quiet.

        A whole election (prevotes, votes) or replication round (appends, acks, commit) in one
        rule; bounded, since nothing forbids a spec bug that chatters forever.
        """
        for _ in range(_SETTLE_ROUNDS):
            round_ = self._deliverable()
            if not round_:
                return
            for message in round_:
                self._apply(Deliver(message))

    @precondition(lambda self: bool(self.cluster.network))
    @rule(pick=_PICK)
    def drop(self, pick: int) -> None:
        """drop loses one in-flight message."""
        self._apply(Drop(_choose(self.cluster.network, pick)))

    @precondition(lambda self: 0 < len(self.cluster.network) < MAX_IN_FLIGHT)
    @rule(pick=_PICK)
    def duplicate(self, pick: int) -> None:
        """duplicate adds a second copy of an in-flight message (a retransmission)."""
        self._apply(Duplicate(_choose(self.cluster.network, pick)))

    # --- faults --------------------------------------------------------------------------

    @precondition(lambda self: self.cluster.size > 1 and not self.cluster.partition)
    @rule(order=st.permutations(range(MAX_NODES)), cut=st.integers(min_value=1, max_value=2))
    def partition(self, order: list[int], cut: int) -> None:
        """partition splits the nodes in two: majority | minority, or half | half when even."""
        nodes = [i for i in order if i < self.cluster.size]
        cut = min(cut, self.cluster.size // 2)
        self._apply(Partition((frozenset(nodes[:cut]), frozenset(nodes[cut:]))))

    @precondition(lambda self: self.cluster.size > 1 and not self.cluster.partition)
    @rule(who=_WHO)
    def isolate(self, who: int) -> None:
        """isolate cuts one node (leaders first) off from all the others."""
        node = _choose(self._leaders_first() or list(range(self.cluster.size)), who)
        rest = frozenset(range(self.cluster.size)) - {node}
        self._apply(Partition((frozenset({node}), rest)))

    @precondition(lambda self: bool(self.cluster.partition))
    @rule()
    def heal(self) -> None:
        """heal removes the partition."""
        self._apply(Heal())

    @precondition(lambda self: self._has_live())
    @rule(who=_WHO)
    def crash(self, who: int) -> None:
        """crash stops a live node (leaders first); only its disk survives."""
        self._apply(Crash(_choose(self._leaders_first(), who)))

    @precondition(lambda self: bool(self.cluster.crashed))
    @rule(who=_WHO)
    def recover(self, who: int) -> None:
        """recover restarts a crashed node from its disk."""
        self._apply(Recover(_choose(sorted(self.cluster.crashed), who)))

    # --- membership (thesis chapter 4) and leadership transfer (thesis 3.10) ----------------

    @precondition(lambda self: self._has_leader())
    @rule(who=_WHO, kind=_CHANGE, pick=_PICK)
    def change_membership(self, who: int, kind: str, pick: int) -> None:
        """change_membership asks a leader (leaders first) to add, promote or remove a node.

        The node is drawn among those the change makes sense for in the leader's configuration
        (outsiders to add, learners to promote, members to remove), falling back to any node
        so refusals are exercised too.
        """
        node = _choose(self._leaders_first(), who)
        config = config_in_use(self.cluster.nodes[node])
        universe = list(range(self.cluster.size))
        event: AddLearner | PromoteLearner | RemoveServer
        if kind == "add":
            outside = [i for i in universe if i not in config.members]
            event = AddLearner(_choose(outside or universe, pick))
        elif kind == "promote":
            event = PromoteLearner(_choose(list(config.learners) or universe, pick))
        else:
            event = RemoveServer(_choose(list(config.members), pick))
        self._apply(NodeInput(node, event))

    @precondition(lambda self: self._has_leader() and self.cluster.size > 1)
    @rule(who=_WHO, kind=_CHANGE, pick=_PICK)
    def membership_round(self, who: int, kind: str, pick: int) -> None:
        """membership_round is a change followed by a replication round (thesis 4.1).

        Between the two the leader is asked for a sentinel, as the node does when the 2015
        own-term rule refuses a change; the spec refuses it when the log already holds an
        entry of the leader's term (so after a change that went through), and a refused
        change can go through in a later round, once the sentinel has committed.
        """
        leader = _choose(self._leaders_first(), who)
        self.change_membership(who, kind, pick)
        if self.cluster.nodes[leader].role is Role.LEADER:
            self._apply(NodeInput(leader, AppendSentinel()))
        if self._has_leader():
            self.replicate(who)

    @precondition(lambda self: self._has_leader() and self.cluster.size > 1)
    @rule(who=_WHO, pick=_PICK)
    def transfer(self, who: int, pick: int) -> None:
        """transfer asks a leader to hand over to another voter of its configuration (3.10)."""
        node = _choose(self._leaders_first(), who)
        voters = [i for i in config_in_use(self.cluster.nodes[node]).voters if i != node]
        target = _choose(voters or [i for i in range(self.cluster.size) if i != node], pick)
        self._apply(NodeInput(node, TransferLeadership(target)))

    @precondition(lambda self: self._has_leader() and self.cluster.size > 1)
    @rule(who=_WHO, pick=_PICK)
    def transfer_round(self, who: int, pick: int) -> None:
        """transfer_round is a transfer followed by `settle`: catch-up, TimeoutNow, election."""
        self.transfer(who, pick)
        if self._deliverable():
            self.settle()

    @precondition(lambda self: self._has_leader() and self.cluster.size > 1)
    @rule(who=_WHO, pick=_PICK)
    def abandoned_transfer(self, who: int, pick: int) -> None:
        """abandoned_transfer: a transfer whose election timeout passes before it completes.

        The leader starts the transfer, then its election timer fires and ends it (thesis
        3.10); the catch-up append or TimeoutNow already sent stays in flight, to arrive late.
        """
        node = _choose(self._leaders_first(), who)
        self.transfer(who, pick)
        self._apply(NodeInput(node, ElectionTimeout()))
