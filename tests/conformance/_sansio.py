"""A deterministic sans-IO cluster of TracingCores: the Ready loop without sockets or clocks.

Each step drains every node's Ready in the order the Ready demands (persist, then report
``persisted``, send, apply, ``advance``) and delivers messages first in, first out, so a
scenario always produces the same traces. Tests use it for exact, repeatable traces, for a
deliberately broken core, and for the throughput benchmark.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from pathlib import Path

from impl._core import CoreConfig, Envelope, ProtocolError, StoredState
from impl._trace import TraceWriter, TracingCore, trace_path

CLUSTER_ID = "sansio"


class SansIOCluster:
    """SansIOCluster runs n TracingCores (or a subclass) writing traces to ``trace_dir``."""

    def __init__(
        self, trace_dir: Path, n: int = 3, core_class: type[TracingCore] = TracingCore
    ) -> None:
        self.ids = tuple(f"n{i + 1}" for i in range(n))
        self.trace_dir = trace_dir
        self.core_class = core_class
        self.cores: dict[str, TracingCore] = {}
        self.disks: dict[str, StoredState] = {}
        self.network: deque[tuple[str, Envelope]] = deque()
        self.down: set[str] = set()
        # drop(src, envelope) -> True loses that message on the way (a lossy link)
        self.drop: Callable[[str, Envelope], bool] | None = None
        for node_id in self.ids:
            self.start(node_id)

    def start(self, node_id: str, *, join: bool = False) -> None:
        """start boots a node from its disk; ``join`` boots one that knows no configuration
        (it waits for a leader to add it, thesis 4.2.1)."""
        stored = self.disks.get(node_id, StoredState.empty())
        if join:
            config = CoreConfig(node_id=node_id, voters=(), cluster_id=CLUSTER_ID, join=True)
        else:
            config = CoreConfig(node_id=node_id, voters=self.ids, cluster_id=CLUSTER_ID)
        writer = TraceWriter(trace_path(self.trace_dir, node_id))
        self.cores[node_id] = self.core_class(config, stored, writer)
        self.down.discard(node_id)

    def crash(self, node_id: str) -> None:
        """crash stops a node; its disk keeps what its Readies made durable."""
        core = self.cores.pop(node_id)
        self.disks[node_id] = StoredState(
            core.hard_state, None, tuple(core.entries_from(1, None)[: core.durable_index])
        )
        core.close_trace()
        self.down.add(node_id)

    def promote_caught_up(self) -> None:
        """promote_caught_up does what the Node driver does after each Ready: promote every
        learner the leader reports caught up (thesis 4.2.1), then runs to quiet."""
        leader = self.leader()
        if leader is None:
            return
        core = self.cores[leader]
        for learner in core.caught_up_learners():
            core.promote_learner(learner)
        self.drain()

    def run_until_ready(self, node_id: str, limit: int = 10_000) -> None:
        """run_until_ready runs other nodes' Readies and deliveries until node_id has one."""
        for _ in range(limit):
            if self.cores[node_id].has_ready():
                return
            for other, core in list(self.cores.items()):
                if other != node_id and core.has_ready():
                    self._handle_ready(other, core)
            if self.network:
                _src, env = self.network.popleft()
                target = self.cores.get(env.to)
                if target is not None:
                    with contextlib.suppress(ProtocolError):
                        target.receive(env.message)
            elif not any(c.has_ready() for c in self.cores.values()):
                raise AssertionError(f"the cluster went quiet before {node_id} had a Ready")
        raise AssertionError(f"{node_id} had no Ready after {limit} steps")

    def crash_after_write(self, node_id: str) -> int:
        """crash_after_write: the node's storage finishes its pending Ready's write, then the
        process dies before the driver reports ``persisted`` (a SIGKILL between the fsync
        and the next trace event). Returns the last log index that reached the disk.
        """
        core = self.cores.pop(node_id)
        ready = core.ready()
        assert ready.entries, "crash_after_write needs a Ready that writes entries"
        last = ready.entries[-1].index
        self.disks[node_id] = StoredState(
            core.hard_state, None, tuple(core.entries_from(1, None)[:last])
        )
        core.close_trace()
        self.down.add(node_id)
        return last

    def close(self) -> None:
        for core in self.cores.values():
            core.close_trace()

    def leader(self) -> str | None:
        leaders = [(c.term, i) for i, c in self.cores.items() if c.role.value == "leader"]
        return max(leaders)[1] if leaders else None

    def drain(self, limit: int = 100_000, until: Callable[[], bool] | None = None) -> None:
        """drain runs Readies and deliveries until the cluster is quiet (or ``until()``)."""
        for _ in range(limit):
            if until is not None and until():
                return
            busy = False
            for node_id, core in list(self.cores.items()):
                if core.has_ready():
                    busy = True
                    self._handle_ready(node_id, core)
            if self.network:
                busy = True
                _src, env = self.network.popleft()
                target = self.cores.get(env.to)
                if target is not None:
                    with contextlib.suppress(ProtocolError):
                        target.receive(env.message)
            if not busy:
                return
        raise AssertionError("cluster did not quiesce")

    def _handle_ready(self, node_id: str, core: TracingCore) -> None:
        ready = core.ready()
        if ready.entries:
            last = ready.entries[-1]
            core.persisted(last.index, last.term)
        for env in ready.messages:
            if self.drop is None or not self.drop(node_id, env):
                self.network.append((node_id, env))
        if ready.committed:
            core.applied(ready.committed[-1].index)
        core.advance(ready)

    def elect(self, node_id: str) -> None:
        """elect times node_id out and lets the election run to the end."""
        self.cores[node_id].election_timeout()
        self.drain()

    def heartbeat(self) -> None:
        for core in self.cores.values():
            core.heartbeat_timeout()
        self.drain()
