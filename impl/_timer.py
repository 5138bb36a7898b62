"""ElectionTimer: the seed's versioned election timer, on an asyncio event loop.

The timer is a version counter plus an optional deadline. ``reset`` bumps the
version and draws a fresh deadline (base + uniform jitter, 200 + up to 200 ms
by default); ``stop`` bumps the version and clears the deadline. The fire
callback runs only if the deadline has passed *and* the version is still the
one the deadline was set under; check and fire happen in one event-loop
callback, so nothing can reset the timer in between (the seed does the same
under a mutex). A fired timer clears its deadline and bumps the version: it
fires once per reset, and the election it starts must reset it again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

__all__ = ["ElectionTimer"]


class ElectionTimer:
    """ElectionTimer fires ``on_fire`` once per ``reset`` unless reset or stopped in time."""

    def __init__(
        self,
        base_ms: float = 200,
        jitter_ms: float = 200,
        *,
        rng: random.Random,
        on_fire: Callable[[], None],
    ) -> None:
        if base_ms <= 0 or jitter_ms < 0:
            raise ValueError("ElectionTimer needs base_ms > 0 and jitter_ms >= 0")
        self._base = base_ms / 1000.0
        self._jitter = jitter_ms / 1000.0
        self._rng = rng
        self._on_fire = on_fire
        self._version = 0
        self._deadline: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._closed = False
        self.fired = 0  # how many times on_fire ran (for status and tests)

    @property
    def version(self) -> int:
        """version counts every reset, stop and firing."""
        return self._version

    @property
    def deadline(self) -> float | None:
        """deadline is the event-loop time the timer fires at, or None if it is not armed."""
        return self._deadline

    @property
    def armed(self) -> bool:
        """armed: will the timer fire unless something resets or stops it?"""
        return self._deadline is not None

    def reset(self) -> None:
        """reset bumps the version and arms a fresh random deadline (must run on the loop)."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        self._cancel_handle()
        self._version += 1
        timeout = self._base + self._rng.uniform(0.0, self._jitter)
        deadline = loop.time() + timeout
        self._deadline = deadline
        self._handle = loop.call_at(deadline, self._expire, self._version)

    def stop(self) -> None:
        """stop bumps the version and disarms the timer (becoming leader, shutting down)."""
        self._cancel_handle()
        self._version += 1
        self._deadline = None

    def close(self) -> None:
        """close stops the timer for good; later resets are ignored."""
        self.stop()
        self._closed = True

    def _cancel_handle(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _expire(self, version: int) -> None:
        """_expire is the loop callback: fire only if still armed under the same version."""
        if self._closed or version != self._version or self._deadline is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now < self._deadline:
            # woken early (clock granularity): wait for the rest
            self._handle = loop.call_at(self._deadline, self._expire, version)
            return
        self._handle = None
        self._version += 1
        self._deadline = None
        self.fired += 1
        self._on_fire()
