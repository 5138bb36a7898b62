"""Leadership transfer under a steady write load, on in-process nodes over 127.0.0.1.

Reference: Raft thesis 3.10 — the leader stops taking client requests during a transfer
(step 1), so the target catches up with a log that stops growing, gets TimeoutNow and
wins. Without that refusal the leader keeps appending the clients' writes, the target is
behind when it campaigns and the other voters refuse it (section 5.4.1): chaos finding 8.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from impl import KVClient

from ._load import cluster_under_load
from ._memberutil import MemberCluster, wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


def _leads(c: MemberCluster, target: str, term: int) -> Callable[[], bool | None]:
    """_leads: has ``target`` become leader in a term after ``term``?"""
    return lambda: True if c.leader() == target and c.nodes[target].term > term else None


def test_transfer_under_a_steady_write_load_makes_the_target_leader(tmp_path: Path) -> None:
    """Reference: thesis 3.10 — three transfers in a row, each while 6 clients write.

    Each transfer is asked once and must make its target leader within 3 s (a quiet
    cluster needs about 0.1 s). Writes refused meanwhile are retried by the clients
    (UNAVAILABLE), so no client fails and every acknowledged write is readable after.
    Before the fix 3 of 4 runs timed out: the leader kept appending, and its check-quorum
    tick, due a few ms after the request, ended the transfer before the target caught up.
    """

    async def main() -> None:
        async with cluster_under_load(tmp_path, 50, spare=0) as (c, _, load):
            for _ in range(3):
                leader_id = await c.wait_leader(["n1", "n2", "n3"])
                leader = c.nodes[leader_id]
                target = min(i for i in ("n1", "n2", "n3") if i != leader_id)
                term = leader.term
                leader.transfer_leadership(target)
                await wait_for(
                    _leads(c, target, term), 3.0, f"transfer {leader_id} -> {target} under load"
                )
                await load.wait_acked(30)  # the new leader takes writes
            await load.stop()
            async with KVClient(list(c.initial.values()), deadline_s=15) as kv:
                for key in sorted(load.acked_keys)[:: max(1, len(load.acked_keys) // 40)]:
                    assert await kv.get(key) == load.acked_keys[key], key

    asyncio.run(main())
