"""Opening a node's durable store (runs on the node's storage thread)."""

from __future__ import annotations

from impl._config import NodeConfig
from impl._core import SnapshotMeta, StoredState
from impl._storage import CorruptStorage, SqliteStorage, Storage

__all__ = ["STORE_NAME", "open_storage"]

STORE_NAME = "raft.sqlite3"


def open_storage(
    config: NodeConfig,
) -> tuple[Storage, StoredState, tuple[SnapshotMeta, bytes] | None]:
    """open_storage opens DATA_DIR/raft.sqlite3 and loads it.

    The store remembers the cluster and node id it was created for and refuses
    to open for another (StorageMismatch), so a mistyped --data-dir cannot
    graft one node's log onto another. An existing but empty store file is
    CorruptStorage, not a fresh start.
    """
    config.data_dir.mkdir(parents=True, exist_ok=True)
    path = config.data_dir / STORE_NAME
    if path.exists() and path.stat().st_size == 0:
        # SQLite reads an empty file as a new database: the node would come back with no
        # term, vote or log and could vote twice in one term. A store is never left empty
        # by a finished open (its identity row is written at once), so this is damage.
        raise CorruptStorage(
            f"{path}: the store is empty (0 bytes) but exists, so its contents were lost; "
            "refusing to start as a blank node (remove the file only if this node never "
            "took part in the cluster)"
        )
    storage = SqliteStorage(
        path,
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
