"""The Ready discipline, checked from the trace alone (no spec): persist before send.

The driver takes a ``Ready``, writes its hard state and entries, reports ``persisted``,
sends, applies and calls ``advance``. From the ``ready``/``persisted``/``advance`` events
this module tracks what storage holds, and demands: every vote request, granted vote and
successful append reply of a Ready is covered by what that Ready writes (the rule of
``properties.persist_before_send``); ``persisted`` names only entries handed to storage; the
recorded durable index never exceeds what storage was given. It runs even where spec replay
stopped. Restart checks use ``Disk`` too (see ``NodeReplay``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from properties.conformance._divergence import Diverged, plain

__all__ = ["Disk", "HardState", "ReadyContract"]

Json = dict[str, Any]
HardState = tuple[int, str | None, int]


@dataclass(slots=True)
class Disk:
    """Disk tracks what the impl made durable, from its ready/persisted/advance events."""

    hs: HardState = (0, None, 0)
    last: int = 0
    handed_hs: HardState = (0, None, 0)
    handed_last: int = 0
    persisted: bool = True  # the handed-out batch was reported durable
    handed_commit: int = 0  # committed entries up to here were handed out to apply


@dataclass(slots=True)
class ReadyContract:
    """ReadyContract follows one node's Readies; ``check`` raises Diverged on a breach."""

    disk: Disk = field(default_factory=Disk)
    batch: list[Json] = field(default_factory=list)

    def restart(self, hs: HardState, last: int, base: int) -> None:
        """restart: storage holds exactly what the node loaded; applying restarts at base."""
        self.disk = Disk(hs, last, hs, last, True, base)
        self.batch = []

    def start(self, e: Json, hs: HardState, last: int, base: int) -> None:
        """start takes a ``start`` event: reset to what was loaded, then bound its durable.

        The previous run's bookkeeping does not apply to a new process (whether its last
        write completed is decided by what the restart loads, which ``NodeReplay`` checks);
        the new run can know durable no more than the log it loaded.
        """
        self.restart(hs, last, base)
        if "out" in e:
            raise Diverged("a start that sends nothing", f"sent {len(e['out'])} message(s)")
        durable = e["s"][9]
        if durable > last:
            raise Diverged(
                f"durable index <= {last} (the log loaded at start)", f"durable index {durable}"
            )

    def check_restart(
        self, loaded_hs: HardState, loaded_last: int, base: int, relaxations: Counter[str]
    ) -> None:
        """check_restart: a restart loads what storage was made to hold (Figure 2).

        The hard state and log last made durable, or those handed to storage just before the
        crash (a process killed after the write finished but before ``persisted`` was
        recorded); never a log longer than storage was given, snapshot base or not.
        """
        disk = self.disk
        durable = (disk.hs, disk.handed_hs)
        if loaded_hs not in durable and _older_commit(loaded_hs, durable):
            # commitIndex is volatile (Figure 2): the impl may skip writing a hard state
            # that moved only the commit index, so a restart can load an older one
            relaxations["restart loads an older commit index (volatile)"] += 1
        elif loaded_hs not in durable:
            raise Diverged(
                f"restart loads the hard state last made durable {list(disk.hs)}"
                + (f" (or {list(disk.handed_hs)})" if disk.handed_hs != disk.hs else ""),
                f"loaded {list(loaded_hs)}",
            )
        if loaded_last not in (disk.last, disk.handed_last) and base == 0:
            raise Diverged(
                f"restart loads the log durable up to {disk.last}",
                f"loaded a log up to {loaded_last}",
            )
        if loaded_last > max(disk.last, disk.handed_last):
            # from a snapshot base too: storage cannot hold entries it was never given
            raise Diverged(
                f"restart loads a log up to at most {max(disk.last, disk.handed_last)}"
                " (what storage was given)",
                f"loaded a log up to {loaded_last}",
            )

    def check(self, e: Json, relaxations: Counter[str]) -> None:
        """check takes one event: the Ready discipline, persist before the messages leave."""
        kind = e["i"]
        disk = self.disk
        if kind == "ready":
            batch, self.batch = self.batch, []
            if len(batch) != e["msgs"]:
                raise Diverged(
                    f"a Ready carrying the {len(batch)} messages recorded since the last one",
                    f"a Ready with {e['msgs']} messages",
                )
            hs = e.get("hs")
            new_hs = (hs[0], hs[1], hs[2]) if hs is not None else disk.handed_hs
            ents = e.get("ents")
            new_last = ents[1] if ents is not None else disk.handed_last
            if "snap" in e:
                new_last = max(new_last, e["snap"][0])
            disk.handed_hs, disk.handed_last = new_hs, new_last
            self._committed(e)
            disk.persisted = "snap" in e  # see the snapshot install relaxation below
            for m in batch:
                _durable_for(m, new_hs, new_last)
        elif kind == "persisted":
            if e["index"] > disk.handed_last:
                raise Diverged(
                    f"persisted index <= {disk.handed_last} (the last entry handed to storage)",
                    f"persisted({e['index']})",
                )
            disk.persisted = True
        elif kind == "advance":
            disk.hs, disk.last, disk.persisted = disk.handed_hs, disk.handed_last, True
        elif kind == "recv" and e["m"]["k"] == "snap" and "err" not in e:
            # the impl counts an installed snapshot durable at once; its next Ready writes it
            relaxations["snapshot install counts as durable before its Ready"] += 1
            disk.handed_last = max(disk.handed_last, e["m"]["si"])
            disk.persisted = True
            disk.handed_commit = max(disk.handed_commit, e["s"][4])
        if "out" in e:
            self.batch.extend(e["out"])
        durable = e["s"][9]
        bound = disk.handed_last if disk.persisted else disk.last
        if durable > max(bound, disk.last):
            raise Diverged(
                f"durable index <= {max(bound, disk.last)} (what storage was given)",
                f"durable index {durable}",
            )

    def _committed(self, e: Json) -> None:
        """_committed: a Ready hands out exactly the entries newly committed, in order, once."""
        disk = self.disk
        commit = e["s"][4]
        cmt = e.get("cmt")
        expected = [disk.handed_commit + 1, commit] if commit > disk.handed_commit else None
        if cmt != expected:
            raise Diverged(
                f"a Ready handing out committed entries {expected} (commit index {commit})",
                f"a Ready handing out {cmt}",
            )
        disk.handed_commit = max(disk.handed_commit, commit)


