"""The newest config entry of a log, remembered across splices, equals a fresh scan.

`latest_config` remembers its answer per log and `spliced` hands it on to the log it builds;
whatever sequence of appends and truncations built a log, the answer must be what a scan of
that log gives, at every `upto`. Reference: Raft thesis section 4.1 (a server uses the latest
configuration in its log, committed or not; truncating it reverts to the one before).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from spec import Config
from spec._log import Entry, EntryKind, Log, latest_config, spliced


def _scan(log: Log, upto: int) -> tuple[int, Config | None]:
    for index in range(min(upto, len(log)), 0, -1):
        if log[index - 1].kind is EntryKind.CONFIG:
            return index, log[index - 1].config
    return 0, None


def _entry(term: int, config_voters: int | None) -> Entry:
    if config_voters is None:
        return Entry(term, EntryKind.NORMAL, b"x")
    return Entry(term, EntryKind.CONFIG, b"", Config(tuple(range(config_voters))))


_SPLICE = st.tuples(
    st.integers(min_value=0, max_value=12),  # keep (clipped to the log's length)
    st.lists(st.tuples(st.integers(1, 3), st.none() | st.integers(1, 4)), max_size=4),
    st.booleans(),  # ask before splicing, so the parent's answer is remembered
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_SPLICE, max_size=12))
def test_remembered_answer_matches_a_scan(
    splices: list[tuple[int, list[tuple[int, int | None]], bool]],
) -> None:
    log: Log = ()
    for keep, raw, ask_first in splices:
        if ask_first:
            latest_config(log)
        log = spliced(log, min(keep, len(log)), tuple(_entry(t, c) for t, c in raw))
        for upto in (None, *range(len(log) + 1)):
            expected = _scan(log, len(log) if upto is None else upto)
            assert latest_config(log, upto) == expected
