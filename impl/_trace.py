"""Trace recording: every core step as one ndjson line, for the conformance checker.

``TracingCore`` is a ``RaftCore`` that writes, for each input it consumes, the input, the
outputs that input produced (messages, released and aborted reads, a refusal) and the state
after it (term, vote, role, leader, commit, last log index and term, durable index and two
log digests). The driver picks ``TracingCore`` instead of ``RaftCore`` once, at start, when
``trace_dir`` is set, so a node that does not trace pays nothing per step.

Lines are buffered and flushed each time the driver takes a ``Ready``: everything a Ready
hands out (messages to send, writes to make durable) is on disk before the driver acts on
it, so the trace of a killed process is a valid prefix, and a message that reached a peer
was recorded as sent before it was received. The schema is in docs/trace-format.md.
"""

from __future__ import annotations

import base64
import time
import zlib
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from impl._core import (
    AppendRequest,
    CoreConfig,
    Message,
    RaftCore,
    Ready,
    Role,
    SnapshotMeta,
    SnapshotRequest,
    StoredState,
)
from impl._trace_codec import (
    FORMAT_NAME,
    FORMAT_VERSION,
    EntryCache,
    Json,
    base_digest,
    dumps_line,
    encode_entry,
    encode_envelope,
    encode_message,
)

__all__ = ["TraceWriter", "TracingCore", "trace_path"]

T = TypeVar("T")

_ROLE = {Role.FOLLOWER: "F", Role.PRECANDIDATE: "P", Role.CANDIDATE: "C", Role.LEADER: "L"}


def trace_path(trace_dir: Path, node_id: str) -> Path:
    """trace_path is where node ``node_id`` writes its trace: ``DIR/node-<id>.ndjson``."""
    return Path(trace_dir) / f"node-{node_id}.ndjson"


