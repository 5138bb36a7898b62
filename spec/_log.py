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


def latest_config(log: Log, upto: int | None = None) -> tuple[int, Config | None]:
    """latest_config is (index, config) of the newest CONFIG entry at or below `upto`.

    (0, None) when there is none, so the node falls back to its initial configuration. A
    server uses the latest configuration in its log whether or not it is committed (thesis
    4.1), so truncating a config entry reverts to the one before it.
    """
    end = len(log) if upto is None else min(upto, len(log))
    for index in range(end, 0, -1):
        entry = log[index - 1]
        if entry.kind is EntryKind.CONFIG:
            return index, entry.config
    return 0, None
