"""Trace encoding: core records as compact JSON-ready values, and the log digest.

The schema is documented in docs/trace-format.md; this module is its producer side. Keys are
short because a trace holds one line per core step. Payloads are base64, so a trace is
exact: the checker replays the very bytes the node saw.
"""

from __future__ import annotations

import base64
import zlib
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
    "base_digest",
    "encode_entry",
    "encode_envelope",
    "encode_message",
    "entry_digest",
]

FORMAT_NAME = "raftwright-trace"
FORMAT_VERSION = 1

Json = dict[str, Any]


def encode_entry(entry: Entry) -> list[Any]:
    """encode_entry is ``[index, term, kind, base64(data)]``."""
    return [entry.index, entry.term, int(entry.kind), base64.b64encode(entry.data).decode("ascii")]


def encode_message(message: Message, to: str, cluster: str) -> Json:
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
                "ents": [encode_entry(e) for e in message.entries],
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


def encode_envelope(envelope: Envelope, cluster: str) -> Json:
    """encode_envelope is encode_message for an outbound message."""
    return encode_message(envelope.message, envelope.to, cluster)


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
