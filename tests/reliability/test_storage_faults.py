"""Storage faults on a real node: torn writes, truncation, a corrupt record, a full disk, a
data directory that belongs to someone else. Each must end in a clear error and no
acknowledged write lost. Reference: Raft paper Figure 2 ("updated on stable storage before
responding to RPCs"); section 5.4 (a node that forgets what it acknowledged can break State
Machine Safety, so a damaged store must stop the node, never be silently reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import impl._node_storage as node_storage
from impl import (
    KVStateMachine,
    Node,
    NodeConfig,
    NodeStoppedError,
    NotLeaderError,
    ProposalLostError,
)
from impl._kv import decode_get_result, encode_get, encode_put
from impl._storage import CorruptStorage, SqliteStorage, StorageMismatch
from properties.chaos import free_ports

pytestmark = pytest.mark.network

STORE = node_storage.STORE_NAME
T = TypeVar("T")


def _config(data: Path, *, node_id: str = "a", cluster: str = "c1") -> NodeConfig:
    [port] = free_ports(1)
    address = f"127.0.0.1:{port}"
    return NodeConfig(
        node_id=node_id,
        cluster_id=cluster,
        listen=address,
        peers={node_id: address},
        data_dir=data,
        election_timeout_ms=(50, 100),
        heartbeat_ms=10,
    )


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(fn(), 60))


async def _started(config: NodeConfig) -> Node:
    node = Node(config, KVStateMachine())
    await node.start()
    for _ in range(500):
        if node.role.value == "leader":
            return node
        await asyncio.sleep(0.01)
    await node.stop()
    raise AssertionError("single node did not become leader")


async def _put(node: Node, key: str, value: bytes, seq: int) -> None:
    await node.propose(encode_put(key, value, "client", seq))


async def _get(node: Node, key: str) -> bytes | None:
    return decode_get_result(await node.read(encode_get(key)))


async def _write(node: Node, count: int, start: int = 1) -> dict[str, bytes]:
    acked = {}
    for i in range(start, start + count):
        key, value = f"key{i}", b"value-%06d" % i
        await _put(node, key, value, i)
        acked[key] = value
    return acked


async def _read_back(config: NodeConfig, keys: list[str]) -> dict[str, bytes | None]:
    node = await _started(config)
    try:
        return {k: await _get(node, k) for k in keys}
    finally:
        await node.stop()


async def _refused(config: NodeConfig) -> None:
    """_refused: starting must raise; a node that starts anyway is stopped, then we fail."""
    node = Node(config, KVStateMachine())
    await node.start()
    await node.stop()
    raise AssertionError(f"a node started on {config.data_dir} instead of refusing")


def _snapshot_files(data: Path, into: Path) -> None:
    """Copy the store as a crash would leave it (database, WAL; the shm index is rebuilt)."""
    into.mkdir(parents=True, exist_ok=True)
    for name in (STORE, STORE + "-wal"):
        if (data / name).exists():
            shutil.copyfile(data / name, into / name)


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "node-a"


@pytest.mark.parametrize("where", ["half", "last-frame"])
def test_torn_write_at_the_wal_tail_keeps_every_acknowledged_write(
    data: Path, tmp_path: Path, where: str
) -> None:
    """A crash in the middle of a transaction leaves part of its WAL frames on disk.

    Two crash images are taken while the node runs: after 20 acknowledged writes, and after
    the 21st. The torn image is the first one plus part of the 21st write's WAL bytes (half
    of them, or all but the end of the last frame). SQLite must discard the torn
    transaction; every write acknowledged before it must be there. The 21st write itself
    spans more than one transaction (its entry, then the commit index), so it may survive:
    a durable entry is committed again after the restart, which is allowed.
    """
    config = _config(data)
    before, after = tmp_path / "before", tmp_path / "after"

    async def scenario() -> dict[str, bytes]:
        node = await _started(config)
        try:
            acked = await _write(node, 20)
            _snapshot_files(data, before)
            await _put(node, "key21", b"in-flight", 21)
            _snapshot_files(data, after)
            return acked
        finally:
            await node.stop()

    acked = _run(scenario)
    wal_before = (before / (STORE + "-wal")).read_bytes()
    wal_after = (after / (STORE + "-wal")).read_bytes()
    assert (before / STORE).read_bytes() == (after / STORE).read_bytes(), "no checkpoint between"
    assert wal_after.startswith(wal_before) and len(wal_after) > len(wal_before)
    torn = tmp_path / "torn"
    _snapshot_files(before, torn)
    grown = len(wal_after) - len(wal_before)
    cut = len(wal_before) + (grown // 2 if where == "half" else grown - 1000)
    (torn / (STORE + "-wal")).write_bytes(wal_after[:cut])
    got = _run(lambda: _read_back(_config(torn), [*acked, "key21"]))
    assert {k: got[k] for k in acked} == acked
    assert got["key21"] in (None, b"in-flight")


@pytest.mark.parametrize("keep", [0.5, 0.37, 0.0])
def test_truncated_database_file_is_refused_and_left_as_found(data: Path, keep: float) -> None:
    """Truncated to a fraction of its size, or to nothing at all.

    An emptied file is the dangerous case: SQLite reads a zero-length file as a new, empty
    database, so the node would rejoin with no term, no vote and no log, and could vote
    twice in a term it already voted in (Election Safety, section 5.2).
    """
    config = _config(data)

    async def fill() -> None:
        node = await _started(config)
        try:
            await _write(node, 300)
        finally:
            await node.stop()  # the last connection checkpoints the WAL into the file

    _run(fill)
    path = data / STORE
    whole = path.read_bytes()
    path.write_bytes(whole[: int(len(whole) * keep)])
    damaged = path.read_bytes()
    with pytest.raises(CorruptStorage, match=STORE):
        _run(lambda: _refused(_config(data)))
    assert path.read_bytes() == damaged, "a refused store must not be modified"


def test_corrupted_record_in_the_middle_of_the_log_is_named(data: Path) -> None:
    """One flipped byte inside entry 10 of 20 (in the file itself, below SQLite)."""
    config = _config(data)

    async def fill() -> None:
        node = await _started(config)
        try:
            await _write(node, 20)
        finally:
            await node.stop()

    _run(fill)
    path = data / STORE
    marker = b"value-000010"
    with contextlib.closing(sqlite3.connect(path)) as conn:  # which index holds that command
        [(index,)] = conn.execute("SELECT idx FROM entries WHERE instr(data, ?) > 0", (marker,))
    raw = bytearray(path.read_bytes())
    assert raw.count(marker) == 1
    at = raw.index(marker) + len(marker) - 1
    raw[at] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptStorage, match=rf"log entry {index} fails its CRC check"):
        _run(lambda: _refused(_config(data)))


class _FullDisk:
    """Wraps a sqlite3 connection; once ``full`` is set, every write raises like ENOSPC."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.full = False

    def _guard(self, sql: str) -> None:
        if self.full and sql.lstrip().upper().startswith(("INSERT", "DELETE", "UPDATE")):
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._guard(sql)
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._guard(sql)
        return self._conn.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_full_disk_stops_the_node_without_acknowledging(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disks: list[_FullDisk] = []

    class FullDiskStorage(SqliteStorage):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            disk = _FullDisk(self._conn)
            self._conn = disk  # type: ignore[assignment]
            disks.append(disk)

    monkeypatch.setattr(node_storage, "SqliteStorage", FullDiskStorage)
    config = _config(data)

    async def scenario() -> tuple[dict[str, bytes], Node]:
        node = await _started(config)
        acked = await _write(node, 10)
        disks[0].full = True
        with pytest.raises(NodeStoppedError):
            await asyncio.wait_for(_put(node, "key-full", b"never", 11), 10)
        assert not node.running
        assert isinstance(node.failure, sqlite3.OperationalError)
        assert "disk is full" in str(node.failure)
        with pytest.raises(NodeStoppedError):
            await _put(node, "key-after", b"never", 12)
        await node.stop()
        return acked, node

    acked, _ = _run(scenario)
    monkeypatch.undo()
    got = _run(lambda: _read_back(_config(data), [*acked, "key-full", "key-after"]))
    assert {k: got[k] for k in acked} == acked
    assert got["key-full"] is None and got["key-after"] is None


@pytest.mark.parametrize(
    ("other", "field"), [({"cluster": "c2"}, "cluster_id"), ({"node_id": "b"}, "node_id")]
)
def test_data_dir_of_another_cluster_or_node_is_refused_untouched(
    data: Path, other: dict[str, str], field: str
) -> None:
    config = _config(data)

    async def fill() -> dict[str, bytes]:
        node = await _started(config)
        try:
            return await _write(node, 5)
        finally:
            await node.stop()

    acked = _run(fill)
    before = (data / STORE).read_bytes()
    with pytest.raises(StorageMismatch, match=rf"belongs to {field}"):
        _run(lambda: _refused(_config(data, **other)))
    assert (data / STORE).read_bytes() == before
    got = _run(lambda: _read_back(_config(data), list(acked)))
    assert got == acked


def test_full_disk_on_the_leader_of_three_stops_it_and_the_others_carry_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leader's disk fills: it stops without acknowledging; a new leader takes over.

    The leader sends its appends before its own write (thesis 10.2.1), so the followers may
    still commit the entry: the client's outcome is unknown, never a false acknowledgement.
    Every write acknowledged before the fault is readable from the new leader.
    """
    disks: dict[str, _FullDisk] = {}

    class FullDiskStorage(SqliteStorage):
        def __init__(self, path: Path, *args: Any, **kwargs: Any) -> None:
            super().__init__(path, *args, **kwargs)
            disk = _FullDisk(self._conn)
            self._conn = disk  # type: ignore[assignment]
            disks[Path(path).parent.name] = disk

    monkeypatch.setattr(node_storage, "SqliteStorage", FullDiskStorage)
    ports = free_ports(3)
    peers = {f"n{i + 1}": f"127.0.0.1:{p}" for i, p in enumerate(ports)}

    def config(node_id: str) -> NodeConfig:
        return NodeConfig(
            node_id=node_id,
            cluster_id="c3",
            listen=peers[node_id],
            peers=peers,
            data_dir=tmp_path / node_id,
        )

    async def leader_of(nodes: dict[str, Node], exclude: str | None = None) -> Node:
        for _ in range(1000):
            for node_id, node in nodes.items():
                if node_id != exclude and node.running and node.role.value == "leader":
                    return node
            await asyncio.sleep(0.01)
        raise AssertionError("no leader elected")

    async def scenario() -> None:
        nodes = {n: Node(config(n), KVStateMachine()) for n in peers}
        for node in nodes.values():
            await node.start()
        try:
            acked: dict[str, bytes] = {}
            for i in range(1, 11):  # on a loaded machine leadership may move: retry there
                for _ in range(20):
                    leader = await leader_of(nodes)
                    try:
                        acked.update(await _write(leader, 1, start=i))
                        break
                    except (NotLeaderError, ProposalLostError):
                        continue  # same client and sequence: applied at most once
            assert len(acked) == 10
            leader = await leader_of(nodes)
            disks[leader.config.node_id].full = True
            with pytest.raises(NodeStoppedError):
                await asyncio.wait_for(_put(leader, "key-full", b"maybe", 11), 10)
            assert not leader.running
            assert "disk is full" in str(leader.failure)
            successor = await leader_of(nodes, exclude=leader.config.node_id)
            got = {k: await _get(successor, k) for k in acked}
            assert got == acked
            assert await _get(successor, "key-full") in (None, b"maybe")
        finally:
            for node in nodes.values():
                await node.stop()

    _run(scenario)
