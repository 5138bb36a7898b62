"""The config in durable storage: snapshot metadata and CONFIG entries.

Reference: Raft thesis 4.1 (a server uses the latest config in its log, so the
config must survive a restart) and section 7 (a snapshot replaces the log
entries it covers, config entries included, so it carries the config itself).
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from pathlib import Path

import pytest

from impl._core import Entry, EntryKind, HardState, Membership, SnapshotMeta, encode_config
from impl._storage import CorruptStorage, SqliteStorage

VOTERS = {"n1": "127.0.0.1:7001", "n2": "127.0.0.1:7002", "n4": "127.0.0.1:7004"}
LEARNERS = {"n5": "127.0.0.1:7005"}


def _meta(index: int = 5, term: int = 2) -> SnapshotMeta:
    config = Membership(VOTERS, LEARNERS, 4, True)
    return SnapshotMeta(index, term, tuple(sorted(VOTERS)), config)


def test_snapshot_config_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    s = SqliteStorage(path, "c1", "n1")
    s.save(HardState(2, "n1", 0), [Entry(i, 2, EntryKind.NORMAL, b"x") for i in range(1, 6)])
    s.save_snapshot(_meta(), b"state")
    s.close()
    s = SqliteStorage(path, "c1", "n1")
    loaded = s.load_snapshot()
    meta = s.load().snapshot_meta
    s.close()
    assert loaded is not None and loaded[1] == b"state"
    for got in (loaded[0], meta):
        assert got is not None and got.config is not None
        assert dict(got.config.voters) == VOTERS and dict(got.config.learners) == LEARNERS
        assert got.config.index == 4 and got.voters == ("n1", "n2", "n4")


def test_store_written_before_membership_loads_without_config(tmp_path: Path) -> None:
    """A snapshot row of the older layout (a JSON list of voter ids) still loads.

    Its meta has no config, so the node falls back to its configured peers (the
    contract's default for stores written before this change).
    """
    path = tmp_path / "raft.db"
    s = SqliteStorage(path, "c1", "n1")
    s.save_snapshot(SnapshotMeta(3, 1, ("n1", "n2", "n3")), b"old")
    s.close()
    with sqlite3.connect(path) as conn:
        (text,) = conn.execute("SELECT voters FROM snapshot").fetchone()
    assert json.loads(text) == ["n1", "n2", "n3"], "config-less metas keep the old layout"
    s = SqliteStorage(path, "c1", "n1")
    loaded = s.load_snapshot()
    s.close()
    assert loaded is not None
    assert loaded[0] == SnapshotMeta(3, 1, ("n1", "n2", "n3"), None)


def _rewrite_voters(path: Path, text: str) -> None:
    """_rewrite_voters replaces the snapshot's voters column with a matching CRC."""
    with sqlite3.connect(path) as conn:
        index, term, data = conn.execute("SELECT idx, term, data FROM snapshot").fetchone()
        crc = zlib.crc32(data, zlib.crc32(f"{index}\x00{term}\x00{text}".encode()))
        conn.execute("UPDATE snapshot SET voters = ?, crc = ?", (text, crc))


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"voters": ["n1"]}',
        '{"config": {"index": 1, "voters": {"n1": 5}, "learners": {}}, "voters": ["n1"]}',
        '{"config": {"index": 1, "voters": {}, "learners": {}}, "voters": []}',
        '{"config": {"index": 1, "voters": {"n1": "a:1"}, "learners": {}}, "voters": ["n2"]}',
    ],
)
def test_corrupt_snapshot_config_is_a_clear_error_at_start(tmp_path: Path, text: str) -> None:
    path = tmp_path / "raft.db"
    s = SqliteStorage(path, "c1", "n1")
    s.save_snapshot(_meta(), b"state")
    s.close()
    _rewrite_voters(path, text)
    s = SqliteStorage(path, "c1", "n1")
    with pytest.raises(CorruptStorage, match="config of the snapshot at index 5"):
        s.load()
    s.close()


def test_corrupt_config_entry_is_a_clear_error_at_start(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    s = SqliteStorage(path, "c1", "n1")
    good = Entry(1, 1, EntryKind.CONFIG, encode_config(VOTERS, {}))
    bad = Entry(2, 1, EntryKind.CONFIG, b'{"voters": {}}')
    s.save(HardState(1, None, 0), [good])
    assert list(s.load().entries) == [good], "a readable config entry loads"
    s.save(None, [bad])  # CRC-valid, but no configuration a leader could have written
    s.close()
    s = SqliteStorage(path, "c1", "n1")
    with pytest.raises(CorruptStorage, match="log entry 2 is a config entry"):
        s.load()
    s.close()
