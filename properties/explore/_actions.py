"""Which actions the explorer tries in a state, and the bounds that keep the model finite.

Every action is still judged by `spec.cluster_step`: a refused one is simply not an edge. The
enumeration only decides what to *offer*: every distinct in-flight message is offered for
delivery and for loss, duplication only while its budget lasts, crash and recovery of every
node, partitions only when enabled, and node inputs (see `ExploreConfig.prefilter`).

A budget is a tuple of what the run has spent already: client requests, reads, crashes,
duplicates, membership changes, leadership transfers, election timeouts and drops (the last
two only when `max_elections` / `max_drops` bound them; otherwise they stay 0 and split no
states). Client request k carries payload b"k" and read k has read id k, so distinct requests
are distinct entries and each read is tracked on its own.

Membership inputs (AddLearner, PromoteLearner, RemoveServer; thesis 4.1, with the operator's
AppendSentinel that gives a change an entry of the leader's term to wait for) and
TransferLeadership (thesis 3.10) are offered to a leader while their budgets last: with the
prefilter on, only the changes its configuration in use allows in form (add a non-member,
promote a learner, remove a member); `spec.change_blocked` and the catch-up rule are left to
the spec to judge.
"""

from __future__ import annotations

from itertools import combinations

from properties.explore._config import ExploreConfig
from spec import (
    Action,
    AddLearner,
    AppendSentinel,
    CheckQuorum,
    ClientRequest,
    ClusterState,
    Config,
    Crash,
    Deliver,
    Drop,
    Duplicate,
    ElectionTimeout,
    Heal,
    HeartbeatDue,
    Message,
    NodeInput,
    NodeState,
    Partition,
    PromoteLearner,
    ReadRequest,
    Recover,
    RemoveServer,
    Role,
    SendAppend,
    TransferLeadership,
    config_in_use,
)

__all__ = [
    "ZERO_BUDGET",
    "Budget",
    "Menu",
    "charge_slot",
    "enumerate_actions",
    "next_budget",
    "splits",
    "within_bounds",
]

Budget = tuple[int, int, int, int, int, int, int, int]
_REQUESTS, _READS, _CRASHES, _DUPLICATES, _CHANGES, _TRANSFERS, _ELECTIONS, _DROPS = range(8)
ZERO_BUDGET: Budget = (0, 0, 0, 0, 0, 0, 0, 0)


