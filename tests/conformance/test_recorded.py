"""Fresh traces from real in-process clusters (grpc on 127.0.0.1, SQLite) conform.

Reference: Raft paper sections 5.2 (elections), 5.3 (replication), 5.4 (safety), 7
(snapshots), thesis 6.4 (ReadIndex) and 9.6 (prevote): every traced step of every node is
replayed through the spec.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from impl._core import RaftCore
from impl._trace import TracingCore
from properties.conformance import check_traces
from tests.conformance._multiprocess import record_multiprocess
from tests.conformance._record import SCENARIOS, TracedCluster, record

pytestmark = pytest.mark.network


@pytest.mark.parametrize("name", ["election", "failover", "restart", "snapshot-restart"])
def test_fresh_cluster_traces_conform(tmp_path: Path, name: str) -> None:
    traces = tmp_path / "traces"
    asyncio.run(record(SCENARIOS[name], tmp_path / "data", traces))
    result = check_traces([traces])
    assert result.ok, result.render()
    assert result.nodes == 3
    assert not result.global_only, result.render()
    assert result.spec_steps > 20


def test_snapshot_catch_up_is_checked_globally_after_the_install(tmp_path: Path) -> None:
    """Reference: section 7; the spec has no InstallSnapshot, so that follower is global-only."""
    traces = tmp_path / "traces"
    asyncio.run(record(SCENARIOS["snapshot"], tmp_path / "data", traces))
    result = check_traces([traces])
    assert result.ok, result.render()
    assert all("InstallSnapshot" in text for text in result.global_only)


def test_restart_from_a_snapshot_after_an_install_conforms(tmp_path: Path) -> None:
    """Reference: section 7; after the install and the restart from it, global-only, but the
    Ready discipline is checked again from what the restart loaded."""
    traces = tmp_path / "traces"
    asyncio.run(record(SCENARIOS["snapshot-install-restart"], tmp_path / "data", traces))
    result = check_traces([traces])
    assert result.ok, result.render()
    assert result.relaxations["global only: restart from a snapshot the checker never saw built"]


def test_tracing_is_off_unless_asked(tmp_path: Path) -> None:
    """Without trace_dir the node runs the plain core: no per-step cost, no file."""

    async def core_type(trace_dir: Path | None, data: Path) -> type[RaftCore]:
        cluster = TracedCluster(data, trace_dir, n=1)
        node = await cluster.start("n1")
        try:
            assert node._core is not None
            return type(node._core)
        finally:
            await cluster.stop_all()

    assert asyncio.run(core_type(None, tmp_path / "plain")) is RaftCore
    assert asyncio.run(core_type(tmp_path / "traces", tmp_path / "traced")) is TracingCore
    assert [p.name for p in (tmp_path / "traces").iterdir()] == ["node-n1.ndjson"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_multiprocess_run_with_sigkill_conforms(tmp_path: Path) -> None:
    """Three `raftwright node --trace-dir` processes; the leader is SIGKILLed and restarted."""
    traces = tmp_path / "traces"
    record_multiprocess(tmp_path / "data", traces)
    result = check_traces([traces])
    assert result.ok, result.render()
    segments = sum(p.read_text().count('"format":"raftwright-trace"') for p in traces.iterdir())
    assert segments == 4, "three starts and one restart"
