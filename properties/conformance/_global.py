"""Cross-node checks over one recorded run: what no single node's replay can see.

* Every message a node received (and did not refuse as foreign) was sent by its sender, when
  the sender's trace is part of the run: the trace of a sent message is flushed before the
  driver sends it, so a received message missing from the sender's trace was never sent.
* From the recorded states, over the whole run (not only the final states): at most one
  leader per term (Election Safety), at most one vote per node and term, counting granted
  votes in flight (the Ivy lemma), equal commit digests at equal commit indexes (State
  Machine Safety), and equal log digests for equal (last index, last term) (Log Matching).
  These need no spec replay, so they still hold a node to account where its replay stopped
  (a snapshot install, say).
* On the final spec states of a fully replayed run, properties.check_state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from properties._invariants import check_state
from spec import ClusterState, NodeState

__all__ = ["GlobalFacts"]

Json = dict[str, Any]


@dataclass(slots=True)
class _Received:
    key: str
    node: str
    where: str
    record: Json


@dataclass(slots=True)
class GlobalFacts:
    """GlobalFacts accumulates the cross-node evidence of one run as its events stream by."""

    nodes: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)
    received: list[_Received] = field(default_factory=list)
    leaders: dict[int, tuple[str, str]] = field(default_factory=dict)
    votes: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)
    commits: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    logs: dict[tuple[int, int], tuple[int, str, str]] = field(default_factory=dict)
    comparable: dict[str, bool] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    _reported: set[tuple[object, ...]] = field(default_factory=set)

    def _violate(self, text: str, key: tuple[object, ...] | None = None) -> None:
        """_violate records one violation, once per key (the same conflict seen again)."""
        if key is not None:
            if key in self._reported:
                return
            self._reported.add(key)
        if len(self.violations) < 20:
            self.violations.append(text)

    def observe(self, node: str, e: Json, where: str) -> None:
        """observe takes one event of ``node`` (at ``where``, a path:line) into account."""
        dumps = _canonical
        kind = e["i"]
        if kind == "start":
            self.comparable[node] = e["base"][0] == 0
        for record in e.get("out", ()):
            self.sent.add(dumps(record))
            if record["k"] == "vresp" and record["ok"] and not record["pre"]:
                self._vote(record["from"], record["rt"], record["to"], where)
        if kind == "recv":
            m = e["m"]
            if "cl" not in m:
                self.received.append(_Received(dumps(m), node, where, m))
            if m["k"] == "snap" and "err" not in e:
                self.comparable[node] = False
        s = e["s"]
        term, vote, role = s[0], s[1], s[2]
        if role == "L":
            other = self.leaders.setdefault(term, (node, where))
            if other[0] != node:
                self._violate(
                    f"election_safety: {other[0]} ({other[1]}) and {node} ({where}) "
                    f"both lead term {term}",
                    ("leader", term, node),
                )
        if vote is not None:
            self._vote(node, term, vote, where)
        if self.comparable.get(node, True):
            commit, commit_digest, last, last_term, digest = s[4], s[5], s[6], s[7], s[8]
            if commit_digest is not None:
                seen = self.commits.setdefault(commit, (commit_digest, node, where))
                if seen[0] != commit_digest:
                    self._violate(
                        f"state_machine_safety: {seen[1]} ({seen[2]}) and {node} ({where}) "
                        f"committed different logs up to index {commit}",
                        ("commit", commit, node),
                    )
            seen = self.logs.setdefault((last, last_term), (digest, node, where))
            if seen[0] != digest:
                self._violate(
                    f"log_matching: {seen[1]} ({seen[2]}) and {node} ({where}) both end at "
                    f"index {last} term {last_term} but their logs differ",
                    ("log", last, last_term, node),
                )

    def _vote(self, voter: str, term: int, candidate: str, where: str) -> None:
        first = self.votes.setdefault((voter, term), (candidate, where))
        if first[0] != candidate:
            self._violate(
                f"one_vote_per_term: {voter} voted for {first[0]} ({first[1]}) and for "
                f"{candidate} ({where}) in term {term}",
                ("vote", voter, term, candidate),
            )

    def finish(self, final: dict[str, NodeState] | None) -> list[str]:
        """finish runs the end-of-run checks and returns every violation found."""
        for received in self.received:
            sender = received.record["from"]
            if sender in self.nodes and received.key not in self.sent:
                m = received.record
                self._violate(
                    f"received_was_sent: {received.node} ({received.where}) received "
                    f"{m['k']} {sender}->{m['to']} term {m['term']} that {sender} never sent"
                )
        if final is not None:
            order = sorted(final)
            states = tuple(final[name] for name in order)
            cluster = ClusterState(nodes=states, disks=tuple(s.durable() for s in states))
            for violation in check_state(cluster):
                self._violate(f"final states: {violation}")
        return self.violations


def _canonical(record: Json) -> str:
    """_canonical keys a message record; the producer writes every record's keys in one order."""
    return repr(record)