def splits(size: int) -> tuple[tuple[frozenset[int], ...], ...]:
    """splits lists every partition of the nodes into two non-empty sides, each once."""
    everyone = frozenset(range(size))
    found: list[tuple[frozenset[int], ...]] = []
    for k in range(1, size // 2 + 1):
        for side in combinations(range(size), k):
            left = frozenset(side)
            right = everyone - left
            if k * 2 == size and 0 not in left:
                continue  # the same split as its mirror image
            found.append((left, right))
    return tuple(found)


class Menu:
    """Menu enumerates the actions offered in a state, in a deterministic order.

    The order matters: counterexamples are replayed by action index. Action values are
    immutable, so the menu builds each one once: node inputs per (node, budget), and Deliver /
    Drop / Duplicate per message object (cached by identity, holding a reference; `clear`
    between BFS levels bounds the memory).
    """

    def __init__(self, config: ExploreConfig) -> None:
        self.config = config
        self._inputs: dict[
            tuple[int, bool, bool, bool, Config | None, Budget], tuple[Action, ...]
        ] = {}
        self._network: dict[int, tuple[Message, tuple[Action, ...], tuple[Action, ...]]] = {}
        n = config.nodes
        self._crash = tuple(Crash(i) for i in range(n))
        self._recover = tuple(Recover(i) for i in range(n))
        self._splits = tuple(Partition(groups) for groups in splits(n))
        self._heal = Heal()

    def clear(self) -> None:
        """clear forgets the per-message actions (node inputs are few and stay)."""
        self._network.clear()

    def _node_inputs(self, node: NodeState, budget: Budget) -> tuple[Action, ...]:
        config = self.config
        leader = node.role is Role.LEADER
        membership = leader and (config.max_changes > 0 or config.max_transfers > 0)
        key = (
            node.id,
            leader,
            node.heard_from_leader,
            node.transfer_target is not None,
            config_in_use(node) if membership else None,
            budget,
        )
        cached = self._inputs.get(key)
        if cached is not None and not (config.append_ranges and leader):
            return cached
        i = node.id
        offer_all = not config.prefilter
        actions: list[Action] = []
        # A transferring leader's election timeout ends the transfer (thesis 3.10).
        timer = offer_all or not leader or node.transfer_target is not None
        if timer and (config.max_elections is None or budget[_ELECTIONS] < config.max_elections):
            actions.append(NodeInput(i, ElectionTimeout()))
        if config.check_quorum and (offer_all or leader or node.heard_from_leader):
            actions.append(NodeInput(i, CheckQuorum()))
        if offer_all or leader:
            if config.heartbeats:
                actions.append(NodeInput(i, HeartbeatDue()))
            for peer in range(config.nodes):
                if peer == i:
                    continue
                if config.append_ranges and leader:
                    top = len(node.log)
                    for prev in range(top + 1):
                        for count in range(top - prev + 1):
                            actions.append(NodeInput(i, SendAppend(peer, prev, count)))
                else:
                    actions.append(NodeInput(i, SendAppend(peer)))
            if budget[_REQUESTS] < config.max_requests:
                payload = str(budget[_REQUESTS] + 1).encode()
                actions.append(NodeInput(i, ClientRequest(payload)))
            if budget[_READS] < config.max_reads:
                actions.append(NodeInput(i, ReadRequest(budget[_READS] + 1)))
            if membership or offer_all:
                actions.extend(self._membership_inputs(node, budget))
        result = tuple(actions)
        self._inputs[key] = result
        return result

    def _membership_inputs(self, node: NodeState, budget: Budget) -> list[Action]:
        """Configuration changes and transfers a leader may be asked for (thesis 4.1, 3.10)."""
        config = self.config
        i = node.id
        out: list[Action] = []
        in_use = config_in_use(node)
        offer_all = not config.prefilter
        if budget[_CHANGES] < config.max_changes:
            # The operator's sentinel: an entry of the leader's term for a change to wait on.
            out.append(NodeInput(i, AppendSentinel()))
            for peer in range(config.nodes):
                if offer_all or (peer not in in_use.members):
                    out.append(NodeInput(i, AddLearner(peer)))
                if offer_all or peer in in_use.learners:
                    out.append(NodeInput(i, PromoteLearner(peer)))
                if offer_all or peer in in_use.members:
                    out.append(NodeInput(i, RemoveServer(peer)))
        if budget[_TRANSFERS] < config.max_transfers:
            for peer in range(config.nodes):
                if offer_all or (peer != i and peer in in_use.voters):
                    out.append(NodeInput(i, TransferLeadership(peer)))
        return out

    def _message_actions(
        self, message: Message, drop: bool, duplicate: bool
    ) -> tuple[tuple[Action, ...], tuple[Action, ...]]:
        """(Deliver[, Drop][, Duplicate]) and ([Drop][, Duplicate]) for one message."""
        entry = self._network.get(id(message))
        if entry is None:
            lose: tuple[Action, ...] = (Drop(message), Duplicate(message))
            entry = (message, (Deliver(message), *lose), lose)
            self._network[id(message)] = entry
        _, with_deliver, without = entry
        if drop and duplicate:
            return with_deliver, without
        if drop:
            return with_deliver[:2], without[:1]
        if duplicate:
            return with_deliver[::2], without[1:]
        return with_deliver[:1], ()

    def __call__(self, cluster: ClusterState, budget: Budget) -> list[Action]:
        """The actions offered in `cluster` with `budget` spent, in a fixed order."""
        config = self.config
        crashed = cluster.crashed
        actions: list[Action] = []
        for node in cluster.nodes:
            if node.id not in crashed:
                actions.extend(self._node_inputs(node, budget))
        previous: Message | None = None
        duplicate = budget[_DUPLICATES] < config.max_duplicates
        drop = config.max_drops is None or budget[_DROPS] < config.max_drops
        partition = cluster.partition
        for message in cluster.network:  # a sorted bag: equal copies are adjacent
            if message is previous or message == previous:
                continue
            previous = message
            with_deliver, without = self._message_actions(message, drop, duplicate)
            deliverable = message.dst not in crashed and (
                not partition or cluster.connected(message.src, message.dst)
            )
            actions.extend(with_deliver if deliverable else without)
        crash = budget[_CRASHES] < config.max_crashes
        for i in range(cluster.size):
            if i in crashed:
                actions.append(self._recover[i])
            elif crash:
                actions.append(self._crash[i])
        if config.partitions:
            if partition:
                actions.append(self._heal)
            else:
                actions.extend(self._splits)
        return actions


def enumerate_actions(cluster: ClusterState, budget: Budget, config: ExploreConfig) -> list[Action]:
    """enumerate_actions is a one-off `Menu(config)(cluster, budget)`."""
    return Menu(config)(cluster, budget)


def charge_slot(action: Action, config: ExploreConfig) -> int:
    """charge_slot is the budget slot an enabled `action` spends, or -1 for none."""
    match action:
        case NodeInput(input=ClientRequest()):
            return _REQUESTS
        case NodeInput(input=ReadRequest()):
            return _READS
        case NodeInput(input=AddLearner() | PromoteLearner() | RemoveServer()):
            return _CHANGES
        case NodeInput(input=TransferLeadership()):
            return _TRANSFERS
        case NodeInput(input=ElectionTimeout()):
            return -1 if config.max_elections is None else _ELECTIONS
        case Crash():
            return _CRASHES
        case Duplicate():
            return _DUPLICATES
        case Drop():
            return -1 if config.max_drops is None else _DROPS
        case _:
            return -1


def next_budget(budget: Budget, action: Action, config: ExploreConfig) -> Budget:
    """next_budget charges an enabled action to the run's budget."""
    slot = charge_slot(action, config)
    if slot < 0:
        return budget
    spent = list(budget)
    spent[slot] += 1
    return (spent[0], spent[1], spent[2], spent[3], spent[4], spent[5], spent[6], spent[7])


def within_bounds(cluster: ClusterState, config: ExploreConfig) -> bool:
    """within_bounds is the state constraint: terms, log lengths and messages in flight."""
    if len(cluster.network) > config.max_messages:
        return False
    max_term = config.max_term
    max_log = config.max_log
    return all(node.term <= max_term and len(node.log) <= max_log for node in cluster.nodes)
