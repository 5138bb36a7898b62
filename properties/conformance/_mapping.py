"""The mapping between the implementation's trace records and the spec's values.

Node ids: the impl names nodes by strings, the spec by 0..n-1; the i-th id of the run's
universe (every id it mentions) in sorted order is spec node i. Messages: the trace's
``vreq``/``vresp``/``app``/``appr`` records become spec messages field by field, with one
documented difference: an impl append rejection carries (rejected prev index, hint index,
hint term) where the spec's carries a next-index hint, so a received rejection becomes a
spec rejection with ``hint_index = hint + 1`` (the spec uses the hint only for its default
next index, which replay never relies on: every append is an explicit ``SendAppend``).
"""

from __future__ import annotations

import zlib
from binascii import a2b_base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from properties.conformance._members import ConfigError, decode_config
from spec import (
    AppendRequest,
    AppendResponse,
    Entry,
    EntryKind,
    Log,
    Message,
    VoteRequest,
    VoteResponse,
)

__all__ = [
    "IdMap",
    "LogDigest",
    "MappingError",
    "b64decode",
    "entry_digest",
    "entry_kind",
    "spec_entries",
    "spec_message",
]

Json = dict[str, Any]


class MappingError(ValueError):
    """MappingError: a record has no spec counterpart (or is malformed)."""


@dataclass(frozen=True, slots=True)
class IdMap:
    """IdMap translates node ids: impl strings <-> spec ints by sorted order.

    The names are the run's whole universe (``_members.scan_universe``): every voter,
    learner and joining node, so every node of a run numbers the ids alike.
    """

    names: tuple[str, ...]
    index: dict[str, int] = field(default_factory=dict, compare=False)

    @staticmethod
    def of(voters: Iterable[str]) -> IdMap:
        names = tuple(sorted(set(voters)))
        return IdMap(names, {name: i for i, name in enumerate(names)})

    def to_spec(self, name: str) -> int:
        try:
            return self.index[name]
        except KeyError:
            raise MappingError(f"{name!r} is not a node of this run {list(self.names)}") from None

    def opt_to_spec(self, name: str | None) -> int | None:
        return None if name is None else self.to_spec(name)

    def to_impl(self, node: int | None) -> str | None:
        return None if node is None else self.names[node]


_KINDS = {int(kind): kind for kind in EntryKind}


def b64decode(text: str) -> bytes:
    """b64decode is a payload's bytes (``base64.b64decode`` without its wrapper's cost)."""
    return a2b_base64(text)


def entry_kind(kind: int) -> EntryKind:
    """entry_kind maps a recorded entry kind (0 normal, 1 no-op, 2 config) to the spec's."""
    spec_kind = _KINDS.get(kind)
    if spec_kind is None:
        raise MappingError(f"entry kind {kind} is not in the spec")
    return spec_kind


def spec_entries(records: list[list[Any]], first_index: int, ids: IdMap) -> tuple[Entry, ...]:
    """spec_entries converts ``[index, term, kind, base64]`` records, checking contiguity.

    A CONFIG entry keeps its JSON payload and carries the configuration it decodes to.
    """
    out = []
    for offset, (index, term, kind, data) in enumerate(records):
        if index != first_index + offset:
            raise MappingError(f"entry index {index} where {first_index + offset} was due")
        payload = a2b_base64(data)
        if kind == 2:
            try:
                config = decode_config(payload, ids.index)
            except ConfigError as exc:
                raise MappingError(f"config entry {index}: {exc}") from None
            out.append(Entry(term, EntryKind.CONFIG, payload, config))
        else:
            out.append(Entry(term, entry_kind(kind), payload))
    return tuple(out)


def spec_message(record: Json, ids: IdMap, *, transfer: bool = False) -> Message:
    """spec_message converts one message record to the spec message it stands for.

    ``transfer`` is the spec's transfer flag of a vote request that does not record one: the
    impl marks no vote request, so the caller says whether it was sent on TimeoutNow.
    """
    src = ids.to_spec(record["from"])
    dst = ids.to_spec(record["to"])
    term = record["term"]
    match record["k"]:
        case "vreq":
            flag = record.get("tr", transfer)
            return VoteRequest(src, dst, term, record["pre"], record["lli"], record["llt"], flag)
        case "vresp":
            return VoteResponse(src, dst, term, record["pre"], record["ok"], record["rt"])
        case "app":
            prev = record["pi"]
            entries = spec_entries(record["ents"], prev + 1, ids)
            return AppendRequest(
                src, dst, term, prev, record["pt"], entries, record["lc"], record["ctx"]
            )
        case "appr":
            if record["ok"]:
                return AppendResponse(src, dst, term, True, record["mi"], 0, record["ctx"])
            return AppendResponse(src, dst, term, False, 0, record["hi"] + 1, record["ctx"])
        case "snapr":
            # A snapshot reply moves the leader's match index exactly as a successful append
            # reply would (section 7); it carries no read ctx.
            return AppendResponse(src, dst, term, True, record["mi"], 0, 0)
        case kind:
            raise MappingError(f"message kind {kind!r} has no spec counterpart")


def entry_digest(previous: int, index: int, entry: Entry) -> int:
    """entry_digest chains one entry onto a prefix digest, exactly as the trace producer does."""
    head = b"%d,%d,%d," % (index, entry.term, int(entry.kind))
    return zlib.crc32(entry.payload, zlib.crc32(head, previous))


class LogDigest:
    """LogDigest keeps the digest of every prefix of one spec log, updated incrementally.

    Spec logs are immutable tuples that share their unchanged prefix (the same Entry objects)
    with the log they came from, so the changed suffix is found by identity, in O(change).
    """

    __slots__ = ("_digests", "_log")

    def __init__(self) -> None:
        self._log: Log = ()
        self._digests: list[int] = [0]

    def update(self, log: Log) -> None:
        old = self._log
        if log is old:
            return
        n_old = len(old)
        if n_old and len(log) >= n_old and log[n_old - 1] is old[-1]:
            keep = n_old
        else:
            lo, hi = 0, min(n_old, len(log))  # log[:lo] is old[:lo] by identity
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if log[mid - 1] is old[mid - 1]:
                    lo = mid
                else:
                    hi = mid - 1
            keep = lo
        digests = self._digests
        del digests[keep + 1 :]
        value = digests[-1]
        for index in range(keep + 1, len(log) + 1):
            value = entry_digest(value, index, log[index - 1])
            digests.append(value)
        self._log = log

    def at(self, index: int) -> int:
        """at is the digest of the prefix up to ``index`` of the last log given to update."""
        return self._digests[index]
