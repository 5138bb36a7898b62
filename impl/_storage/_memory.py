"""MemoryStorage: an in-memory ``Storage`` for tests only (nothing survives the process)."""

from __future__ import annotations

from collections.abc import Sequence

from .._core import Entry, HardState, SnapshotMeta, StoredState
from ._protocol import check_append, check_loaded

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """MemoryStorage keeps the state a node would persist, in memory.

    For tests only: it is not durable. Its semantics (suffix truncation on
    overlapping writes, compaction on snapshot) are those of SqliteStorage, so
    a test can "restart" a core from it. ``saves`` counts save calls.
    """

    def __init__(self) -> None:
        self._hard = HardState(0, None, 0)
        self._meta: SnapshotMeta | None = None
        self._data = b""
        self._entries: list[Entry] = []
        self.saves = 0

    def _base(self) -> int:
        return self._meta.index if self._meta is not None else 0

    def load(self) -> StoredState:
        """load returns a copy of the stored state."""
        return check_loaded(self._hard, self._meta, list(self._entries))

    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """save stores the hard state and entries, truncating an overlapped suffix first."""
        base = self._base()
        check_append(entries, base + 1, base + len(self._entries))
        if entries:
            del self._entries[entries[0].index - base - 1 :]
            self._entries.extend(entries)
        if hard_state is not None:
            self._hard = hard_state
        self.saves += 1

    def save_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """save_snapshot stores the snapshot; keeps the log after it only if it matches."""
        base = self._base()
        if meta.index < base:
            raise ValueError(f"snapshot at {meta.index} is older than the stored one at {base}")
        offset = meta.index - base
        if 0 < offset <= len(self._entries) and self._entries[offset - 1].term == meta.term:
            del self._entries[:offset]
        elif not (offset == 0 and self._meta is not None and self._meta.term == meta.term):
            self._entries.clear()
        self._meta = meta
        self._data = bytes(data)

    def load_snapshot(self) -> tuple[SnapshotMeta, bytes] | None:
        """load_snapshot returns the stored snapshot, if any."""
        if self._meta is None:
            return None
        return self._meta, self._data

    def close(self) -> None:
        """close does nothing; the data stays readable for a simulated restart."""
