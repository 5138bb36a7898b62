"""Loopback helpers every real-network test shares: free ports and polling with a deadline."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TypeVar

from properties.chaos import free_ports

__all__ = ["consecutive_free_ports", "free_ports", "wait_for"]

T = TypeVar("T")


def consecutive_free_ports(count: int, attempts: int = 50) -> int:
    """consecutive_free_ports returns a base port such that base..base+count-1 are free now."""
    for _ in range(attempts):
        (base,) = free_ports(1)
        if base + count > 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free loopback ports found")


async def wait_for(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """wait_for polls probe every 20 ms until it returns a non-None value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = probe()
        if value is not None:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s: {what}")
        await asyncio.sleep(0.02)
