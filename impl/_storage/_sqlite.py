"""SqliteStorage: durable Raft storage in one SQLite file (stdlib sqlite3).

WAL journal with ``synchronous=FULL``: every ``save`` is exactly one
transaction and therefore one fsync, so the driver gets group commit by
saving a whole ``Ready`` at once (about 3k transactions/s on the target
machine, hundreds of entries each). Every row carries a CRC32 that ``load``
checks; a bad row raises ``CorruptStorage`` naming it, it is never skipped.

The file records the cluster id and node id it was created for; opening it
for another node raises ``StorageMismatch`` before anything is written.

The snapshot row's ``voters`` column holds the config at the snapshot index
(thesis 4.1): ``{"config": {"index", "voters", "learners"}, "voters": [...]}``.
A store written before membership changes holds a plain JSON list of voter ids
there; it still loads, with no config (the node then uses its configured peers),
so no migration is needed. CONFIG log entries and the snapshot config are
decoded at load: unreadable ones raise ``CorruptStorage`` naming them.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path

from .._core import (
    Entry,
    EntryKind,
    HardState,
    Membership,
    SnapshotMeta,
    StoredState,
    decode_config,
)
from ._protocol import CorruptStorage, StorageMismatch, check_append, check_loaded

__all__ = ["SqliteStorage"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hard_state (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    term INTEGER NOT NULL, vote TEXT, commit_index INTEGER NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, kind INTEGER NOT NULL,
    data BLOB NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    idx INTEGER NOT NULL, term INTEGER NOT NULL, voters TEXT NOT NULL,
    data BLOB NOT NULL, crc INTEGER NOT NULL);
"""

_ENTRY_HEAD = struct.Struct(">qqB")


def entry_crc(index: int, term: int, kind: int, data: bytes) -> int:
    """entry_crc is the CRC32 of an entry row: its index, term and kind, then its data."""
    return zlib.crc32(data, zlib.crc32(_ENTRY_HEAD.pack(index, term, kind)))


def _hard_crc(term: int, vote: str | None, commit: int) -> int:
    return zlib.crc32(f"{term}\x00{vote if vote is not None else ''}\x00{commit}".encode())


def _snapshot_crc(index: int, term: int, voters: str, data: bytes) -> int:
    return zlib.crc32(data, zlib.crc32(f"{index}\x00{term}\x00{voters}".encode()))


