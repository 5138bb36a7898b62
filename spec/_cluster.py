"""The cluster model: N nodes, their disks, and an adversarial network.

This is the state space that properties/ explores. The network is a bag of in-flight messages
(a sorted tuple, so equal bags are equal values): any message may be delivered, dropped or
duplicated, in any order. Partitions block delivery across groups; crashed nodes take no steps
and keep only their disk. Every step goes through `spec.step`, and the model enforces the
persist -> send order by writing a step's `persist` output to the node's disk before adding its
messages to the network.

Ghost state (`reads`) records, for each read when it arrived, the highest commit index any node
had: what a linearizable read must cover (thesis section 6.4).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from typing import assert_never

from spec._config import Config
from spec._inputs import (
    AddLearner,
    AppendSentinel,
    CheckQuorum,
    ClientRequest,
    ElectionTimeout,
    HeartbeatDue,
    Input,
    PromoteLearner,
    ReadRequest,
    Receive,
    RemoveServer,
    Restart,
    SendAppend,
    TransferLeadership,
)
from spec._messages import Message, message_sort_key
from spec._outputs import StepResult
from spec._state import Durable, NodeState, initial_node
from spec._step import step

__all__ = [
    "Action",
    "ClusterResult",
    "ClusterState",
    "Crash",
    "Deliver",
    "Drop",
    "Duplicate",
    "Heal",
    "NodeInput",
    "Partition",
    "ReadRecord",
    "Recover",
    "cluster_step",
    "initial_cluster",
]


@dataclass(frozen=True, slots=True, order=True)
class ReadRecord:
    """ReadRecord is ghost state for read safety: one read and what it must cover.

    `must_cover` is the highest commit index of any node when the read arrived; `answered` is
    the read index it was released with, or None while it waits.
    """

    node: int
    read_id: int
    must_cover: int
    answered: int | None = None


@dataclass(frozen=True, slots=True)
class ClusterState:
    """ClusterState is one global state: nodes, disks, network, faults and ghost reads."""

    nodes: tuple[NodeState, ...]
    disks: tuple[Durable, ...]
    network: tuple[Message, ...] = ()
    crashed: frozenset[int] = frozenset()
    partition: tuple[frozenset[int], ...] = ()
    reads: tuple[ReadRecord, ...] = ()

    @property
    def size(self) -> int:
        """size is the number of nodes in the universe (voters, learners and outsiders)."""
        return len(self.nodes)

    def connected(self, a: int, b: int) -> bool:
        """connected says whether the partition lets a message travel from a to b."""
        if not self.partition:
            return True
        return any(a in group and b in group for group in self.partition)


def initial_cluster(
    size: int, voters: tuple[int, ...] | None = None, learners: tuple[int, ...] = ()
) -> ClusterState:
    """initial_cluster is `size` fresh followers at term 0 with empty logs and disks.

    The universe is node ids 0..size-1. By default all of them are voters; `voters` and
    `learners` give a smaller initial configuration (thesis 4.1), and the ids in neither are
    outside the cluster until a membership change adds them. Every node starts knowing the
    same initial configuration.
    """
    universe = tuple(range(size))
    if voters is None and not learners:
        return ClusterState(
            nodes=tuple(initial_node(i, universe) for i in universe),
            disks=tuple(Durable() for _ in universe),
        )
    config = Config(tuple(sorted(universe if voters is None else voters)), tuple(sorted(learners)))
    if not set(config.members) <= set(universe):
        raise ValueError(f"configuration {config} names nodes outside 0..{size - 1}")
    return ClusterState(
        nodes=tuple(replace(initial_node(i, universe), initial_config=config) for i in universe),
        disks=tuple(Durable() for _ in universe),
    )


@dataclass(frozen=True, slots=True)
class NodeInput:
    """NodeInput feeds a local input (timer, client, operator, send decision) to one live node."""

    node: int
    input: (
        ElectionTimeout
        | HeartbeatDue
        | CheckQuorum
        | ClientRequest
        | ReadRequest
        | SendAppend
        | AddLearner
        | PromoteLearner
        | RemoveServer
        | AppendSentinel
        | TransferLeadership
    )


@dataclass(frozen=True, slots=True)
class Deliver:
    """Deliver takes one copy of `message` out of the network and gives it to its receiver."""

    message: Message


@dataclass(frozen=True, slots=True)
class Drop:
    """Drop loses one copy of `message`."""

    message: Message


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Duplicate adds another copy of an in-flight `message`."""

    message: Message


@dataclass(frozen=True, slots=True)
class Crash:
    """Crash stops a node; its volatile state is gone, its disk stays."""

    node: int


@dataclass(frozen=True, slots=True)
class Recover:
    """Recover restarts a crashed node from its disk (the spec's Restart input)."""

    node: int