class TraceWriter:
    """TraceWriter appends ndjson lines to one file; a restarted node appends a new segment.

    If the previous process died in the middle of a line, a newline is written first, so the
    torn line stays alone and the reader can skip it.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torn = False
        if path.exists() and path.stat().st_size > 0:
            with path.open("rb") as existing:
                existing.seek(-1, 2)
                torn = existing.read(1) != b"\n"
        self.path = path
        self._file: IO[bytes] | None = path.open("ab", buffering=1 << 16)
        if torn:
            self._file.write(b"\n")

    def write(self, record: Json) -> None:
        """write buffers one record as one line."""
        if self._file is not None:
            self._file.write(dumps_line(record))

    def flush(self) -> None:
        """flush hands the buffered lines to the OS (they survive a killed process)."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """close flushes and closes the file; later writes are ignored."""
        if self._file is not None:
            self._file.flush()
            self._file.close()
            self._file = None


class TracingCore(RaftCore):
    """TracingCore records every input of a RaftCore and what it did (see module doc)."""

    def __init__(self, config: CoreConfig, stored: StoredState, writer: TraceWriter) -> None:
        super().__init__(config, stored)
        self._tw = writer
        self._seq = 0
        self._entries = EntryCache()
        log = self._log
        # _dig[i - _dig_base] is the digest of the log prefix up to index i (from the base).
        self._dig_base = log.base_index
        self._dig = array("I", [base_digest(log.base_index, log.base_term)])
        self._extend_digest(log.base_index + 1)
        writer.write(
            {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "node": config.node_id,
                "cluster": config.cluster_id,
                "voters": list(config.voters),
                "learners": list(config.learners),
                "prevote": config.prevote,
                "check_quorum": config.check_quorum,
                "time": round(time.time(), 3),
                **({"join": True} if config.join else {}),
                **({"addresses": dict(config.addresses)} if config.addresses else {}),
            }
        )
        hs = stored.hard_state
        base = stored.snapshot_meta
        self._emit(
            {
                "i": "start",
                "hs": [hs.term, hs.vote, hs.commit],
                "base": [base.index, base.term] if base is not None else [0, 0],
                "ents": [encode_entry(e) for e in stored.entries],
            },
            0,
            0,
            0,
        )
        writer.flush()

    # -- recording -----------------------------------------------------------
    def _extend_digest(self, start: int) -> None:
        """_extend_digest recomputes the digests of entries ``start..last_index``."""
        log = self._log
        dig = self._dig
        keep = start - self._dig_base
        if keep < 1:
            # the change reaches below what we know: restart the chain at the base
            self._dig_base = log.base_index
            dig = self._dig = array("I", [base_digest(log.base_index, log.base_term)])
            keep = 1
            start = log.base_index + 1
        del dig[keep:]
        value = dig[-1]
        crc32 = zlib.crc32
        append = dig.append
        for e in log.slice(start, log.last_index + 1):
            # entry_digest (impl/_trace_codec.py), inlined: it runs once per logged entry
            value = crc32(e.data, crc32(b"%d,%d,%d," % (e.index, e.term, e.kind), value))
            append(value)

    def _state(self) -> list[Any]:
        dig = self._dig
        base = self._dig_base
        commit_digest = dig[self._commit - base] if 0 <= self._commit - base < len(dig) else None
        return [
            self._term,
            self._vote,
            _ROLE[self._role],
            self._leader,
            self._commit,
            commit_digest,
            self._log.last_index,
            self._log.last_term,
            dig[-1],
            self._durable,
        ]

    def _emit(self, record: Json, m0: int, r0: int, a0: int) -> None:
        self._seq += 1
        record["n"] = self._seq
        if len(self._msgs) > m0:
            cluster = self._cluster
            entries = self._entries
            record["out"] = [encode_envelope(env, cluster, entries) for env in self._msgs[m0:]]
        if len(self._reads_out) > r0:
            record["reads"] = [[r.request_id, r.read_index] for r in self._reads_out[r0:]]
        if len(self._aborted_out) > a0:
            record["abort"] = list(self._aborted_out[a0:])
        record["s"] = self._state()
        self._tw.write(record)

    def _restart_digest(self) -> None:
        log = self._log
        self._dig_base = log.base_index
        self._dig = array("I", [base_digest(log.base_index, log.base_term)])
        self._extend_digest(log.base_index + 1)

    def _step(
        self,
        record: Json,
        fn: Callable[[], T],
        rehash_from: int | None = None,
        seed: tuple[Sequence[bytes], list[str]] | None = None,
    ) -> T:
        """_step runs one input and records it, its outputs and the state after it.

        ``rehash_from`` is the first index the input may have overwritten (an append's first
        entry), 0 to recompute every digest (a snapshot install); other inputs only append.
        ``seed`` is a proposal's commands and their base64: the entries holding them are
        cached with it before the appends the step sent are encoded.
        """
        m0, r0, a0 = len(self._msgs), len(self._reads_out), len(self._aborted_out)
        last0, base0 = self._log.last_index, self._log.base_index
        try:
            result = fn()
        except Exception as exc:
            record["err"] = f"{type(exc).__name__}: {exc}"
            self._emit(record, m0, r0, a0)
            raise
        log = self._log
        base = log.base_index
        known = self._dig_base <= base < self._dig_base + len(self._dig)
        if rehash_from == 0 or (base != base0 and not known):
            self._restart_digest()
        else:
            if base != base0:  # compaction: digests below the new base are not needed
                del self._dig[: base - self._dig_base]
                self._dig_base = base
            start = last0 + 1 if rehash_from is None else min(rehash_from, last0 + 1)
            # entries at or below the snapshot base are immutable: never rehash from there
            start = max(min(start, log.last_index + 1), base + 1)
            if start <= log.last_index or log.last_index < last0:
                self._extend_digest(start)
        if seed is not None:
            commands, encoded = seed
            new = log.slice(log.last_index + 1 - len(commands), log.last_index + 1)
            for entry, command, data in zip(new, commands, encoded, strict=False):
                if entry.data == command:
                    self._entries.seed(entry, data)
        self._emit(record, m0, r0, a0)
        return result

    def close_trace(self) -> None:
        """close_trace flushes and closes the trace file."""
        self._tw.close()

    # -- inputs ----------------------------------------------------------------
    def election_timeout(self) -> None:
        self._step({"i": "timeout"}, super().election_timeout)

    def heartbeat_timeout(self) -> None:
        self._step({"i": "heartbeat"}, super().heartbeat_timeout)

    def check_quorum_timeout(self) -> None:
        self._step({"i": "checkquorum"}, super().check_quorum_timeout)

    def receive(self, message: Message) -> None:
        rehash: int | None = None
        if isinstance(message, AppendRequest) and message.entries:
            rehash = message.entries[0].index
        elif isinstance(message, SnapshotRequest):
            rehash = 0
        record = {
            "i": "recv",
            "m": encode_message(message, self._id, self._cluster, self._entries),
        }
        parent = super().receive
        self._step(record, lambda: parent(message), rehash)

    def propose(self, data: bytes) -> int:
        parent = super().propose
        encoded = [_b64(data)]
        record: Json = {"i": "propose", "data": encoded}
        return self._step(record, lambda: parent(data), seed=((data,), encoded))

    def propose_many(self, commands: Sequence[bytes]) -> range:
        encoded = [_b64(c) for c in commands]
        parent = super().propose_many
        record: Json = {"i": "propose", "data": encoded}
        return self._step(record, lambda: parent(commands), seed=(commands, encoded))

    def read_index(self, request_id: int) -> None:
        parent = super().read_index
        self._step({"i": "read", "id": request_id}, lambda: parent(request_id))

    def transfer_leadership(self, to: str) -> None:
        parent = super().transfer_leadership
        self._step({"i": "transfer", "to": to}, lambda: parent(to))

    def add_learner(self, node_id: str, address: str) -> int:
        parent = super().add_learner
        record: Json = {"i": "member", "op": "add", "node": node_id, "addr": address}
        return self._step(record, lambda: parent(node_id, address))

    def promote_learner(self, node_id: str) -> int:
        parent = super().promote_learner
        record: Json = {"i": "member", "op": "promote", "node": node_id}
        return self._step(record, lambda: parent(node_id))

    def remove_server(self, node_id: str) -> int:
        parent = super().remove_server
        record: Json = {"i": "member", "op": "remove", "node": node_id}
        return self._step(record, lambda: parent(node_id))

    def append_sentinel(self) -> int:
        parent = super().append_sentinel
        return self._step({"i": "sentinel"}, parent)

    def persisted(self, index: int, term: int) -> None:
        parent = super().persisted
        self._step({"i": "persisted", "index": index, "term": term}, lambda: parent(index, term))

    def applied(self, index: int) -> None:
        parent = super().applied
        self._step({"i": "applied", "index": index}, lambda: parent(index))

    def snapshot_taken(self, meta: SnapshotMeta) -> None:
        parent = super().snapshot_taken
        self._step({"i": "snapshot", "index": meta.index, "term": meta.term}, lambda: parent(meta))

    # -- outputs ---------------------------------------------------------------
    def ready(self) -> Ready:
        rd = super().ready()
        record: Json = {"i": "ready", "msgs": len(rd.messages)}
        if rd.hard_state is not None:
            hs = rd.hard_state
            record["hs"] = [hs.term, hs.vote, hs.commit]
        if rd.entries:
            record["ents"] = [rd.entries[0].index, rd.entries[-1].index]
        if rd.snapshot is not None:
            record["snap"] = [rd.snapshot[0].index, rd.snapshot[0].term]
        if rd.committed:
            record["cmt"] = [rd.committed[0].index, rd.committed[-1].index]
        if rd.timer is not None:
            record["timer"] = rd.timer.value
        self._emit(record, len(self._msgs), len(self._reads_out), len(self._aborted_out))
        self._tw.flush()
        return rd

    def advance(self, ready: Ready) -> None:
        parent = super().advance
        self._step({"i": "advance"}, lambda: parent(ready))


def _b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")
