"""Fresh traces recorded under faults from real `raftwright node` processes conform.

Reference: Raft paper sections 5.1 (crash and restart: only durable state survives), 5.2
(elections after a partition heals), 5.3-5.4 (log repair and safety), 7 (snapshots).
The chaos harness (properties.chaos) runs three node processes behind link proxies with a
seeded schedule: a partition and heal, then every node SIGKILLed at once and restarted.
Every trace is then replayed through the spec here, independently of the harness's own check,
so the corpus in tests/traces never goes stale against the implementation.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from properties.conformance import check_traces
from tests.conformance._chaos_corpus import RUNS, record_chaos_run

pytestmark = [pytest.mark.network, pytest.mark.slow]


@pytest.mark.timeout(150)
def test_fresh_traces_under_partition_and_restart_of_every_node_conform(tmp_path: Path) -> None:
    # seed 33 schedules a partition, then a restart of all nodes, first (see _chaos_corpus);
    # together with their gaps they take about 4 s of the 8
    run = replace(RUNS["chaos-partition-restart-all"], faults=2, duration_s=8)
    traces, kinds = asyncio.run(record_chaos_run(run, tmp_path, say=lambda _: None))
    assert kinds == ["partition", "restart_all"]
    result = check_traces([traces])
    assert result.ok, result.render()
    assert result.runs == 1 and result.nodes == 3
    assert result.spec_steps > 100
    for path in sorted(traces.iterdir()):
        # every node started, was SIGKILLed with the others and restarted from its disk
        starts = path.read_text().count('{"i":"start",')
        assert starts >= 2, path
