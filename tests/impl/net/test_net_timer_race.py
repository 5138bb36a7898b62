"""An election-timer fire that races a new leader's STOP never reaches the core.

The Ready that makes a node leader stops its election timer only after that Ready's storage
write; a deadline that passes during the write used to run the timer callback on a leader,
which the core ignored but the trace recorded, and the spec refuses a timeout on a leader.
Reference: section 5.2 (only followers and candidates time out into an election).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from impl import KVStateMachine, Node, NodeConfig
from impl._kv import encode_put

from ._netutil import free_ports, wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def _inputs(trace: Path) -> list[str]:
    return [json.loads(line).get("i", "header") for line in trace.read_text().splitlines() if line]


def test_timer_fire_on_a_leader_is_not_a_step(tmp_path: Path) -> None:
    asyncio.run(_fire_on_a_leader(tmp_path))


async def _fire_on_a_leader(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    config = NodeConfig(
        node_id="solo",
        cluster_id="timer-race",
        listen=f"127.0.0.1:{port}",
        peers={"solo": f"127.0.0.1:{port}"},
        data_dir=tmp_path / "data",
        trace_dir=tmp_path / "traces",
        election_timeout_ms=(50, 100),
        heartbeat_ms=20,
    )
    node = Node(config, KVStateMachine())
    await node.start()
    try:
        await wait_for(lambda: node.role.value == "leader" or None, 10, "self-election")
        # A committed write flushes every event up to the Ready that made us leader (the
        # role changes in the core before that Ready's write finishes).
        await node.propose(encode_put("k", b"first", "", 0))
        trace = tmp_path / "traces" / "node-solo.ndjson"
        before = _inputs(trace).count("timeout")
        node._on_election_timer()  # what the timer does when its deadline passes
        await node.propose(encode_put("k", b"v", "", 0))
        assert node.role.value == "leader"
        assert _inputs(trace).count("timeout") == before
    finally:
        await node.stop()
