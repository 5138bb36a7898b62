"""The ``Storage`` contract of a Raft node, its errors, and checks shared by backends.

Durability rules the core relies on (section 5, Figure 2 "Persistent state"):
a ``save`` is one atomic, durable write (one transaction, one fsync: group
commit); entries may start at or below the stored last index, in which case the
stored suffix from ``entries[0].index`` is dropped first in the same write; a
snapshot drops the log entries it covers. PySyncObj #84/#201 show what happens
when term and vote are not durable: a restarted node votes twice and a
committed entry is overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .._core import Entry, HardState, SnapshotMeta, StoredState

__all__ = [
    "CorruptStorage",
    "Storage",
    "StorageError",
    "StorageMismatch",
    "check_append",
    "check_loaded",
]


class StorageError(Exception):
    """StorageError is the base of storage failures."""


class CorruptStorage(StorageError):  # noqa: N818 (name fixed by the API)
    """CorruptStorage: stored data fails validation; the message says where (never guessed)."""


class StorageMismatch(StorageError):  # noqa: N818 (name fixed by the API)
    """StorageMismatch: the store belongs to another cluster or node; nothing was changed."""


class Storage(Protocol):
    """Storage is what a node needs from durable storage."""

    def load(self) -> StoredState:
        """load returns everything saved so far (raises CorruptStorage on bad data)."""
        ...

    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """save durably stores a hard state and/or entries in one atomic write."""
        ...

    def save_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """save_snapshot durably stores a snapshot and drops the log entries it covers."""
        ...

    def load_snapshot(self) -> tuple[SnapshotMeta, bytes] | None:
        """load_snapshot returns the stored snapshot, if any."""
        ...

    def close(self) -> None:
        """close releases the store."""
        ...


def check_append(entries: Sequence[Entry], first_index: int, last_index: int) -> None:
    """check_append refuses a write that would leave a gap or a non-contiguous batch.

    ``first_index`` is the first index the store may hold (snapshot index + 1).
    """
    if not entries:
        return
    start = entries[0].index
    if start > last_index + 1:
        raise ValueError(f"entries start at {start}, leaving a gap after last index {last_index}")
    if start < first_index:
        raise ValueError(
            f"entries start at {start}, inside the snapshot (first index {first_index})"
        )
    for offset, e in enumerate(entries):
        if e.index != start + offset:
            raise ValueError(f"entries are not contiguous at index {e.index}")


def check_loaded(
    hard_state: HardState, meta: SnapshotMeta | None, entries: Sequence[Entry]
) -> StoredState:
    """check_loaded validates what a backend read and builds the StoredState.

    The checks mirror Raft's invariants on one node's persistent state: the
    log is contiguous after the snapshot, terms never decrease, the current
    term is at least the last log term, and the commit index is inside the log.
    """
    base_index = meta.index if meta is not None else 0
    base_term = meta.term if meta is not None else 0
    expected = base_index + 1
    prev_term = base_term
    for e in entries:
        if e.index != expected:
            raise CorruptStorage(
                f"log entry {expected} is missing (next stored entry is {e.index})"
            )
        if e.term < prev_term:
            raise CorruptStorage(
                f"log entry {e.index} has term {e.term}, below the previous term {prev_term}"
            )
        expected += 1
        prev_term = e.term
    last_index = expected - 1
    if hard_state.term < prev_term:
        raise CorruptStorage(
            f"stored term {hard_state.term} is below the last log term {prev_term}"
        )
    if hard_state.commit > last_index:
        raise CorruptStorage(
            f"stored commit index {hard_state.commit} is beyond the last log index {last_index}"
        )
    return StoredState(hard_state, meta, list(entries))
