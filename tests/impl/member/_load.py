"""A steady client write load for the loopback membership and transfer tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from impl import KVClient

from ._memberutil import MemberCluster, wait_for

__all__ = ["WRITERS", "Load", "cluster_under_load"]

WRITERS = 6


class Load:
    """Load: WRITERS KV clients putting without pause; counts acknowledged writes."""

    def __init__(self, addresses: list[str]) -> None:
        self._addresses = addresses
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = False
        self.acked = 0
        self.acked_keys: dict[str, bytes] = {}

    async def _writer(self, k: int) -> None:
        async with KVClient(self._addresses, deadline_s=20) as kv:
            j = 0
            while not self._stop:
                key, value = f"w{k}-{j}", f"v{j}".encode()
                await kv.put(key, value)
                self.acked += 1
                self.acked_keys[key] = value
                j += 1

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._writer(k)) for k in range(WRITERS)]

    async def wait_acked(self, count: int, timeout_s: float = 15.0) -> None:
        target = self.acked + count
        await wait_for(lambda: True if self.acked >= target else None, timeout_s, "writes")

    async def stop(self) -> None:
        self._stop = True
        done = await asyncio.gather(*self._tasks, return_exceptions=True)
        errors = [d for d in done if isinstance(d, BaseException)]
        assert not errors, errors


@contextlib.asynccontextmanager
async def cluster_under_load(
    tmp_path: Path, warmup: int, *, spare: int = 1
) -> AsyncIterator[tuple[MemberCluster, str, Load]]:
    """cluster_under_load: n1-n3 running, a leader elected and ``warmup`` writes acknowledged
    under a running Load; yields (cluster, leader id, load) and stops both after."""
    c = MemberCluster(tmp_path, spare=spare)
    load: Load | None = None
    try:
        await c.start_initial()
        leader_id = await c.wait_leader(["n1", "n2", "n3"])
        load = Load(list(c.initial.values()))
        load.start()
        await load.wait_acked(warmup)
        yield c, leader_id, load
    finally:
        if load is not None:
            with contextlib.suppress(BaseException):
                await load.stop()
        await c.stop_all()