def _str_map(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise TypeError("expected an object of id -> address strings")
    return dict(raw)


def _voters_column(meta: SnapshotMeta) -> str:
    """_voters_column is what the snapshot row's voters column holds for meta."""
    config = meta.config
    if config is None:
        return json.dumps(list(meta.voters))
    body = {
        "config": {
            "index": config.index,
            "learners": dict(config.learners),
            "voters": dict(config.voters),
        },
        "voters": list(meta.voters),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


class SqliteStorage:
    """SqliteStorage stores one node's hard state, log and snapshot in a SQLite file.

    ``cluster_id``/``node_id``, when given, are recorded on first use and
    checked on every later open. ``fsync=False`` uses ``synchronous=OFF`` (for
    like-for-like benchmarks against non-durable systems only). Calls may come
    from a worker thread; they are serialised by an internal lock.
    """

    def __init__(
        self,
        path: str | Path,
        cluster_id: str | None = None,
        node_id: str | None = None,
        *,
        fsync: bool = True,
    ) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise CorruptStorage(f"{self._path}: cannot open database: {exc}") from exc
        self._conn = conn
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'OFF'}")
            conn.executescript(_SCHEMA)
            self._check_identity(cluster_id, node_id)
            self._first, self._last = self._bounds()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise CorruptStorage(f"{self._path}: not a valid raftwright store: {exc}") from exc
        except StorageMismatch:
            conn.close()
            raise

    # -- identity --------------------------------------------------------
    def _check_identity(self, cluster_id: str | None, node_id: str | None) -> None:
        stored = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        version = stored.get("schema_version")
        if version is not None and version != str(SCHEMA_VERSION):
            raise StorageMismatch(
                f"{self._path}: schema version {version}, this build reads {SCHEMA_VERSION}"
            )
        for key, wanted in (("cluster_id", cluster_id), ("node_id", node_id)):
            have = stored.get(key)
            if wanted is not None and have is not None and have != wanted:
                raise StorageMismatch(
                    f"{self._path}: store belongs to {key} {have!r}, not {wanted!r}; "
                    "refusing to open it"
                )
        rows = [("schema_version", str(SCHEMA_VERSION))]
        if cluster_id is not None:
            rows.append(("cluster_id", cluster_id))
        if node_id is not None:
            rows.append(("node_id", node_id))
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", rows)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    @property
    def identity(self) -> dict[str, str]:
        """identity is the (cluster_id, node_id) the store records, as far as known."""
        with self._lock:
            return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())

    def _bounds(self) -> tuple[int, int]:
        """_bounds: (first index the log may hold, last stored index)."""
        row = self._conn.execute("SELECT idx FROM snapshot WHERE id = 0").fetchone()
        base = int(row[0]) if row else 0
        (last,) = self._conn.execute("SELECT MAX(idx) FROM entries").fetchone()
        return base + 1, max(int(last) if last is not None else 0, base)

    # -- reads -----------------------------------------------------------
    def load(self) -> StoredState:
        """load reads and validates everything; CorruptStorage names the first bad row."""
        with self._lock:
            try:
                return self._load()
            except sqlite3.DatabaseError as exc:
                raise CorruptStorage(f"{self._path}: database is damaged: {exc}") from exc

    def _load(self) -> StoredState:
        conn = self._conn
        row = conn.execute(
            "SELECT term, vote, commit_index, crc FROM hard_state WHERE id = 0"
        ).fetchone()
        hard = HardState(0, None, 0)
        if row is not None:
            term, vote, commit, crc = row
            if _hard_crc(term, vote, commit) != crc:
                raise CorruptStorage(f"{self._path}: hard state row fails its CRC check")
            hard = HardState(int(term), vote, int(commit))
        snap = self._load_snapshot_row(with_data=False)
        meta = snap[0] if snap is not None else None
        entries: list[Entry] = []
        append = entries.append
        for index, term, kind, data, crc in conn.execute(
            "SELECT idx, term, kind, data, crc FROM entries ORDER BY idx"
        ):
            if type(data) is not bytes or entry_crc(index, term, kind, data) != crc:
                raise CorruptStorage(f"{self._path}: log entry {index} fails its CRC check")
            try:
                entry_kind = EntryKind(kind)
            except ValueError:
                raise CorruptStorage(
                    f"{self._path}: log entry {index} has unknown kind {kind}"
                ) from None
            if entry_kind is EntryKind.CONFIG:
                try:
                    decode_config(data)
                except ValueError as exc:
                    raise CorruptStorage(
                        f"{self._path}: log entry {index} is a config entry that cannot be"
                        f" read: {exc}"
                    ) from None
            append(Entry(index, term, entry_kind, data))
        return check_loaded(hard, meta, entries)

    def _load_snapshot_row(self, with_data: bool) -> tuple[SnapshotMeta, bytes] | None:
        row = self._conn.execute(
            "SELECT idx, term, voters, data, crc FROM snapshot WHERE id = 0"
        ).fetchone()
        if row is None:
            return None
        index, term, voters, data, crc = row
        if type(data) is not bytes or _snapshot_crc(index, term, voters, data) != crc:
            raise CorruptStorage(f"{self._path}: snapshot at index {index} fails its CRC check")
        voter_ids, config = self._snapshot_config(index, voters)
        meta = SnapshotMeta(int(index), int(term), voter_ids, config)
        return meta, (data if with_data else b"")

    def _snapshot_config(self, index: int, text: str) -> tuple[tuple[str, ...], Membership | None]:
        """_snapshot_config reads the voters column: a list (older stores) or the config."""
        try:
            raw = json.loads(text)
            if isinstance(raw, list):  # written before membership changes: no config
                return tuple(str(v) for v in raw), None
            cfg = raw["config"]
            config = Membership(
                _str_map(cfg["voters"]), _str_map(cfg["learners"]), int(cfg["index"]), True
            )
            voter_ids = tuple(str(v) for v in raw["voters"])
        except (ValueError, TypeError, KeyError) as exc:
            raise CorruptStorage(
                f"{self._path}: the config of the snapshot at index {index} is unreadable"
                f" ({type(exc).__name__}: {exc})"
            ) from None
        if not config.voters or set(voter_ids) != set(config.voters):
            raise CorruptStorage(
                f"{self._path}: the config of the snapshot at index {index} has no voters"
                " or disagrees with its voter list"
            )
        return voter_ids, config

    def load_snapshot(self) -> tuple[SnapshotMeta, bytes] | None:
        """load_snapshot returns the stored snapshot and its data, CRC-checked."""
        with self._lock:
            try:
                return self._load_snapshot_row(with_data=True)
            except sqlite3.DatabaseError as exc:
                raise CorruptStorage(f"{self._path}: database is damaged: {exc}") from exc

    # -- writes ----------------------------------------------------------
    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """save writes the hard state and entries in ONE transaction (one fsync).

        If ``entries`` start at or below the stored last index, the stored
        suffix from ``entries[0].index`` is deleted first, in the same transaction.
        """
        if hard_state is None and not entries:
            return
        with self._lock:
            check_append(entries, self._first, self._last)
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                if entries:
                    start = entries[0].index
                    if start <= self._last:
                        conn.execute("DELETE FROM entries WHERE idx >= ?", (start,))
                    conn.executemany(
                        "INSERT INTO entries(idx, term, kind, data, crc) VALUES (?, ?, ?, ?, ?)",
                        [
                            (
                                e.index,
                                e.term,
                                int(e.kind),
                                e.data,
                                entry_crc(e.index, e.term, int(e.kind), e.data),
                            )
                            for e in entries
                        ],
                    )
                if hard_state is not None:
                    conn.execute(
                        "INSERT OR REPLACE INTO hard_state(id, term, vote, commit_index, crc) "
                        "VALUES (0, ?, ?, ?, ?)",
                        (
                            hard_state.term,
                            hard_state.vote,
                            hard_state.commit,
                            _hard_crc(hard_state.term, hard_state.vote, hard_state.commit),
                        ),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if entries:
                self._last = entries[-1].index

    def save_snapshot(self, meta: SnapshotMeta, data: bytes) -> None:
        """save_snapshot stores the snapshot and drops the log entries it covers.

        If the stored entry at ``meta.index`` has ``meta.term`` the entries
        after it are kept (they extend the snapshot, section 7); otherwise the
        whole log is dropped, since it cannot be consistent with the snapshot.
        """
        voters = _voters_column(meta)
        with self._lock:
            if meta.index + 1 < self._first:
                raise ValueError(
                    f"snapshot at {meta.index} is older than the stored one at {self._first - 1}"
                )
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT term FROM entries WHERE idx = ?", (meta.index,)
                ).fetchone()
                old = conn.execute("SELECT idx, term FROM snapshot WHERE id = 0").fetchone()
                keeps = (row is not None and row[0] == meta.term) or (
                    old is not None and (old[0], old[1]) == (meta.index, meta.term)
                )
                if keeps:
                    conn.execute("DELETE FROM entries WHERE idx <= ?", (meta.index,))
                else:
                    conn.execute("DELETE FROM entries")
                conn.execute(
                    "INSERT OR REPLACE INTO snapshot(id, idx, term, voters, data, crc) "
                    "VALUES (0, ?, ?, ?, ?, ?)",
                    (
                        meta.index,
                        meta.term,
                        voters,
                        bytes(data),
                        _snapshot_crc(meta.index, meta.term, voters, bytes(data)),
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._first = meta.index + 1
            self._last = max(self._last, meta.index) if keeps else meta.index

    def close(self) -> None:
        """close checkpoints nothing extra and closes the connection."""
        with self._lock:
            self._conn.close()
