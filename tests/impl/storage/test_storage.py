"""Durable storage. Reference: Raft paper Figure 2 ("updated on stable storage before
responding to RPCs") and PySyncObj #84/#201 (term and vote lost on restart)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from impl._core import Entry, EntryKind, HardState, SnapshotMeta
from impl._storage import (
    CorruptStorage,
    MemoryStorage,
    SqliteStorage,
    Storage,
    StorageMismatch,
)


def e(index: int, term: int, data: bytes = b"d") -> Entry:
    return Entry(index, term, EntryKind.NORMAL, data)


@pytest.fixture(params=["sqlite", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    s: Storage
    if request.param == "sqlite":
        s = SqliteStorage(tmp_path / "raft.db", "c1", "n1")
    else:
        s = MemoryStorage()
    yield s
    s.close()


def test_empty_store_loads_empty_state(storage: Storage) -> None:
    st = storage.load()
    assert st.hard_state == HardState(0, None, 0)
    assert st.snapshot_meta is None and list(st.entries) == []
    assert storage.load_snapshot() is None


def test_save_and_load(storage: Storage) -> None:
    storage.save(HardState(3, "n2", 2), [e(1, 1), e(2, 3, b"\x00\xff")])
    st = storage.load()
    assert st.hard_state == HardState(3, "n2", 2)
    assert list(st.entries) == [e(1, 1), e(2, 3, b"\x00\xff")]


def test_truncate_then_append(storage: Storage) -> None:
    """Reference: section 5.3 — a conflicting suffix is replaced in the same write."""
    storage.save(HardState(2, None, 1), [e(i, 1) for i in range(1, 6)])
    storage.save(None, [e(3, 2, b"new"), e(4, 2)])
    assert [(x.index, x.term) for x in storage.load().entries] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    with pytest.raises(ValueError, match="gap"):
        storage.save(None, [e(9, 2)])
    with pytest.raises(ValueError, match="contiguous"):
        storage.save(None, [e(5, 2), e(7, 2)])


def test_snapshot_compacts_and_keeps_matching_suffix(storage: Storage) -> None:
    """Reference: section 7 — entries covered by a snapshot are dropped, later ones kept."""
    storage.save(HardState(1, None, 4), [e(i, 1) for i in range(1, 7)])
    storage.save_snapshot(SnapshotMeta(4, 1, ("n1", "n2")), b"state")
    st = storage.load()
    assert st.snapshot_meta == SnapshotMeta(4, 1, ("n1", "n2"))
    assert [x.index for x in st.entries] == [5, 6]
    assert storage.load_snapshot() == (SnapshotMeta(4, 1, ("n1", "n2")), b"state")
    storage.save(None, [e(7, 1)])
    with pytest.raises(ValueError, match="inside the snapshot"):
        storage.save(None, [e(3, 1)])
    assert [x.index for x in storage.load().entries] == [5, 6, 7]


def test_snapshot_that_does_not_match_drops_whole_log(storage: Storage) -> None:
    """Reference: section 7 — a log inconsistent with the snapshot is discarded entirely."""
    storage.save(HardState(2, None, 1), [e(1, 1), e(2, 2), e(3, 2)])
    storage.save_snapshot(SnapshotMeta(5, 3, ("n1",)), b"s")
    storage.save(HardState(3, None, 5), [])
    st = storage.load()
    assert st.snapshot_meta is not None and st.snapshot_meta.index == 5
    assert list(st.entries) == []
    storage.save(None, [e(6, 3)])
    assert [x.index for x in storage.load().entries] == [6]


def test_sqlite_restart_recovers_everything(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    s = SqliteStorage(path, "c1", "n1")
    s.save(HardState(4, "n3", 3), [e(i, 1 + i // 3, bytes([i])) for i in range(1, 9)])
    s.save_snapshot(SnapshotMeta(3, 2, ("n1", "n2", "n3")), b"snap")
    s.close()
    s2 = SqliteStorage(path, "c1", "n1")
    st = s2.load()
    assert st.hard_state == HardState(4, "n3", 3)
    assert st.snapshot_meta == SnapshotMeta(3, 2, ("n1", "n2", "n3"))
    assert [x.index for x in st.entries] == list(range(4, 9))
    assert st.entries[0].data == bytes([4])
    assert s2.load_snapshot() == (SnapshotMeta(3, 2, ("n1", "n2", "n3")), b"snap")
    # bounds were recovered too: appending right after the stored log works
    s2.save(None, [e(9, 3)])
    s2.close()


def test_sqlite_detects_corrupted_row(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    s = SqliteStorage(path, "c1", "n1")
    s.save(HardState(1, None, 0), [e(1, 1, b"aaaa"), e(2, 1, b"bbbb"), e(3, 1, b"cccc")])
    s.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE entries SET data = ? WHERE idx = 2", (b"bbbX",))
    conn.commit()
    conn.close()
    s2 = SqliteStorage(path, "c1", "n1")
    with pytest.raises(CorruptStorage, match="entry 2"):
        s2.load()
    s2.close()


def test_sqlite_detects_corrupted_hard_state_and_gaps(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    s = SqliteStorage(path, "c1", "n1")
    s.save(HardState(1, "n2", 0), [e(1, 1), e(2, 1), e(3, 1)])
    s.close()
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM entries WHERE idx = 2")
    conn.commit()
    conn.close()
    s2 = SqliteStorage(path, "c1", "n1")
    with pytest.raises(CorruptStorage, match="entry 2 is missing"):
        s2.load()
    s2.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE hard_state SET term = 9")
    conn.commit()
    conn.close()
    s3 = SqliteStorage(path, "c1", "n1")
    with pytest.raises(CorruptStorage, match="hard state"):
        s3.load()
    s3.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_sqlite_detects_garbage_or_truncated_file(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "raft.db"
    if damage == "garbage":
        path.write_bytes(b"this is not a database at all" * 100)
    else:
        s = SqliteStorage(path, "c1", "n1")
        s.save(HardState(1, None, 0), [e(i, 1, b"x" * 500) for i in range(1, 200)])
        s.close()
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(CorruptStorage):
        s = SqliteStorage(path, "c1", "n1")
        try:
            s.load()
        finally:
            s.close()


def test_sqlite_identity_mismatch_refused(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    s = SqliteStorage(path, "c1", "n1")
    s.save(HardState(2, None, 0), [e(1, 1)])
    s.close()
    before = path.read_bytes()
    with pytest.raises(StorageMismatch, match="node_id 'n1'"):
        SqliteStorage(path, "c1", "n2")
    with pytest.raises(StorageMismatch, match="cluster_id 'c1'"):
        SqliteStorage(path, "c2", "n1")
    assert path.read_bytes() == before
    s2 = SqliteStorage(path, "c1", "n1")
    assert s2.load().hard_state.term == 2
    assert s2.identity["node_id"] == "n1"
    s2.close()


def test_sqlite_one_save_is_one_transaction(tmp_path: Path) -> None:
    """Group commit: one save call = one BEGIN/COMMIT, hence one fsync."""
    s = SqliteStorage(tmp_path / "raft.db", "c1", "n1")
    s.save(HardState(1, None, 0), [e(i, 1) for i in range(1, 50)])
    statements: list[str] = []
    s._conn.set_trace_callback(statements.append)
    s.save(HardState(2, "n1", 10), [e(i, 2) for i in range(10, 110)])  # truncate + 100 rows
    s._conn.set_trace_callback(None)
    upper = [x.strip().upper() for x in statements]
    assert sum(x.startswith("BEGIN") for x in upper) == 1
    assert sum(x.startswith("COMMIT") for x in upper) == 1
    assert upper[0].startswith("BEGIN") and upper[-1].startswith("COMMIT")
    assert [x.index for x in s.load().entries][-1] == 109
    s.close()


def test_sqlite_failed_save_rolls_back(tmp_path: Path) -> None:
    s = SqliteStorage(tmp_path / "raft.db", "c1", "n1")
    s.save(HardState(1, None, 0), [e(1, 1), e(2, 1)])
    bad = Entry(3, 1, EntryKind.NORMAL, "not bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        s.save(HardState(5, None, 0), [e(2, 2), bad])
    st = s.load()
    assert st.hard_state.term == 1 and [(x.index, x.term) for x in st.entries] == [(1, 1), (2, 1)]
    s.close()


def test_sqlite_wal_and_full_sync(tmp_path: Path) -> None:
    s = SqliteStorage(tmp_path / "raft.db", "c1", "n1")
    assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    s.close()
