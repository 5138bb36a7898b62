"""Trace encoding: core records as compact JSON-ready values, and the log digest.

The schema is documented in docs/trace-format.md; this module is its producer side. Keys are
short because a trace holds one line per core step. Payloads are base64, so a trace is
exact: the checker replays the very bytes the node saw.

Recording must stay cheap with many writes in flight, where one entry appears in the
propose record, in the append to every follower and in every retransmission. So each entry
is encoded once: ``EntryCache`` keeps its finished JSON text (an ``orjson.Fragment``, embedded
as is in every later record) and ``dumps_line`` writes a record with orjson. Without orjson
the same lines come from the stdlib encoder (entries cached as lists).
"""

from __future__ import annotations

import base64
import json
import zlib
from binascii import b2a_base64
from collections.abc import Callable, Sequence
from typing import Any, assert_never

from impl._core import (
    AppendRequest,
    AppendResponse,
    Entry,
    Envelope,
    Message,
    SnapshotRequest,
    SnapshotResponse,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "EntryCache",
    "base_digest",
    "dumps_line",
    "encode_entry",
    "encode_envelope",
    "encode_message",
    "entry_digest",
]

FORMAT_NAME = "raftwright-trace"
FORMAT_VERSION = 1

Json = dict[str, Any]

dumps_line: Callable[[Json], bytes]  # one record as one compact JSON line, newline included
_fragment: Callable[[bytes], Any] | None
try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _fragment = None
    _encode = json.JSONEncoder(separators=(",", ":")).encode

    def dumps_line(record: Json) -> bytes:
        return (_encode(record) + "\n").encode()
else:
    _fragment = orjson.Fragment
    _dumps = orjson.dumps
    _newline = orjson.OPT_APPEND_NEWLINE

    def dumps_line(record: Json) -> bytes:
        return _dumps(record, option=_newline)


class EntryCache:
    """EntryCache encodes each log entry once, however many records carry it.

    Keyed by index and checked by identity: the leader's outbound appends carry the very
    Entry objects of its log, so a hit is the same entry, and an entry replaced at that index
    (a truncation) misses. Received entries are fresh objects, encoded once each anyway.
    """

    __slots__ = ("_cache", "_limit")

    def __init__(self, limit: int = 8192) -> None:
        self._cache: dict[int, tuple[Entry, Any]] = {}
        self._limit = limit

    def encode(self, entry: Entry) -> Any:
        """encode is the entry's record, ``[index, term, kind, base64(data)]``."""
        hit = self._cache.get(entry.index)
        if hit is not None and hit[0] is entry:
            return hit[1]
        return self._store(entry, b2a_base64(entry.data, newline=False))

    def encode_all(self, entries: Sequence[Entry]) -> list[Any]:
        cache = self._cache
        out = []
        for entry in entries:
            hit = cache.get(entry.index)
            out.append(hit[1] if hit is not None and hit[0] is entry else self.encode(entry))
        return out

    def seed(self, entry: Entry, data_b64: str) -> None:
        """seed stores an entry whose payload was just encoded (a proposal's command)."""
        self._store(entry, data_b64.encode("ascii"))

    def _store(self, entry: Entry, data_b64: bytes) -> Any:
        cache = self._cache
        if len(cache) >= self._limit:
            cache.clear()
        value: Any
        if _fragment is not None:
            head = b'[%d,%d,%d,"' % (entry.index, entry.term, entry.kind)
            value = _fragment(head + data_b64 + b'"]')
        else:
            value = [entry.index, entry.term, int(entry.kind), data_b64.decode("ascii")]
        cache[entry.index] = (entry, value)
        return value


def encode_entry(entry: Entry) -> list[Any]:
    """encode_entry is ``[index, term, kind, base64(data)]``."""
    return [entry.index, entry.term, int(entry.kind), base64.b64encode(entry.data).decode("ascii")]


def encode_message(
    message: Message, to: str, cluster: str, entries: EntryCache | None = None
) -> Json:
    """encode_message renders one peer message with its route (``from``/``to``).

    The cluster id is written only when it differs from the trace's own (a message from
    another cluster, which the core refuses); snapshot data is summarised by its size.
    """
    out: Json
    match message:
        case VoteRequest():
            out = {
                "k": "vreq",
                "pre": message.prevote,
                "lli": message.last_log_index,
                "llt": message.last_log_term,
            }
        case VoteResponse():
            out = {
                "k": "vresp",
                "pre": message.prevote,
                "ok": message.granted,
                "rt": message.request_term,
            }
        case AppendRequest():
            out = {
                "k": "app",
                "pi": message.prev_log_index,
                "pt": message.prev_log_term,
                "ents": (
                    entries.encode_all(message.entries)
                    if entries is not None
                    else [encode_entry(e) for e in message.entries]
                ),
                "lc": message.leader_commit,
                "ctx": message.read_ctx,
            }
        case AppendResponse():
            out = {
                "k": "appr",
                "ok": message.success,
                "mi": message.match_index,
                "hi": message.reject_hint_index,
                "ht": message.reject_hint_term,
                "ctx": message.read_ctx,
            }
        case SnapshotRequest():
            out = {
                "k": "snap",
                "si": message.meta.index,
                "st": message.meta.term,
                "voters": list(message.meta.voters),
                "learners": (
                    list(message.meta.config.learners) if message.meta.config is not None else []
                ),
                "size": len(message.data),
            }
        case SnapshotResponse():
            out = {"k": "snapr", "mi": message.match_index}
        case TimeoutNow():
            out = {"k": "tnow"}
        case _:
            assert_never(message)
    out["from"] = message.sender
    out["to"] = to
    out["term"] = message.term
    if message.cluster_id != cluster:
        out["cl"] = message.cluster_id
    return out


def encode_envelope(envelope: Envelope, cluster: str, entries: EntryCache | None = None) -> Json:
    """encode_envelope is encode_message for an outbound message."""
    return encode_message(envelope.message, envelope.to, cluster, entries)


def base_digest(index: int, term: int) -> int:
    """base_digest seeds the digest chain at a log base (0 for the empty prefix)."""
    if index == 0:
        return 0
    return zlib.crc32(b"base,%d,%d" % (index, term))


def entry_digest(previous: int, index: int, term: int, kind: int, data: bytes) -> int:
    """entry_digest chains one entry onto the digest of the prefix before it (CRC-32).

    The digest of a log is the chain over its entries from its base, so equal digests at the
    same index mean equal prefixes (up to CRC collisions); the checker recomputes it from the
    spec's log to compare whole logs in O(1) per step.
    """
    return zlib.crc32(data, zlib.crc32(b"%d,%d,%d," % (index, term, kind), previous))
