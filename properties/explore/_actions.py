"""Which actions the explorer tries in a state, and the bounds that keep the model finite.

Every action is still judged by `spec.cluster_step`: a refused one is simply not an edge. The
enumeration only decides what to *offer*: every distinct in-flight message is offered for
delivery and for loss, duplication only while its budget lasts, crash and recovery of every
node, partitions only when enabled, and node inputs (see `ExploreConfig.prefilter`).

A budget is a tuple (client requests, reads, crashes, duplicates) already spent on the run.
Client request k carries payload b"k" and read k has read id k, so distinct requests are
distinct entries and each read is tracked on its own.
"""

from __future__ import annotations

from itertools import combinations

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
    Message,
    NodeInput,
    Partition,
    ReadRequest,
    Recover,
    Role,
    SendAppend,
)

from properties.explore._config import ExploreConfig

__all__ = ["Budget", "enumerate_actions", "next_budget", "splits", "within_bounds"]

Budget = tuple[int, int, int, int]
_REQUESTS, _READS, _CRASHES, _DUPLICATES = range(4)


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


def _node_inputs(
    cluster: ClusterState, budget: Budget, config: ExploreConfig
) -> list[Action]:
    actions: list[Action] = []
    request = budget[_REQUESTS] < config.max_requests
    read = budget[_READS] < config.max_reads
    payload = str(budget[_REQUESTS] + 1).encode()
    read_id = budget[_READS] + 1
    for node in cluster.nodes:
        i = node.id
        if i in cluster.crashed:
            continue
        leader = node.role is Role.LEADER
        offer_all = not config.prefilter
        if offer_all or not leader:
            actions.append(NodeInput(i, ElectionTimeout()))
        if config.check_quorum and (offer_all or leader or node.heard_from_leader):
            actions.append(NodeInput(i, CheckQuorum()))
        if offer_all or leader:
            if config.heartbeats:
                actions.append(NodeInput(i, HeartbeatDue()))
            for peer in range(cluster.size):
                if peer == i:
                    continue
                if config.append_ranges and leader:
                    top = len(node.log)
                    for prev in range(top + 1):
                        for count in range(top - prev + 1):
                            actions.append(NodeInput(i, SendAppend(peer, prev, count)))
                else:
                    actions.append(NodeInput(i, SendAppend(peer)))
            if request:
                actions.append(NodeInput(i, ClientRequest(payload)))
            if read:
                actions.append(NodeInput(i, ReadRequest(read_id)))
    return actions


def enumerate_actions(cluster: ClusterState, budget: Budget, config: ExploreConfig) -> list[Action]:
    """enumerate_actions lists the actions offered in `cluster`, in a deterministic order.

    The order matters: counterexamples are replayed by action index.
    """
    actions = _node_inputs(cluster, budget, config)
    previous: Message | None = None
    duplicate = budget[_DUPLICATES] < config.max_duplicates
    for message in cluster.network:  # a sorted bag: equal copies are adjacent
        if message == previous:
            continue
        previous = message
        if message.dst not in cluster.crashed and cluster.connected(message.src, message.dst):
            actions.append(Deliver(message))
        actions.append(Drop(message))
        if duplicate:
            actions.append(Duplicate(message))
    crash = budget[_CRASHES] < config.max_crashes
    for i in range(cluster.size):
        if i in cluster.crashed:
            actions.append(Recover(i))
        elif crash:
            actions.append(Crash(i))
    if config.partitions:
        if cluster.partition:
            actions.append(Heal())
        else:
            actions.extend(Partition(groups) for groups in splits(cluster.size))
    return actions


def next_budget(budget: Budget, action: Action) -> Budget:
    """next_budget charges an enabled action to the run's budget."""
    match action:
        case NodeInput(input=ClientRequest()):
            return (budget[0] + 1, budget[1], budget[2], budget[3])
        case NodeInput(input=ReadRequest()):
            return (budget[0], budget[1] + 1, budget[2], budget[3])
        case Crash():
            return (budget[0], budget[1], budget[2] + 1, budget[3])
        case Duplicate():
            return (budget[0], budget[1], budget[2], budget[3] + 1)
        case _:
            return budget


def within_bounds(cluster: ClusterState, config: ExploreConfig) -> bool:
    """within_bounds is the state constraint: terms, log lengths and messages in flight."""
    if len(cluster.network) > config.max_messages:
        return False
    max_term = config.max_term
    max_log = config.max_log
    for node in cluster.nodes:
        if node.term > max_term or len(node.log) > max_log:
            return False
    return True
