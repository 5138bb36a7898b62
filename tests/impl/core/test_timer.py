"""The seed's versioned election timer (asyncio). Time-bounded, short timeouts."""

from __future__ import annotations

import asyncio
import random

import pytest

from impl._timer import ElectionTimer


def _timer(fired: list[float], base_ms: float = 20, jitter_ms: float = 10) -> ElectionTimer:
    loop = asyncio.get_running_loop()
    return ElectionTimer(
        base_ms, jitter_ms, rng=random.Random(1), on_fire=lambda: fired.append(loop.time())
    )


def test_fires_once_after_reset() -> None:
    async def main() -> None:
        fired: list[float] = []
        t = _timer(fired)
        start = asyncio.get_running_loop().time()
        t.reset()
        assert t.armed
        await asyncio.sleep(0.12)
        assert len(fired) == 1
        assert 0.02 <= fired[0] - start < 0.1
        assert t.deadline is None  # a fired timer is disarmed until the next reset
        t.close()

    asyncio.run(asyncio.wait_for(main(), 5))


def test_reset_before_deadline_postpones() -> None:
    # Wide margins (300 ms timer, 150 ms steps): a loaded machine oversleeps by tens of ms.
    async def main() -> None:
        fired: list[float] = []
        t = _timer(fired, base_ms=300, jitter_ms=0)
        loop = asyncio.get_running_loop()
        t.reset()
        await asyncio.sleep(0.15)
        last_reset = loop.time()
        t.reset()
        version = t.version
        await asyncio.sleep(0.2)
        # The first deadline (300 ms after the first reset) passed, but its version is stale.
        if loop.time() - last_reset < 0.3:
            assert fired == []
        await asyncio.sleep(0.4)
        assert len(fired) == 1 and fired[0] - last_reset >= 0.3
        assert t.version == version + 1
        t.close()

    asyncio.run(asyncio.wait_for(main(), 5))


def test_stop_prevents_fire() -> None:
    async def main() -> None:
        fired: list[float] = []
        t = _timer(fired)
        t.reset()
        t.stop()
        assert not t.armed
        await asyncio.sleep(0.08)
        assert fired == []
        t.close()
        t.reset()  # after close, resets are ignored
        await asyncio.sleep(0.05)
        assert fired == [] and not t.armed

    asyncio.run(asyncio.wait_for(main(), 5))


def test_deadlines_are_base_plus_jitter() -> None:
    async def main() -> None:
        fired: list[float] = []
        t = _timer(fired, base_ms=200, jitter_ms=200)
        loop = asyncio.get_running_loop()
        for _ in range(50):
            now = loop.time()
            t.reset()
            assert t.deadline is not None
            assert 0.2 <= t.deadline - now <= 0.4 + 1e-3
        t.close()

    asyncio.run(asyncio.wait_for(main(), 5))


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        ElectionTimer(0, 10, rng=random.Random(), on_fire=lambda: None)
