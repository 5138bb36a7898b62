"""KVStateMachine: a replicated key-value store with exactly-once writes.

Commands are kv.proto ``KvCommand`` messages, queries ``KvQuery`` messages and
results ``KvResult`` / ``GetResponse`` messages, all serialised protobufs, so
any language with the .proto files can talk to it.

Exactly-once: every Put/Delete carries (client_id, sequence). The machine keeps,
per client, the highest sequence applied and its result. A retry with that
same sequence returns the remembered result without applying again; an older
sequence (a delayed duplicate) is ignored and answers an empty result. The
table is part of the snapshot, so de-duplication survives log compaction and
restarts (a retry that lands after a snapshot is still recognised).
"""

from __future__ import annotations

from collections.abc import Callable

from impl.generated import kv_pb2

__all__ = [
    "KVStateMachine",
    "decode_get_result",
    "encode_delete",
    "encode_get",
    "encode_put",
]

_Op = Callable[[], bytes]


def encode_put(key: str, value: bytes, client_id: str, sequence: int) -> bytes:
    """encode_put builds the log command of a Put."""
    cmd = kv_pb2.KvCommand(
        put=kv_pb2.PutRequest(key=key, value=value, client_id=client_id, sequence=sequence)
    )
    return cmd.SerializeToString()


def encode_delete(key: str, client_id: str, sequence: int) -> bytes:
    """encode_delete builds the log command of a Delete."""
    cmd = kv_pb2.KvCommand(
        delete=kv_pb2.DeleteRequest(key=key, client_id=client_id, sequence=sequence)
    )
    return cmd.SerializeToString()


def encode_get(key: str) -> bytes:
    """encode_get builds the read query of a Get."""
    return kv_pb2.KvQuery(get=kv_pb2.GetRequest(key=key)).SerializeToString()


def decode_get_result(data: bytes) -> bytes | None:
    """decode_get_result returns the value, or None when the key is missing."""
    resp = kv_pb2.GetResponse.FromString(data)
    return resp.value if resp.found else None


class KVStateMachine:
    """KVStateMachine implements StateMachine for kv.proto commands."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        # client_id -> (last applied sequence, serialised KvResult)
        self._dedup: dict[str, tuple[int, bytes]] = {}

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> bytes | None:
        """get reads locally (NOT linearizable; use Node.read for that)."""
        return self._data.get(key)

    def apply(self, command: bytes) -> bytes:
        """apply a KvCommand; an undecodable command changes nothing.

        Every replica sees the same bytes, so rejecting bad bytes the same
        way everywhere keeps replicas identical.
        """
        cmd = kv_pb2.KvCommand.FromString(command)
        which = cmd.WhichOneof("op")
        if which == "put":
            put = cmd.put
            return self._once(put.client_id, put.sequence, lambda: self._put(put.key, put.value))
        if which == "delete":
            delete = cmd.delete
            return self._once(delete.client_id, delete.sequence, lambda: self._delete(delete.key))
        return kv_pb2.KvResult().SerializeToString()

    def _put(self, key: str, value: bytes) -> bytes:
        existed = key in self._data
        self._data[key] = value
        return kv_pb2.KvResult(existed=existed).SerializeToString()

    def _delete(self, key: str) -> bytes:
        existed = self._data.pop(key, None) is not None
        return kv_pb2.KvResult(existed=existed).SerializeToString()

    def _once(self, client_id: str, sequence: int, op: _Op) -> bytes:
        if not client_id:
            return op()
        seen = self._dedup.get(client_id)
        if seen is not None:
            last_seq, last_result = seen
            if sequence == last_seq:
                return last_result
            if sequence < last_seq:
                return kv_pb2.KvResult().SerializeToString()
        result = op()
        self._dedup[client_id] = (sequence, result)
        return result

    def query(self, query: bytes) -> bytes:
        """query answers a KvQuery with a serialised GetResponse."""
        q = kv_pb2.KvQuery.FromString(query)
        value = self._data.get(q.get.key)
        if value is None:
            return kv_pb2.GetResponse(found=False).SerializeToString()
        return kv_pb2.GetResponse(found=True, value=value).SerializeToString()

    def snapshot(self) -> bytes:
        """snapshot serialises data and dedup table, sorted so equal states give equal bytes."""
        snap = kv_pb2.KvSnapshot(
            pairs=[kv_pb2.KvPair(key=k, value=self._data[k]) for k in sorted(self._data)],
            dedup=[
                kv_pb2.DedupEntry(
                    client_id=c,
                    sequence=self._dedup[c][0],
                    result=kv_pb2.KvResult.FromString(self._dedup[c][1]),
                )
                for c in sorted(self._dedup)
            ],
        )
        return snap.SerializeToString(deterministic=True)

    def restore(self, data: bytes) -> None:
        """restore replaces the whole state by a snapshot()."""
        snap = kv_pb2.KvSnapshot.FromString(data)
        self._data = {p.key: p.value for p in snap.pairs}
        self._dedup = {d.client_id: (d.sequence, d.result.SerializeToString()) for d in snap.dedup}
