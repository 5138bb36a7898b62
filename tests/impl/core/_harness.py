"""A deterministic in-test network of RaftCore nodes.

Messages go into one FIFO queue; links can be cut; every node's Ready is
persisted into a MemoryStorage (snapshot first, then hard state and entries),
its committed entries are "applied" to a list, and its reads are recorded.
Nothing depends on a clock or on randomness.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from impl._core import (
    CoreConfig,
    Entry,
    EntryKind,
    Message,
    RaftCore,
    ReadState,
    Ready,
    Role,
    SnapshotMeta,
    TimerCommand,
)
from impl._storage import MemoryStorage

CLUSTER = "test-cluster"


@dataclass
class Node:
    """Node is one simulated server: its core, its storage and what it applied."""

    core: RaftCore
    storage: MemoryStorage
    applied: list[bytes] = field(default_factory=list)
    applied_index: int = 0
    reads: list[ReadState] = field(default_factory=list)
    aborted: list[int] = field(default_factory=list)
    timer: TimerCommand | None = None
    readies: int = 0


@dataclass(frozen=True)
class Sent:
    """Sent records one message that left a node."""

    src: str
    dst: str
    message: Message


def role_of(core: RaftCore) -> Role:
    """role_of reads the role through a call, so mypy does not keep an earlier narrowing."""
    return core.role


def ids(n: int) -> tuple[str, ...]:
    return tuple(f"n{i}" for i in range(1, n + 1))


class Net:
    """Net runs a cluster of cores over a deterministic, cuttable network."""

    def __init__(self, voters: Iterable[str] | int, **config: object) -> None:
        self.voters = ids(voters) if isinstance(voters, int) else tuple(voters)
        # every node of the run (a node added later is appended); ``initial`` is the
        # configuration the first nodes start with (thesis 4.1: used until the log has one)
        self.initial = self.voters
        self.core_configs: dict[str, CoreConfig] = {}
        self.config_kwargs = config
        self.nodes: dict[str, Node] = {}
        self.queue: deque[Sent] = deque()
        self.sent: list[Sent] = []
        self.cut_links: set[tuple[str, str]] = set()
        self.down: set[str] = set()
        self.delivered = 0
        self.filter: Callable[[Sent], bool] | None = None  # False = drop
        for node_id in self.voters:
            storage = MemoryStorage()
            self.nodes[node_id] = Node(self._make_core(node_id, storage), storage)

    def config(self, node_id: str) -> CoreConfig:
        if node_id in self.core_configs:
            return self.core_configs[node_id]
        return CoreConfig(node_id, self.initial, CLUSTER, **self.config_kwargs)  # type: ignore[arg-type]

    def add_node(self, node_id: str) -> RaftCore:
        """add_node starts a new server that knows no configuration (``join``, thesis 4.2.1)."""
        kwargs: dict[str, object] = dict(self.config_kwargs)
        self.core_configs[node_id] = CoreConfig(node_id, (), CLUSTER, join=True, **kwargs)  # type: ignore[arg-type]
        storage = MemoryStorage()
        self.nodes[node_id] = Node(self._make_core(node_id, storage), storage)
        self.voters = (*self.voters, node_id)
        return self.nodes[node_id].core

    def _make_core(self, node_id: str, storage: MemoryStorage) -> RaftCore:
        core = RaftCore(self.config(node_id), storage.load())

        def source() -> tuple[SnapshotMeta, bytes]:
            return _require(storage.load_snapshot())

        core.set_snapshot_source(source)
        return core

    # -- access --------------------------------------------------------------
    def __getitem__(self, node_id: str) -> RaftCore:
        return self.nodes[node_id].core

    def leaders(self) -> list[str]:
        return [i for i, n in self.nodes.items() if n.core.role is Role.LEADER]

    def leader(self) -> str:
        found = self.leaders()
        assert len(found) == 1, f"expected one leader, got {found}"
        return found[0]

    # -- faults ----------------------------------------------------------------
    def cut(self, a: str, b: str) -> None:
        self.cut_links |= {(a, b), (b, a)}

    def isolate(self, node_id: str) -> None:
        for other in self.voters:
            if other != node_id:
                self.cut(node_id, other)

    def heal(self) -> None:
        self.cut_links.clear()

    # -- driving ---------------------------------------------------------------
    def flush(self, node_id: str) -> Ready | None:
        """flush does one Ready round for ``node_id``: persist, send, apply, advance."""
        node = self.nodes[node_id]
        core = node.core
        if not core.has_ready():
            return None
        rd = core.ready()
        node.readies += 1
        if rd.snapshot is not None:
            meta, data = rd.snapshot
            node.storage.save_snapshot(meta, data)
            node.applied = [bytes.fromhex(x) for x in json.loads(data)]
            node.applied_index = meta.index
        if rd.hard_state is not None or rd.entries:
            node.storage.save(rd.hard_state, rd.entries)
        for env in rd.messages:
            sent = Sent(node_id, env.to, env.message)
            self.sent.append(sent)
            self.queue.append(sent)
        for e in rd.committed:
            assert e.index == node.applied_index + 1, "committed entries must come in order"
            node.applied_index = e.index
            if e.kind is EntryKind.NORMAL:
                node.applied.append(e.data)
        node.reads.extend(rd.reads)
        node.aborted.extend(rd.aborted_reads)
        if rd.timer is not None:
            node.timer = rd.timer
        core.advance(rd)
        return rd

    def flush_all(self) -> None:
        progress = True
        while progress:
            progress = False
            for node_id in self.voters:
                if node_id not in self.down and self.flush(node_id) is not None:
                    progress = True

    def deliver_one(self) -> Sent | None:
        """deliver_one delivers (or drops) the oldest queued message."""
        while self.queue:
            sent = self.queue.popleft()
            if (sent.src, sent.dst) in self.cut_links or sent.dst in self.down:
                continue
            if self.filter is not None and not self.filter(sent):
                continue
            self.nodes[sent.dst].core.receive(sent.message)
            self.delivered += 1
            self.flush(sent.dst)
            return sent
        return None

    def run(self, max_steps: int = 100_000) -> int:
        """run flushes and delivers until the network is quiet; returns messages delivered."""
        self.flush_all()
        steps = 0
        while self.deliver_one() is not None:
            steps += 1
            assert steps < max_steps, "network did not quiesce"
            self.flush_all()
        return steps

    def drop_all(self) -> None:
        self.flush_all()
        self.queue.clear()

    def timeout(self, node_id: str) -> None:
        self.nodes[node_id].core.election_timeout()
        self.flush(node_id)

    def elect(self, node_id: str) -> None:
        """elect makes ``node_id`` leader by firing its election timer and running the net."""
        self.timeout(node_id)
        self.run()
        assert self[node_id].role is Role.LEADER, self[node_id].status()

    def heartbeat(self, node_id: str | None = None) -> None:
        leader = node_id or self.leader()
        self[leader].heartbeat_timeout()
        self.run()

    def propose(self, data: bytes, node_id: str | None = None) -> int:
        leader = node_id or self.leader()
        index = self[leader].propose(data)
        self.flush(leader)
        return index

    def restart(self, node_id: str) -> None:
        """restart throws away the core's memory and rebuilds it from its storage."""
        node = self.nodes[node_id]
        self.queue = deque(s for s in self.queue if s.dst != node_id)
        node.core = self._make_core(node_id, node.storage)
        snap = node.storage.load_snapshot()
        if snap is not None:
            node.applied = [bytes.fromhex(x) for x in json.loads(snap[1])]
            node.applied_index = snap[0].index
        else:
            node.applied = []
            node.applied_index = 0

    def take_snapshot(self, node_id: str) -> SnapshotMeta:
        """take_snapshot snapshots a node's applied state and compacts its log."""
        node = self.nodes[node_id]
        core = node.core
        index = node.applied_index
        meta = core.snapshot_meta(index)  # carries the configuration at ``index`` (4.1)
        data = json.dumps([d.hex() for d in node.applied]).encode()
        node.storage.save_snapshot(meta, data)
        core.snapshot_taken(meta)
        return meta

    def logs(self, node_id: str) -> list[tuple[int, int]]:
        core = self[node_id]
        return [(e.index, e.term) for e in core.entries_from(core.first_index)]


def _require(value: tuple[SnapshotMeta, bytes] | None) -> tuple[SnapshotMeta, bytes]:
    assert value is not None, "no snapshot stored"
    return value


def entry(index: int, term: int, data: bytes = b"x") -> Entry:
    return Entry(index, term, EntryKind.NORMAL, data)
