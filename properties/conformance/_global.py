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

``NodeFacts`` is gathered per node (so nodes can be checked in parallel processes) and
``merge_facts`` does the cross-node part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from properties._invariants import check_state
from properties.conformance._json import record_key
from spec import ClusterState, NodeState

__all__ = ["NodeFacts", "merge_facts"]

Json = dict[str, Any]
_LIMIT = 20


@dataclass(slots=True)
class NodeFacts:
    """NodeFacts is one node's evidence for the cross-node checks (picklable).

    Places are file:line strings, made only when a fact is first stored: most events repeat
    the state of the one before and store nothing.
    """

    node: str
    file: str = ""
    sent: set[bytes] = field(default_factory=set)  # record_key of every message sent
    received: list[tuple[bytes, int, Json]] = field(default_factory=list)  # key, line, message
    leaders: dict[int, str] = field(default_factory=dict)  # term -> where
    commits: dict[int, tuple[int, str]] = field(default_factory=dict)  # index -> digest, where
    logs: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)
    votes: dict[int, tuple[str, str]] = field(default_factory=dict)  # term -> candidate, where
    violations: list[str] = field(default_factory=list)
    comparable: bool = True
    _reported: set[tuple[object, ...]] = field(default_factory=set)
    _last: list[Any] | None = None  # the state recorded by the previous event

    def violate(self, text: str, key: tuple[object, ...]) -> None:
        """violate records one violation, once per key (the same conflict seen again)."""
        if key not in self._reported and len(self.violations) < _LIMIT:
            self._reported.add(key)
            self.violations.append(text)

    def where(self, line: int) -> str:
        """where names a line of this node's file."""
        return f"{self.file}:{line}"

    def observe(self, e: Json, line: int) -> None:
        """observe takes one event of this node (at ``line`` of its file) into account."""
        kind = e["i"]
        if kind == "start":
            self.comparable = e["base"][0] == 0
            self._last = None
        out = e.get("out")
        if out is not None:
            sent = self.sent
            for record in out:
                # the producer writes every record's keys in one order: equal records, equal keys
                sent.add(record_key(record))
                if record["k"] == "vresp" and record["ok"] and not record["pre"]:
                    self._vote(record["rt"], record["to"], line)
        if kind == "recv":
            m = e["m"]
            if "cl" not in m:
                self.received.append((record_key(m), line, m))
            if m["k"] == "snap" and "err" not in e:
                self.comparable = False
        s = e["s"]
        if s == self._last:
            return  # the same state as the event before: every fact below is already stored
        self._last = s
        term = s[0]
        if s[2] == "L" and term not in self.leaders:
            self.leaders[term] = self.where(line)
        vote = s[1]
        if vote is not None:
            first = self.votes.get(term)
            if first is None or first[0] != vote:
                self._vote(term, vote, line)
        if self.comparable:
            commit, commit_digest = s[4], s[5]
            if commit_digest is not None:
                seen = self.commits.get(commit)
                if seen is None:
                    self.commits[commit] = (commit_digest, self.where(line))
                elif seen[0] != commit_digest:
                    self.violate(
                        f"state_machine_safety: {self.node} committed different logs up to "
                        f"index {commit} ({seen[1]}, {self.where(line)})",
                        ("commit", commit),
                    )
            key = (s[6], s[7])
            seen = self.logs.get(key)
            if seen is None:
                self.logs[key] = (s[8], self.where(line))
            elif seen[0] != s[8]:
                self.violate(
                    f"log_matching: {self.node} ended at index {s[6]} term {s[7]} with two "
                    f"different logs ({seen[1]}, {self.where(line)})",
                    ("log", s[6], s[7]),
                )

    def _vote(self, term: int, candidate: str, line: int) -> None:
        first = self.votes.get(term)
        if first is None:
            self.votes[term] = (candidate, self.where(line))
        elif first[0] != candidate:
            self.violate(
                f"one_vote_per_term: {self.node} voted for {first[0]} ({first[1]}) and for "
                f"{candidate} ({self.where(line)}) in term {term}",
                ("vote", term, candidate),
            )


def merge_facts(facts: list[NodeFacts], final: dict[str, NodeState] | None) -> list[str]:
    """merge_facts runs the cross-node checks of one run and returns every violation."""
    violations: list[str] = []
    reported: set[tuple[object, ...]] = set()

    def violate(text: str, key: tuple[object, ...]) -> None:
        if key not in reported and len(violations) < _LIMIT:
            reported.add(key)
            violations.append(text)

    for node_facts in facts:
        violations.extend(node_facts.violations)
    leaders: dict[int, tuple[str, str]] = {}
    commits: dict[int, tuple[int, str, str]] = {}
    logs: dict[tuple[int, int], tuple[int, str, str]] = {}
    for f in facts:
        for term, where in f.leaders.items():
            other = leaders.setdefault(term, (f.node, where))
            if other[0] != f.node:
                violate(
                    f"election_safety: {other[0]} ({other[1]}) and {f.node} ({where}) "
                    f"both lead term {term}",
                    ("leader", term),
                )
        for index, (digest, where) in f.commits.items():
            seen = commits.setdefault(index, (digest, f.node, where))
            if seen[0] != digest:
                violate(
                    f"state_machine_safety: {seen[1]} ({seen[2]}) and {f.node} ({where}) "
                    f"committed different logs up to index {index}",
                    ("commit", index),
                )
        for key, (digest, where) in f.logs.items():
            seen_log = logs.setdefault(key, (digest, f.node, where))
            if seen_log[0] != digest:
                violate(
                    f"log_matching: {seen_log[1]} ({seen_log[2]}) and {f.node} ({where}) both "
                    f"end at index {key[0]} term {key[1]} but their logs differ",
                    ("log", key),
                )
    traced = {f.node: f for f in facts}
    for f in facts:
        for text, line, m in f.received:
            sender = traced.get(m["from"])
            if sender is not None and text not in sender.sent:
                violate(
                    f"received_was_sent: {f.node} ({f.where(line)}) received {m['k']} "
                    f"{m['from']}->{m['to']} term {m['term']} that {m['from']} never sent",
                    ("sent", f.node, line),
                )
    if final is not None:
        states = tuple(final[name] for name in sorted(final))
        cluster = ClusterState(nodes=states, disks=tuple(s.durable() for s in states))
        for violation in check_state(cluster):
            violate(f"final states: {violation}", ("final", violation.invariant))
    return violations
