"""Opening a node's durable store (runs on the node's storage thread)."""

from __future__ import annotations

from impl._config import NodeConfig
from impl._core import SnapshotMeta, StoredState
from impl._storage import SqliteStorage, Storage

__all__ = ["STORE_NAME", "open_storage"]

STORE_NAME = "raft.sqlite3"


def open_storage(
    config: NodeConfig,
) -> tuple[Storage, StoredState, tuple[SnapshotMeta, bytes] | None]:
    """open_storage opens DATA_DIR/raft.sqlite3 and loads it.

    The store remembers the cluster and node id it was created for and refuses
    to open for another (StorageMismatch), so a mistyped --data-dir cannot
    graft one node's log onto another.
    """
    config.data_dir.mkdir(parents=True, exist_ok=True)
    storage = SqliteStorage(
        config.data_dir / STORE_NAME,
        cluster_id=config.cluster_id,
        node_id=config.node_id,
        fsync=config.fsync,
    )
    try:
        stored = storage.load()
        snapshot = storage.load_snapshot()
    except BaseException:
        storage.close()
        raise
    return storage, stored, snapshot
