"""RaftLog: the in-memory log as an offset list on top of a snapshot base.

Entries live in a Python list (amortised O(1) append) with a parallel list of
their terms. Log terms never decrease along the log (a leader only appends
entries of its own term, and terms grow), so "last index whose term is <= T"
and "first entry that conflicts" are binary searches instead of scans; this is
what keeps fast back-off cheap for a far-behind follower.

The log also keeps the indexes of its CONFIG entries, so "the latest configuration in the
log" (thesis 4.1: the one a server uses) is O(1) and a truncation reverts it for free.

The base is the last compacted entry (a snapshot's index and term, or (0, 0)):
``term_at(base_index)`` still answers, so the consistency check for the first
retained entry works (section 7).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from ._messages import Entry, EntryKind

_CONFIG = EntryKind.CONFIG

__all__ = ["RaftLog"]


class RaftLog:
    """RaftLog holds entries ``base_index + 1 .. last_index``."""

    __slots__ = ("_base_index", "_base_term", "_configs", "_entries", "_terms")

    def __init__(self, base_index: int = 0, base_term: int = 0) -> None:
        self._base_index = base_index
        self._base_term = base_term
        self._entries: list[Entry] = []
        self._terms: list[int] = []
        self._configs: list[int] = []  # indexes of the CONFIG entries held, ascending

    # -- queries -----------------------------------------------------------
    @property
    def base_index(self) -> int:
        """base_index is the index of the last compacted entry (0 if none)."""
        return self._base_index

    @property
    def base_term(self) -> int:
        """base_term is the term of the last compacted entry (0 if none)."""
        return self._base_term

    @property
    def first_index(self) -> int:
        """first_index is the first index still held in memory."""
        return self._base_index + 1

    @property
    def last_index(self) -> int:
        """last_index is the index of the last entry (the base if the log is empty)."""
        return self._base_index + len(self._entries)

    @property
    def last_term(self) -> int:
        """last_term is the term of the last entry (the base term if the log is empty)."""
        return self._terms[-1] if self._terms else self._base_term

    def latest_config(self, upto: int | None = None) -> Entry | None:
        """latest_config is the newest CONFIG entry held (at or below ``upto``), or None."""
        configs = self._configs
        if upto is None:
            return self.entry(configs[-1]) if configs else None
        pos = bisect.bisect_right(configs, upto)
        return self.entry(configs[pos - 1]) if pos else None

    def __len__(self) -> int:
        return len(self._entries)

    def term_at(self, index: int) -> int | None:
        """term_at is the term of the entry at ``index``; None if compacted away or absent."""
        offset = index - self._base_index
        if offset == 0:
            return self._base_term
        if 0 < offset <= len(self._terms):
            return self._terms[offset - 1]
        return None

    def entry(self, index: int) -> Entry:
        """entry returns the entry at ``index``; IndexError if it is not held."""
        offset = index - self._base_index - 1
        if offset < 0 or offset >= len(self._entries):
            raise IndexError(f"log index {index} not in [{self.first_index}, {self.last_index}]")
        return self._entries[offset]

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """slice returns entries with lo <= index < hi (clamped to what is held)."""
        base = self._base_index + 1
        return self._entries[max(lo - base, 0) : max(hi - base, 0)]

    def batch(self, lo: int, max_entries: int, max_bytes: int) -> tuple[Entry, ...]:
        """batch returns up to ``max_entries`` entries from ``lo``, about ``max_bytes`` of data.

        At least one entry is returned when one exists, so a huge entry still moves.
        """
        start = lo - self._base_index - 1
        if start < 0 or start >= len(self._entries):
            return ()
        stop = min(start + max_entries, len(self._entries))
        total = 0
        entries = self._entries
        for pos in range(start, stop):
            total += len(entries[pos].data)
            if total > max_bytes and pos > start:
                stop = pos
                break
        return tuple(entries[start:stop])

    def is_up_to_date(self, last_log_index: int, last_log_term: int) -> bool:
        """is_up_to_date: is a log ending at (index, term) at least as up to date as ours?

        Reference: section 5.4.1 (compare last terms, then lengths).
        """
        my_term = self.last_term
        return last_log_term > my_term or (
            last_log_term == my_term and last_log_index >= self.last_index
        )

    def last_index_with_term_at_most(self, index: int, term: int) -> int:
        """last_index_with_term_at_most: the largest i <= index whose term is <= ``term``.

        Never below the base. Used by both sides of fast back-off.
        """
        index = min(index, self.last_index)
        if index <= self._base_index:
            return self._base_index
        hi = index - self._base_index  # number of candidate entries
        pos = bisect.bisect_right(self._terms, term, 0, hi)
        return self._base_index + pos

    def first_conflict(self, entries: Sequence[Entry]) -> int:
        """first_conflict: index of the first of ``entries`` whose term differs from ours.

        ``entries`` are contiguous. Returns 0 when every overlapping entry
        matches (Log Matching, section 5.3, makes matches a prefix of the
        overlap, so a binary search suffices). Entries at or below the base
        are treated as matching: they are committed.
        """
        if not entries:
            return 0
        first = entries[0].index
        lo = max(first, self._base_index + 1)
        hi = min(first + len(entries) - 1, self.last_index)
        if lo > hi:
            return 0
        terms = self._terms
        base = self._base_index + 1
        if terms[hi - base] == entries[hi - first].term:
            return 0
        # invariant: entry at lo-1 matches (or lo is the first); entry at hi conflicts
        while lo < hi:
            mid = (lo + hi) // 2
            if terms[mid - base] == entries[mid - first].term:
                lo = mid + 1
            else:
                hi = mid
        return lo

    # -- mutations ---------------------------------------------------------
    def append(self, entry: Entry) -> None:
        """append adds one entry at last_index + 1."""
        self._entries.append(entry)
        self._terms.append(entry.term)
        if entry.kind is _CONFIG:
            self._configs.append(entry.index)

    def extend(self, entries: Sequence[Entry], may_hold_config: bool = True) -> None:
        """extend appends contiguous entries starting at last_index + 1.

        ``may_hold_config=False`` (a leader's batch of client commands) skips looking for
        CONFIG entries.
        """
        self._entries.extend(entries)
        self._terms.extend(e.term for e in entries)
        if may_hold_config:
            self._configs.extend(e.index for e in entries if e.kind is _CONFIG)

    def truncate_from(self, index: int) -> None:
        """truncate_from drops every entry at ``index`` and after."""
        offset = max(index - self._base_index - 1, 0)
        del self._entries[offset:]
        del self._terms[offset:]
        configs = self._configs
        while configs and configs[-1] >= index:
            configs.pop()

    def compact(self, index: int, term: int) -> None:
        """compact drops entries up to ``index``; (index, term) becomes the base."""
        offset = index - self._base_index
        if offset <= 0:
            return
        del self._entries[:offset]
        del self._terms[:offset]
        del self._configs[: bisect.bisect_right(self._configs, index)]
        self._base_index = index
        self._base_term = term

    def reset(self, base_index: int, base_term: int) -> None:
        """reset empties the log onto a new base (installing a snapshot that does not match)."""
        self._entries.clear()
        self._terms.clear()
        self._configs.clear()
        self._base_index = base_index
        self._base_term = base_term
