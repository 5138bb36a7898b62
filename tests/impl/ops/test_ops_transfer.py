"""``raftwright transfer``: leadership transfer by TimeoutNow, end to end.

Reference: Raft thesis section 3.10 (leadership transfer): the leader brings
the target up to date, sends it TimeoutNow, and the target wins the election
of the next term. The command exits 0 once the target leads (in a newer
term), 1 when it did not within --timeout, and 3 for a node id the cluster
does not have.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from impl._metrics import metrics_for

from ._opsutil import OpsCluster

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[3]


async def cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "impl.cli",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_transfer_moves_leadership_and_reports_timeout_and_unknown_ids(tmp_path: Path) -> None:
    async def scenario() -> None:
        # Long timeouts: on a loaded machine short ones cause elections of their own,
        # which would move leadership away from the target after the transfer.
        cluster = OpsCluster(tmp_path, election_timeout_ms=(800, 1600), heartbeat_ms=50)
        try:
            for node_id in cluster.peers:
                await cluster.start(node_id)
            everyone = list(cluster.peers)
            addresses = ",".join(cluster.addresses)
            leader = await cluster.wait_leader(everyone)
            term_before = cluster.nodes[leader].term
            target = next(i for i in everyone if i != leader)

            rc, out, err = await cli("transfer", "--cluster", addresses, "--to", target)
            assert rc == 0, err
            assert f"{target} is the leader" in out
            assert await cluster.wait_leader(everyone) == target
            assert cluster.nodes[target].term > term_before
            # The election shows in the target's metrics.
            text = metrics_for(cluster.nodes[target]).render(cluster.nodes[target].status())
            line = next(x for x in text.splitlines() if x.startswith("raftwright_elections_total"))
            assert float(line.rsplit(" ", 1)[1]) >= 1

            current = await cluster.wait_leader(everyone)
            rc, out, err = await cli("transfer", "--cluster", addresses, "--to", current)
            assert rc == 0, err
            assert "already the leader" in out

            rc, _, err = await cli("transfer", "--cluster", addresses, "--to", "nobody")
            assert rc == 3
            assert "INVALID_ARGUMENT" in err and "nobody" in err

            # A stopped target can never win: exit 1 after --timeout, saying so.
            current = await cluster.wait_leader(everyone)
            down = next(i for i in everyone if i != current)
            await cluster.nodes.pop(down).stop()
            rc, _, err = await cli(
                "transfer", "--cluster", addresses, "--to", down, "--timeout", "2"
            )
            assert rc == 1
            assert f"{down} did not become leader within 2.0s" in err
            assert cluster.leader() != down
        finally:
            await cluster.stop_all()

    asyncio.run(scenario())