def _durable_for(m: Json, hs: HardState, last: int) -> None:
    """_durable_for: the persist-before-send rule of properties.persist_before_send."""
    kind = m["k"]
    need: tuple[int, str] | None = None
    if kind == "vreq" and not m["pre"]:
        need = (m["term"], m["from"])
    elif kind == "vresp" and m["ok"] and not m["pre"]:
        need = (m["rt"], m["to"])
    elif (kind == "appr" and m["ok"]) and (
        hs[0] < m["term"] or (hs[0] == m["term"] and last < m["mi"])
    ):
        raise Diverged(
            f"index {m['mi']} durable before acknowledging it",
            f"acknowledged {plain(m)} with storage at term {hs[0]}, last index {last}",
        )
    if need is not None and (hs[0] < need[0] or (hs[0] == need[0] and hs[1] != need[1])):
        raise Diverged(
            f"term {need[0]} and vote {need[1]} durable before {plain(m)} leaves",
            f"storage holds term {hs[0]}, vote {hs[1]}",
        )


def _older_commit(loaded: HardState, durable: tuple[HardState, ...]) -> bool:
    """_older_commit: the loaded hard state is a durable one but for an older commit index."""
    term, vote, commit = loaded
    return any(term == t and vote == v and commit <= c for t, v, c in durable)