@dataclass(frozen=True, slots=True)
class Partition:
    """Partition splits the nodes into groups; messages cross no group boundary."""

    groups: tuple[frozenset[int], ...]


@dataclass(frozen=True, slots=True)
class Heal:
    """Heal removes the partition."""


Action = NodeInput | Deliver | Drop | Duplicate | Crash | Recover | Partition | Heal


@dataclass(frozen=True, slots=True)
class ClusterResult:
    """ClusterResult is the next cluster state, the node step behind it (if any), or a refusal."""

    state: ClusterState
    node_step: StepResult | None = None
    rejected: str | None = None


def _add(network: tuple[Message, ...], messages: tuple[Message, ...]) -> tuple[Message, ...]:
    bag = list(network)
    for message in messages:
        bisect.insort(bag, message, key=message_sort_key)
    return tuple(bag)


def _remove(network: tuple[Message, ...], message: Message) -> tuple[Message, ...] | None:
    try:
        at = network.index(message)
    except ValueError:
        return None
    return network[:at] + network[at + 1 :]


def _apply_node_step(
    cluster: ClusterState, node: int, event: Input, network: tuple[Message, ...]
) -> ClusterResult:
    result = step(cluster.nodes[node], event)
    if not result.enabled:
        return ClusterResult(cluster, result, result.rejected)
    nodes = list(cluster.nodes)
    nodes[node] = result.state
    disks = cluster.disks
    if result.persist is not None:  # persist first ...
        disk_list = list(disks)
        disk_list[node] = result.persist
        disks = tuple(disk_list)
    reads = _record_reads(cluster, node, event, result)
    new = replace(
        cluster,
        nodes=tuple(nodes),
        disks=disks,
        network=_add(network, result.messages),  # ... then send
        reads=reads,
    )
    return ClusterResult(new, result)


def _record_reads(
    cluster: ClusterState, node: int, event: Input, result: StepResult
) -> tuple[ReadRecord, ...]:
    reads = list(cluster.reads)
    if isinstance(event, ReadRequest):
        must_cover = max(state.commit for state in cluster.nodes)
        reads.append(ReadRecord(node, event.read_id, must_cover))
    for answer in result.reads:
        for i, record in enumerate(reads):
            if record.node == node and record.read_id == answer.read_id and record.answered is None:
                reads[i] = replace(record, answered=answer.read_index)
                break
    return tuple(sorted(reads))


def cluster_step(cluster: ClusterState, action: Action) -> ClusterResult:
    """cluster_step applies one action; a disabled one leaves the cluster unchanged."""
    match action:
        case NodeInput(node=node, input=event):
            if node in cluster.crashed:
                return ClusterResult(cluster, rejected=f"node {node} is crashed")
            return _apply_node_step(cluster, node, event, cluster.network)
        case Deliver(message=message):
            rest = _remove(cluster.network, message)
            if rest is None:
                return ClusterResult(cluster, rejected="message is not in flight")
            if message.dst in cluster.crashed:
                return ClusterResult(cluster, rejected=f"node {message.dst} is crashed")
            if not cluster.connected(message.src, message.dst):
                return ClusterResult(cluster, rejected="partition blocks this message")
            result = _apply_node_step(cluster, message.dst, Receive(message), rest)
            if result.rejected is not None:
                # An invalid message is still consumed; the node stays as it was.
                return ClusterResult(replace(cluster, network=rest), result.node_step)
            return result
        case Drop(message=message):
            rest = _remove(cluster.network, message)
            if rest is None:
                return ClusterResult(cluster, rejected="message is not in flight")
            return ClusterResult(replace(cluster, network=rest))
        case Duplicate(message=message):
            if message not in cluster.network:
                return ClusterResult(cluster, rejected="message is not in flight")
            return ClusterResult(replace(cluster, network=_add(cluster.network, (message,))))
        case Crash(node=node):
            if node in cluster.crashed:
                return ClusterResult(cluster, rejected=f"node {node} is already crashed")
            return ClusterResult(replace(cluster, crashed=cluster.crashed | {node}))
        case Recover(node=node):
            if node not in cluster.crashed:
                return ClusterResult(cluster, rejected=f"node {node} is running")
            recovered = replace(cluster, crashed=cluster.crashed - {node})
            return _apply_node_step(recovered, node, Restart(cluster.disks[node]), cluster.network)
        case Partition(groups=groups):
            covered = sorted(i for group in groups for i in group)
            if covered != list(range(cluster.size)):
                return ClusterResult(cluster, rejected="a partition must place every node once")
            return ClusterResult(replace(cluster, partition=tuple(sorted(groups, key=sorted))))
        case Heal():
            if not cluster.partition:
                return ClusterResult(cluster, rejected="the network is not partitioned")
            return ClusterResult(replace(cluster, partition=()))
        case _:
            assert_never(action)
