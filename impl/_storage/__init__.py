"""impl._storage: durable storage for a Raft node (SQLite) and an in-memory one for tests."""

from ._memory import MemoryStorage
from ._protocol import CorruptStorage, Storage, StorageError, StorageMismatch
from ._sqlite import SqliteStorage

__all__ = [
    "CorruptStorage",
    "MemoryStorage",
    "SqliteStorage",
    "Storage",
    "StorageError",
    "StorageMismatch",
]
