"""KVStateMachine: exactly-once writes via the replicated dedup table, snapshot/restore."""

from __future__ import annotations

from impl import KVStateMachine
from impl._kv import decode_get_result, encode_delete, encode_get, encode_put
from impl.generated import kv_pb2


def existed(result: bytes) -> bool:
    return kv_pb2.KvResult.FromString(result).existed


def test_put_get_delete() -> None:
    sm = KVStateMachine()
    assert not existed(sm.apply(encode_put("k", b"v1", "c", 1)))
    assert decode_get_result(sm.query(encode_get("k"))) == b"v1"
    assert existed(sm.apply(encode_put("k", b"v2", "c", 2)))
    assert decode_get_result(sm.query(encode_get("k"))) == b"v2"
    assert existed(sm.apply(encode_delete("k", "c", 3)))
    assert decode_get_result(sm.query(encode_get("k"))) is None
    assert not existed(sm.apply(encode_delete("k", "c", 4)))


def test_retried_sequence_is_applied_once() -> None:
    sm = KVStateMachine()
    sm.apply(encode_put("k", b"first", "c1", 1))
    sm.apply(encode_put("k", b"other", "c2", 1))
    # c1 retries its sequence 1 with (say) the same bytes: no second application.
    first = sm.apply(encode_delete("k", "c1", 2))
    assert existed(first)
    sm.apply(encode_put("k", b"again", "c2", 2))
    retry = sm.apply(encode_delete("k", "c1", 2))
    assert retry == first, "a retry returns the remembered result"
    assert sm.get("k") == b"again", "the retried delete was not applied twice"
    # A delayed older duplicate is ignored too.
    sm.apply(encode_put("k", b"stale", "c1", 1))
    assert sm.get("k") == b"again"


def test_dedup_table_survives_snapshot_restore() -> None:
    sm = KVStateMachine()
    sm.apply(encode_put("a", b"1", "c1", 7))
    sm.apply(encode_put("b", b"2", "c2", 3))
    data = sm.snapshot()
    restored = KVStateMachine()
    restored.restore(data)
    assert restored.get("a") == b"1" and restored.get("b") == b"2"
    assert restored.snapshot() == data
    # The retry of c1's sequence 7 arrives after the snapshot: still deduplicated.
    restored.apply(encode_delete("a", "c2", 4))
    restored.apply(encode_put("a", b"1-retry", "c1", 7))
    assert restored.get("a") is None


def test_snapshot_is_deterministic() -> None:
    one, two = KVStateMachine(), KVStateMachine()
    for key in ("x", "y", "z"):
        one.apply(encode_put(key, key.encode(), "", 0))
    for key in ("z", "x", "y"):
        two.apply(encode_put(key, key.encode(), "", 0))
    assert one.snapshot() == two.snapshot()


def test_restore_replaces_state() -> None:
    sm = KVStateMachine()
    sm.apply(encode_put("old", b"x", "c", 1))
    sm.restore(KVStateMachine().snapshot())
    assert len(sm) == 0
    assert not existed(sm.apply(encode_put("old", b"y", "c", 1))), "dedup table cleared too"


def test_unknown_command_changes_nothing() -> None:
    sm = KVStateMachine()
    before = sm.snapshot()
    assert sm.apply(kv_pb2.KvCommand().SerializeToString()) == b""
    assert sm.snapshot() == before
