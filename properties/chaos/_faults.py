"""The seeded fault schedule and the injector that carries it out.

``schedule(seed, count, ...)`` is a pure function: the same seed gives the same
list of faults (kind, whether it aims at the leader, which node otherwise, how
long it lasts, the pause before it). Which node leads at a given moment and
how the OS interleaves processes are not under the seed's control, so a rerun
repeats the schedule, not the exact execution.

Kinds: SIGKILL and restart (a crash, section 5.1's fail-stop model plus
durable state), SIGSTOP/SIGCONT (a long GC pause or a frozen VM: the node
wakes up believing it still leads), every node killed at once and restarted
(only durable state survives), a partition (the target cut off from the rest,
or a random minority/majority split), and message loss on every link of one node.

When a pause hits the leader, the injector hands the end of it to ``probe(node)``
(see Workload.probe): a write through the others, then the wake-up, then at once a
read from the woken node, the moment a leader that skips the ReadIndex
confirmation would answer with a stale value.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import assert_never

from ._procs import ChaosCluster

__all__ = ["Fault", "FaultKind", "FaultRecord", "Injector", "schedule", "sleep_unless_stopped"]


class FaultKind(enum.Enum):
    KILL = "kill"
    PAUSE = "pause"
    RESTART_ALL = "restart_all"
    PARTITION = "partition"
    LOSS = "loss"


_WEIGHTS = {
    FaultKind.KILL: 3,
    FaultKind.PAUSE: 2,
    FaultKind.RESTART_ALL: 1,
    FaultKind.PARTITION: 3,
    FaultKind.LOSS: 2,
}


@dataclass(frozen=True, slots=True)
class Fault:
    """Fault is one scheduled fault; ``pick`` chooses the node when not aimed at the leader."""

    kind: FaultKind
    at_leader: bool
    pick: int
    split: bool
    duration_s: float
    gap_s: float


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """FaultRecord is what was injected, on whom, and when (monotonic seconds)."""

    kind: FaultKind
    nodes: tuple[str, ...]
    hit_leader: bool
    start: float
    end: float


def schedule(
    seed: int, count: int, *, mean_gap_s: float = 1.0, mean_duration_s: float = 1.0
) -> list[Fault]:
    """schedule draws ``count`` faults from ``seed`` (deterministic)."""
    rng = random.Random(seed)
    kinds = list(_WEIGHTS)
    weights = [_WEIGHTS[k] for k in kinds]
    out = []
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        out.append(
            Fault(
                kind=kind,
                at_leader=rng.random() < 0.6,
                pick=rng.randrange(1 << 16),
                split=rng.random() < 0.4,
                duration_s=round(rng.uniform(0.3, 1.7) * mean_duration_s, 3),
                gap_s=round(rng.uniform(0.5, 1.5) * mean_gap_s, 3),
            )
        )
    return out


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> bool:
    """sleep_unless_stopped waits ``seconds``, returning early (True) once ``stop`` is set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


class Injector:
    """Injector runs a schedule against a ChaosCluster, recording each fault."""

    def __init__(
        self,
        cluster: ChaosCluster,
        faults: list[Fault],
        seed: int,
        say: Callable[[str], None],
        probe: Callable[[str], Awaitable[str]] | None = None,
    ) -> None:
        self.cluster = cluster
        self._probe = probe
        self.faults = faults
        self.records: list[FaultRecord] = []
        self._rng = random.Random(seed ^ 0x5EED)
        self._say = say
        self.stop = asyncio.Event()

    async def _sleep(self, seconds: float) -> bool:
        return await sleep_unless_stopped(self.stop, seconds)

    async def run(self) -> None:
        for fault in self.faults:
            if await self._sleep(fault.gap_s):
                return
            await self._inject(fault)
            for note in self.cluster.check_exits():
                self._say(f"IMPL FAILURE: {note}")
                node = note.split()[0]
                self._say(self.cluster.log_tail(node))
                self.cluster.start(node)
            if self.stop.is_set():
                return

    async def _inject(self, fault: Fault) -> None:
        cluster = self.cluster
        ids = list(cluster.ids)  # the members now (membership changes run alongside)
        leader = await cluster.leader() if fault.at_leader else None
        target = leader if leader is not None else ids[fault.pick % len(ids)]
        hit_leader = leader is not None
        start = time.monotonic()
        nodes: tuple[str, ...] = (target,)
        match fault.kind:
            case FaultKind.KILL:
                cluster.kill(target)
                await self._sleep(fault.duration_s)
                cluster.start(target)
            case FaultKind.PAUSE:
                cluster.pause(target)
                await self._sleep(fault.duration_s)
                if hit_leader and self._probe is not None:
                    try:  # the probe wakes the leader itself, right before its read
                        self._say(f"probe of woken leader {target}: {await self._probe(target)}")
                    except Exception as exc:  # a probe is evidence, never a harness crash
                        self._say(f"probe of {target} failed: {exc!r}")
                cluster.resume(target)
            case FaultKind.RESTART_ALL:
                nodes = tuple(ids)
                hit_leader = True
                for node in ids:
                    cluster.kill(node)
                await self._sleep(min(fault.duration_s, 0.5))
                cluster.start_all()
            case FaultKind.PARTITION:
                if fault.split:
                    shuffled = list(ids)
                    random.Random(fault.pick).shuffle(shuffled)
                    minority = set(shuffled[: (len(ids) - 1) // 2])
                    if leader is not None:
                        minority.add(leader)
                        while len(minority) > (len(ids) - 1) // 2 and len(minority) > 1:
                            minority.discard(next(n for n in sorted(minority) if n != leader))
                    groups = [minority, set(ids) - minority]
                else:
                    groups = [{target}, set(ids) - {target}]
                nodes = tuple(sorted(groups[0]))
                cluster.partition(groups)
                await self._sleep(fault.duration_s)
                cluster.heal()
            case FaultKind.LOSS:
                cluster.lossy(target, 0.05)
                await self._sleep(fault.duration_s)
                cluster.heal()
            case _:
                assert_never(fault.kind)
        self.records.append(FaultRecord(fault.kind, nodes, hit_leader, start, time.monotonic()))
