"""A ``raftwright node`` with a deliberately seeded bug, to show the checks can fail.

``python -m properties.chaos._seeded_node --bug stale-read -- <raftwright node args>``
patches the running implementation in this process only, then runs ``impl.cli.main``
with the remaining arguments. impl/ itself is never edited: a checker that has only
ever seen a correct implementation has not shown it can find anything.

Bugs:

``stale-read``
    A node that believes it is leader answers a linearizable read from its local
    state machine at once, skipping the ReadIndex leadership confirmation (Raft
    thesis section 6.4: the leader must check it is still leader by a round of
    heartbeats before answering). This is the classic stale read: an old leader cut
    off from the majority (or frozen, then woken) still thinks it leads, and answers
    with a value the new majority leader has already overwritten.

``lose-write``
    The key-value state machine silently drops the put of every write-once key
    (``d-...``) that ``drops_write`` selects, yet acknowledges it. The rule depends
    only on the key, so every replica, every log replay and every snapshot agree:
    the cluster stays self-consistent and only the durability check (acknowledged
    writes read back after a full restart) can notice.

``learner-quorum``
    The leader counts its learners' acknowledgements in the commit quorum (the size of
    the quorum is still a majority of the voters). Raft thesis section 4.2.1: a learner
    receives the log but is not a voter, so it must never count for commitment: a leader
    cut off from its voters with a learner still at its side then "commits" and
    acknowledges writes that no voter majority holds, and the voters elect a leader
    without them. So that a learner stays a learner long enough to matter, the patched
    node also never promotes one (promotion is not what this bug is about).
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from impl import KVStateMachine, Node

__all__ = ["BUGS", "LOSE_ONE_IN", "drops_write", "install", "launcher_prefix", "main"]

BUGS: Final = ("stale-read", "lose-write", "learner-quorum")
LOSE_ONE_IN: Final = 8
"""lose-write drops about one write-once key in LOSE_ONE_IN."""


def drops_write(key: str) -> bool:
    """drops_write: whether the lose-write bug drops the put of ``key``."""
    return key.startswith("d-") and zlib.crc32(key.encode()) % LOSE_ONE_IN == 0


def _install_stale_read() -> None:
    from impl._core import Role

    original: Callable[[Node, bytes], Awaitable[bytes]] = Node.read

    async def read(self: Node, query: bytes) -> bytes:
        if self.role is Role.LEADER:
            return self._sm.query(query)  # BUG: no ReadIndex round, no applied-index wait
        return await original(self, query)

    Node.read = read  # type: ignore[method-assign]


def _install_lose_write() -> None:
    original: Callable[[KVStateMachine, str, bytes], bytes] = KVStateMachine._put

    def put(self: KVStateMachine, key: str, value: bytes) -> bytes:
        if drops_write(key):
            from impl.generated import kv_pb2

            return kv_pb2.KvResult(existed=False).SerializeToString()  # BUG: not stored
        return original(self, key, value)

    KVStateMachine._put = put  # type: ignore[method-assign]


def _install_learner_quorum() -> None:
    from impl._core import RaftCore, Role

    def maybe_commit(self: RaftCore) -> None:
        if self._role is not Role.LEADER:
            return
        # BUG: every replica counts, learners too (thesis 4.2.1 counts voters only).
        matches = [pr.match for pr in self._progress.values()]
        if self._is_voter:
            matches.append(self._durable)
        n = self._quorum_value(matches)
        if n > self._commit and self._log.term_at(n) == self._term:
            self._commit = n
            self._release_reads()

    def no_learner_caught_up(self: RaftCore) -> tuple[str, ...]:
        return ()

    RaftCore._maybe_commit = maybe_commit  # type: ignore[method-assign,assignment]
    RaftCore.caught_up_learners = no_learner_caught_up  # type: ignore[method-assign]


def install(bug: str) -> None:
    """install patches this process's impl classes with ``bug`` (one of BUGS)."""
    if bug == "stale-read":
        _install_stale_read()
    elif bug == "lose-write":
        _install_lose_write()
    elif bug == "learner-quorum":
        _install_learner_quorum()
    else:
        raise ValueError(f"unknown seeded bug {bug!r}; known: {', '.join(BUGS)}")


def launcher_prefix(bug: str) -> list[str]:
    """launcher_prefix: the command before ``node ...`` that runs a node with ``bug``."""
    if bug not in BUGS:
        raise ValueError(f"unknown seeded bug {bug!r}; known: {', '.join(BUGS)}")
    return [sys.executable, "-m", "properties.chaos._seeded_node", "--bug", bug, "--"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m properties.chaos._seeded_node",
        description="Run raftwright's CLI with a seeded bug patched in (tests only).",
    )
    parser.add_argument("--bug", choices=BUGS, required=True)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="-- then raftwright arguments")
    args = parser.parse_args(argv)
    rest = list(args.rest)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    install(args.bug)
    from impl.cli import main as cli_main

    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main())
