"""The replicated log as an immutable value.

Indexes are 1-based as in the Raft paper (Figure 2): index 0 is the empty prefix, whose term is 0.
A log is a plain tuple of `Entry`; these helpers keep the index arithmetic in one place so the
rest of the spec reads like the paper.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from spec._config import Config

__all__ = [
    "Entry",
    "EntryKind",
    "Log",
    "entries_from",
    "first_index_of_term",
    "is_up_to_date",
    "last_index",
    "last_term",
    "latest_config",
    "spliced",
    "term_at",
]


class EntryKind(enum.IntEnum):
    """What an entry is for: a client command, the leader's term-change sentinel, or a
    configuration change (thesis 4.1: configurations travel in the log).

    An IntEnum so entries order totally (the network bag is a sorted tuple).
    """

    NORMAL = 0
    NOOP = 1
    CONFIG = 2


@dataclass(frozen=True, slots=True, order=True)
class Entry:
    """Entry is one log slot: the term it was created in and its payload.

    Its index is its position in the log, so it is not stored (two equal entries at the same
    index are the same entry, which is what Log Matching talks about). A CONFIG entry carries
    the new configuration in `config`; every other kind leaves it None.
    """

    term: int
    kind: EntryKind = EntryKind.NORMAL
    payload: bytes = b""
    config: Config | None = None


Log = tuple[Entry, ...]


def last_index(log: Log) -> int:
    """last_index is the index of the newest entry, 0 for an empty log."""
    return len(log)


def last_term(log: Log) -> int:
    """last_term is the term of the newest entry, 0 for an empty log."""
    return log[-1].term if log else 0


def term_at(log: Log, index: int) -> int | None:
    """term_at is the term at `index` (0 at index 0), or None when the log is shorter."""
    if index == 0:
        return 0
    if 1 <= index <= len(log):
        return log[index - 1].term
    return None


def entries_from(log: Log, index: int, count: int) -> Log:
    """entries_from returns up to `count` entries starting at `index`."""
    return log[index - 1 : index - 1 + count]


def is_up_to_date(cand_last_term: int, cand_last_index: int, log: Log) -> bool:
    """is_up_to_date is the election restriction (section 5.4.1).

    A candidate's log is at least as up to date as ours if its last term is higher, or the last
    terms are equal and its log is at least as long.
    """
    mine = last_term(log)
    if cand_last_term != mine:
        return cand_last_term > mine
    return cand_last_index >= last_index(log)


def first_index_of_term(log: Log, index: int, floor: int) -> int:
    """first_index_of_term walks back from `index` to the first entry of the same term.

    Used for the conflict hint (section 5.3, "the follower can include the term of the
    conflicting entry and the first index it stores for that term"); never goes below `floor`.
    """
    term = term_at(log, index)
    while index - 1 > floor and term_at(log, index - 1) == term:
        index -= 1
    return index


def _scan_for_config(log: Log, end: int) -> tuple[int, Config | None]:
    for index in range(end, 0, -1):
        entry = log[index - 1]
        if entry.kind is EntryKind.CONFIG:
            return index, entry.config
    return 0, None


# Every quorum question of a step (commit, votes, reads, who to replicate to) asks for the
# newest config entry of the same few immutable logs, and without config entries the answer
# costs a scan of the whole log. So the answer is remembered by the log's identity. The memo
# holds the log itself, so its id cannot be reused while remembered; it never changes a
# result, only how often a long log is scanned, and it is cleared when it fills.
_NEWEST_CONFIG: dict[int, tuple[Log, int, Config | None]] = {}
_NEWEST_CONFIG_LIMIT = 1024


def latest_config(log: Log, upto: int | None = None) -> tuple[int, Config | None]:
    """latest_config is (index, config) of the newest CONFIG entry at or below `upto`.

    (0, None) when there is none, so the node falls back to its initial configuration. A
    server uses the latest configuration in its log whether or not it is committed (thesis
    4.1), so truncating a config entry reverts to the one before it.
    """
    hit = _NEWEST_CONFIG.get(id(log))
    if hit is not None and hit[0] is log:
        index, config = hit[1], hit[2]
    else:
        index, config = _scan_for_config(log, len(log))
        _remember_config(log, index, config)
    if upto is None or index <= upto:
        return index, config
    return _scan_for_config(log, min(upto, index - 1))


def _remember_config(log: Log, index: int, config: Config | None) -> None:
    if len(_NEWEST_CONFIG) >= _NEWEST_CONFIG_LIMIT:
        _NEWEST_CONFIG.clear()
    _NEWEST_CONFIG[id(log)] = (log, index, config)


def spliced(log: Log, keep: int, entries: Log) -> Log:
    """spliced is `log[:keep] + entries`, the one way the spec grows or rewrites a log.

    It hands the parent log's newest-config answer on to the new log, so appending to a long
    log never rescans it (see `latest_config`).
    """
    new = log + entries if keep >= len(log) else log[:keep] + entries
    hit = _NEWEST_CONFIG.get(id(log))
    if hit is None or hit[0] is not log or hit[1] > keep:
        return new  # unknown, or the newest config was cut off: scanned when first asked
    index, config = hit[1], hit[2]
    for offset in range(len(entries) - 1, -1, -1):
        if entries[offset].kind is EntryKind.CONFIG:
            index, config = keep + offset + 1, entries[offset].config
            break
    _remember_config(new, index, config)
    return new
