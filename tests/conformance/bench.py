"""Conformance throughput benchmark (a benchmark, not a test; no timing is asserted).

``python -m tests.conformance.bench --recording-cost`` measures what recording costs: the
CPU time of a write workload (batches of 256 writes in flight) on untraced and traced cores.

``python -m tests.conformance.bench [PROPOSALS [JOBS]]`` records a deterministic sans-IO trace
(3 nodes: election, PROPOSALS writes, a read every 10, heartbeats, check-quorum, a
restart) and prints how many events per second ``check_traces`` validates, by wall clock
and by CPU time of this process.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import cast

from impl._core import CoreConfig, RaftCore, StoredState
from impl._trace import TraceWriter, TracingCore
from properties.conformance import check_traces
from tests.conformance._sansio import SansIOCluster


def record(trace_dir: Path, proposals: int) -> None:
    cluster = SansIOCluster(trace_dir)
    cluster.elect("n1")
    for i in range(proposals):
        leader = cluster.leader()
        assert leader is not None
        cluster.cores[leader].propose(b"command %d" % i)
        if i % 10 == 0:
            cluster.cores[leader].read_index(i)
        cluster.drain()
        if i % 7 == 0:
            cluster.heartbeat()
        if i % 25 == 0:
            for core in cluster.cores.values():
                core.check_quorum_timeout()
            cluster.drain()
        if i == proposals // 2:
            cluster.crash("n3")
        if i == proposals // 2 + 20:
            cluster.start("n3")
    cluster.close()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--recording-cost"]:
        plain, traced = recording_cost()
        print(
            f"40 batches of 256 writes (128 bytes), 3 sans-IO cores: untraced {plain:.2f} "
            f"cpu-s, traced {traced:.2f} cpu-s (recording adds {traced / plain - 1:.0%})"
        )
        return 0
    proposals = int(argv[0]) if argv else 2000
    jobs = int(argv[1]) if len(argv) > 1 else 1
    with tempfile.TemporaryDirectory() as tmp:
        record(Path(tmp), proposals)
        cpu = time.process_time()
        result = check_traces([tmp], jobs=jobs)
        cpu = time.process_time() - cpu
    print(result.render().splitlines()[-1])
    if jobs == 1:
        print(f"cpu: {cpu:.2f}s, {result.events / cpu:,.0f} events per cpu-second")
    return 0 if result.ok else 1


class _UntracedCore(RaftCore):
    """_UntracedCore is the plain RaftCore behind the sans-IO cluster's tracing interface."""

    def __init__(self, config: CoreConfig, stored: StoredState, writer: TraceWriter) -> None:
        super().__init__(config, stored)
        writer.close()

    def close_trace(self) -> None:
        pass


def _drive(cluster: SansIOCluster, batches: int, batch: int, size: int) -> None:
    cluster.elect("n1")
    for b in range(batches):
        payload = [bytes([b % 251]) * size] * batch
        cluster.cores["n1"].propose_many(payload)  # a batch of `batch` writes in flight
        cluster.drain()
    cluster.close()


def recording_cost(batches: int = 40, batch: int = 256, size: int = 128) -> tuple[float, float]:
    """recording_cost is the CPU seconds of one write workload untraced and traced."""
    seconds = []
    for core_class in (cast(type[TracingCore], _UntracedCore), TracingCore):
        with tempfile.TemporaryDirectory() as tmp:
            cpu = time.process_time()
            _drive(SansIOCluster(Path(tmp), core_class=core_class), batches, batch, size)
            seconds.append(time.process_time() - cpu)
    return seconds[0], seconds[1]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
