"""Concurrent KV clients that record every operation for the linearizability check.

Each client is one ``KVClient`` in its own asyncio task (a KVClient sends its
writes one at a time, so concurrency comes from several clients). Operations
go to a few shared keys (contention: what linearizability is about) and to
write-once keys ``d-<client>-<n>`` that nobody overwrites, so durability can
be checked directly: every acknowledged write-once key must be readable after
the whole cluster restarts.

Outcomes: an answer is OK; ``NoLeaderError`` (the client's deadline passed)
or any other client error is UNKNOWN, since an earlier attempt may have been
committed; nothing is classified FAILED, because the client cannot tell a
refused write from a lost answer.

Membership changes move the cluster: ``set_addresses`` hands the workload the members'
addresses after each change, and every client moves to a new ``KVClient`` on the new
list between two operations (never during one, so an operation's outcome is its own).
"""

from __future__ import annotations

import asyncio
import bisect
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from impl import ClientError, KVClient
from properties.linearizability import History, Operation, OpKind, Outcome

__all__ = ["Workload", "WorkloadConfig"]


@dataclass(frozen=True, slots=True)
class WorkloadConfig:
    """WorkloadConfig: client count, key space, the op mix and per-op deadline."""

    clients: int = 6
    keys: int = 6
    write_once_share: float = 0.15
    put_share: float = 0.45
    delete_share: float = 0.1
    op_deadline_s: float = 3.0
    rpc_timeout_s: float = 1.0


@dataclass
class Workload:
    """Workload runs the clients until ``stop`` is set."""

    addresses: list[str]
    config: WorkloadConfig
    seed: int
    history: History = field(default_factory=History)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    acked_once: dict[str, bytes] = field(default_factory=dict)
    issued: int = 0
    errors: int = 0
    probes: int = 0
    address_version: int = 0

    def set_addresses(self, addresses: list[str]) -> None:
        """set_addresses: the clients dial these from their next operation on."""
        if addresses and addresses != self.addresses:
            self.addresses = list(addresses)
            self.address_version += 1

    @property
    def done(self) -> bool:
        return self.stop.is_set()

    async def run(self) -> None:
        await asyncio.gather(*(self._client(i) for i in range(self.config.clients)))

    async def _client(self, index: int) -> None:
        cfg = self.config
        rng = random.Random(self.seed * 7919 + index)
        n = 0
        while not self.done:
            version = self.address_version
            async with KVClient(
                self.addresses, deadline_s=cfg.op_deadline_s, rpc_timeout_s=cfg.rpc_timeout_s
            ) as client:
                n = await self._ops(client, index, rng, n, version)

    async def _ops(
        self, client: KVClient, index: int, rng: random.Random, n: int, version: int
    ) -> int:
        """_ops runs operations on one client until the run stops or the members change."""
        cfg = self.config
        while not self.done and self.address_version == version:
            self.issued += 1
            n += 1
            r = rng.random()
            if r < cfg.write_once_share:
                key = f"d-{index}-{n}"
                value = f"{index}:{n}".encode()
                if await self._put(client, index, key, value):
                    self.acked_once[key] = value
                continue
            key = f"k{rng.randrange(cfg.keys)}"
            r = rng.random()
            if r < cfg.put_share:
                await self._put(client, index, key, f"{index}:{n}".encode())
            elif r < cfg.put_share + cfg.delete_share:
                await self._delete(client, index, key)
            else:
                await self.get(client, index, key)
        return n

    async def _put(self, client: KVClient, index: int, key: str, value: bytes) -> bool:
        pending = self.history.begin(index, OpKind.PUT, key, value)
        try:
            await client.put(key, value)
        except ClientError:
            self.errors += 1
            pending.unknown()
            return False
        except asyncio.CancelledError:
            pending.unknown()
            raise
        pending.ok()
        return True

    async def _delete(self, client: KVClient, index: int, key: str) -> None:
        pending = self.history.begin(index, OpKind.DELETE, key)
        try:
            existed = await client.delete(key)
        except ClientError:
            self.errors += 1
            pending.unknown()
            return
        except asyncio.CancelledError:
            pending.unknown()
            raise
        pending.ok(existed)

    async def get(self, client: KVClient, index: int, key: str) -> Operation:
        """get reads key and records it (also used for the final reads after the run)."""
        pending = self.history.begin(index, OpKind.GET, key)
        try:
            value = await client.get(key)
        except ClientError:
            self.errors += 1
            return pending.unknown()
        except asyncio.CancelledError:
            pending.unknown()
            raise
        return pending.ok(value)

    async def probe(self, others: list[str], woken: str, resume: Callable[[], None]) -> str:
        """probe: the stale-read scenario around a frozen leader (thesis 6.4).

        While the old leader is still frozen, write a fresh value of the key ``probe``
        through the other nodes (a new leader, once they have elected one); then wake the
        old leader and at once read ``probe`` from it alone. A correct node confirms it
        still leads (ReadIndex) or refuses; one that skips the confirmation answers with
        the value it had, which the linearizability check then rejects. Returns what
        happened, for the progress output.
        """
        self.probes += 1
        value = f"probe:{self.probes}".encode()
        async with KVClient(others, deadline_s=2.0, rpc_timeout_s=0.5) as writer:
            written = await self._put(writer, 3000, "probe", value)
        resume()
        async with KVClient([woken], deadline_s=1.0, rpc_timeout_s=0.5) as reader:
            op = await self.get(reader, 3001, "probe")
        return f"write {'ok' if written else 'unknown'}, read {op.describe()}"

    def writes_ok_after(self, instant: float) -> float | None:
        """writes_ok_after: completion time of the first acknowledged write after ``instant``."""
        return first_after(self.write_completions(), instant)

    def write_completions(self) -> list[float]:
        """write_completions: sorted completion times of every acknowledged write.

        Computed once per run and bisected per fault: the nightly size has 100,000
        operations and 1,000 faults, too many for a scan per fault.
        """
        return sorted(
            op.complete
            for op in self.history.operations
            if op.outcome is Outcome.OK and op.kind is not OpKind.GET
        )


def first_after(completions: list[float], instant: float) -> float | None:
    """first_after: the first of the sorted ``completions`` strictly after ``instant``."""
    i = bisect.bisect_right(completions, instant)
    return completions[i] if i < len(completions) else None
