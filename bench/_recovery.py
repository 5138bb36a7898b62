"""Recovery: how long a node takes to restart on a long log, and what the log costs in memory.

``build(dir, n)`` writes a store of ``n`` committed 10-byte entries with the node's own
storage class (writing them through consensus would take minutes and measure something
else). ``bench._restart`` then restarts a node on that store in a fresh process.
"""

from __future__ import annotations

import time
from pathlib import Path

from impl._core import Entry, EntryKind, HardState
from impl._storage import SqliteStorage

__all__ = ["STORE", "build"]

STORE = "raft.sqlite3"  # the file name impl's node opens in its data dir
_BATCH = 20000


def build(data_dir: Path, entries: int) -> float:
    """build writes ``entries`` committed entries of term 1; returns the seconds it took."""
    data_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    storage = SqliteStorage(data_dir / STORE, cluster_id="bench", node_id="a", fsync=False)
    try:
        payload = b"x" * 10
        for start in range(1, entries + 1, _BATCH):
            stop = min(entries, start + _BATCH - 1)
            batch = [Entry(i, 1, EntryKind.NORMAL, payload) for i in range(start, stop + 1)]
            storage.save(None, batch)
        storage.save(HardState(term=1, vote="a", commit=entries), [])
    finally:
        storage.close()
    return time.perf_counter() - t0
