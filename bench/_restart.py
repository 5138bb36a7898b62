"""The restart half of the recovery benchmark, in a fresh process.

``python -m bench._restart restart --data-dir DIR --entries N`` opens a single-voter
``impl.Node`` on a store that ``bench._recovery.build`` wrote (snapshots disabled, so the
whole log stays in memory) and prints, as one JSON line, the time for ``Node.start()``
(load from disk), the time until it leads and has applied every entry, and the growth of
its resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from bench._proc import free_ports
from bench._statemachine import BenchStateMachine
from impl import Node, NodeConfig

__all__ = ["main"]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _restart(data_dir: Path, entries: int) -> dict[str, Any]:
    (port,) = free_ports(1)
    address = f"127.0.0.1:{port}"
    config = NodeConfig(
        node_id="a",
        cluster_id="bench",
        listen=address,
        peers={"a": address},
        data_dir=data_dir,
        snapshot_every=10**9,
    )
    rss0 = _rss_bytes()
    t0 = time.perf_counter()
    node = Node(config, BenchStateMachine())
    await node.start()
    t_start = time.perf_counter() - t0
    deadline = time.perf_counter() + 600
    while node.applied_index < entries and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)
    t_applied = time.perf_counter() - t0
    rss1 = _rss_bytes()
    status = node.status()
    await node.stop()
    return {
        "entries": entries,
        "start_s": t_start,
        "applied_s": t_applied,
        "applied_index": status.applied_index,
        "log_size": status.log_size,
        "rss_growth_bytes": rss1 - rss0,
        "bytes_per_million": (rss1 - rss0) / entries * 1_000_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    restart = sub.add_parser("restart")
    restart.add_argument("--data-dir", type=Path, required=True)
    restart.add_argument("--entries", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_restart(args.data_dir, args.entries))), flush=True)


if __name__ == "__main__":
    main()
