"""Membership changes in replay: CONFIG entries and ``member`` inputs checked by the spec.

Reference: Raft thesis chapter 4: section 4.1 (one server at a time; a server uses the latest
configuration in its log, committed or not), 4.2.1 (new servers join as learners and are
promoted once caught up), 4.2.2 (a removed leader steps down once the change commits), and
Ongaro's 2015 raft-dev fix (no change before an entry of the leader's term has committed).
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from impl._core import AppendRequest, MembershipChangeError, NotLeader, Role
from impl._trace import TracingCore
from properties.conformance import check_traces
from tests.conformance._edit import edit_first, load, save
from tests.conformance._record import SCENARIOS, record
from tests.conformance._sansio import SansIOCluster

Json = dict[str, Any]


def _grow_and_shrink(trace_dir: Path) -> SansIOCluster:
    """n4 joins as a learner and is promoted; n2 is removed; the leader n1 removes itself."""
    cluster = SansIOCluster(trace_dir)
    cluster.elect("n1")
    for i in range(3):
        cluster.cores["n1"].propose(b"x%d" % i)
        cluster.drain()
    cluster.start("n4", join=True)
    cluster.cores["n1"].add_learner("n4", "127.0.0.1:7004")
    cluster.drain()
    cluster.heartbeat()
    cluster.promote_caught_up()
    assert set(cluster.cores["n1"].membership.voters) == {"n1", "n2", "n3", "n4"}
    cluster.cores["n1"].propose(b"with n4")
    cluster.drain()
    cluster.cores["n1"].remove_server("n2")
    cluster.drain()
    cluster.heartbeat()
    cluster.cores["n1"].propose(b"without n2")
    cluster.drain()
    cluster.cores["n1"].remove_server("n1")
    cluster.drain()
    cluster.heartbeat()
    assert cluster.cores["n1"].role is Role.FOLLOWER, "a removed leader steps down (4.2.2)"
    for core in cluster.cores.values():
        core.check_quorum_timeout()
    cluster.elect("n3")
    assert cluster.leader() == "n3"
    cluster.cores["n3"].propose(b"after")
    cluster.drain()
    cluster.heartbeat()
    cluster.close()
    return cluster


def test_membership_changes_are_fully_replayed(tmp_path: Path) -> None:
    """Reference: thesis 4.1, 4.2.1, 4.2.2; join, promote, remove a voter, remove the leader."""
    _grow_and_shrink(tmp_path)
    result = check_traces([tmp_path])
    assert result.ok, result.render()
    assert result.nodes == 4
    assert not result.global_only, result.render()
    n1 = load(tmp_path / "node-n1.ndjson")
    changes = [e for e in n1 if e.get("i") == "member" and "err" not in e]
    assert [e["op"] for e in changes] == ["add", "promote", "remove", "remove"]
    n4 = load(tmp_path / "node-n4.ndjson")
    assert n4[0].get("join") is True and n4[0]["voters"] == []
    config_entries = {
        (ent[0], ent[3])
        for e in n1
        for m in e.get("out", ())
        for ent in m.get("ents", ())
        if ent[2] == 2
    }
    assert len(config_entries) == 4


def _leader_with_uncommitted_term(cluster: SansIOCluster, node_id: str) -> None:
    """Elect node_id and stop as soon as it leads, before its term-change entry commits."""
    for other in cluster.cores.values():
        other.check_quorum_timeout()  # followers' leader lease ends: they grant prevotes again
    core = cluster.cores[node_id]
    core.election_timeout()
    cluster.drain(until=lambda: core.role is Role.LEADER)
    assert core.role is Role.LEADER and core.term_at(core.commit_index) != core.term


def test_changes_the_impl_refuses_are_refused_by_the_spec(tmp_path: Path) -> None:
    """Reference: thesis 4.1 and the 2015 fix: every refusal of the impl is the spec's too."""
    cluster = SansIOCluster(tmp_path)
    refused: list[str] = []
    cluster.elect("n1")
    cluster.cores["n1"].propose(b"a")
    cluster.drain()
    _leader_with_uncommitted_term(cluster, "n2")
    cases: list[tuple[str, str, tuple[str, ...]]] = [
        ("n2", "add_learner", ("n4", "127.0.0.1:7004")),  # 2015 fix: own term not committed
    ]
    for node_id, change, args in cases:
        try:
            getattr(cluster.cores[node_id], change)(*args)
        except (MembershipChangeError, NotLeader) as exc:
            refused.append(str(exc))
    cluster.drain()
    later: list[tuple[str, str, tuple[str, ...]]] = [
        ("n1", "add_learner", ("n4", "127.0.0.1:7004")),  # not the leader
        ("n2", "add_learner", ("n3", "127.0.0.1:7003")),  # already a member
        ("n2", "remove_server", ("n9",)),  # not a member
        ("n2", "promote_learner", ("n3",)),  # a voter, not a learner
    ]
    for node_id, change, args in later:
        try:
            getattr(cluster.cores[node_id], change)(*args)
        except (MembershipChangeError, NotLeader) as exc:
            refused.append(str(exc))
    cluster.cores["n2"].add_learner("n4", "127.0.0.1:7004")  # n4 is never started
    try:
        cluster.cores["n2"].remove_server("n1")  # the add is not committed yet
    except MembershipChangeError as exc:
        refused.append(str(exc))
    cluster.drain()
    try:
        cluster.cores["n2"].promote_learner("n4")  # n4 has not caught up (4.2.1)
    except MembershipChangeError as exc:
        refused.append(str(exc))
    cluster.close()
    assert len(refused) == 7, refused
    result = check_traces([tmp_path])
    assert result.ok, result.render()
    assert not result.global_only, result.render()
    n2 = load(tmp_path / "node-n2.ndjson")
    assert sum(1 for e in n2 if e.get("i") == "member" and "err" in e) == 6


class EagerPromotion(TracingCore):
    """EagerPromotion: a seeded bug, a learner promoted before it has caught up."""

    def _promote_learner(self, node_id: str) -> int:
        config = self._require_change(node_id)
        voters = dict(config.voters)
        learners = dict(config.learners)
        voters[node_id] = learners.pop(node_id)
        return self._append_config(voters, learners)


class EarlyChange(TracingCore):
    """EarlyChange: a seeded bug, the single-server change bug's fix left out (2015)."""

    def _change_blocked(self) -> str | None:
        if self._transfer_to is not None or self._in_use.index > self._commit:
            return super()._change_blocked()
        return None


def test_promotion_before_catch_up_is_rejected(tmp_path: Path) -> None:
    """Reference: thesis 4.2.1, a learner becomes a voter only once caught up."""
    cluster = SansIOCluster(tmp_path, core_class=EagerPromotion)
    cluster.elect("n1")
    cluster.cores["n1"].propose(b"a")  # an entry of the leader's term commits
    cluster.drain()
    cluster.cores["n1"].add_learner("n4", "127.0.0.1:7004")  # n4 is never started
    cluster.drain()
    cluster.cores["n1"].promote_learner("n4")
    cluster.drain()
    cluster.close()
    result = check_traces([tmp_path])
    assert not result.ok
    first = result.divergences[0]
    assert first.node == "n1" and first.input == "member promote n4"
    assert "behind commit" in first.expected and first.actual == "input accepted"
    assert "DIVERGENCE on node n1" in result.render()


def test_change_before_an_own_term_commit_is_rejected(tmp_path: Path) -> None:
    """Reference: the 2015 raft-dev fix, no change before an entry of the leader's term."""
    cluster = SansIOCluster(tmp_path, core_class=EarlyChange)
    cluster.elect("n1")
    cluster.cores["n1"].propose(b"a")
    cluster.drain()
    _leader_with_uncommitted_term(cluster, "n2")
    cluster.cores["n2"].add_learner("n4", "127.0.0.1:7004")
    cluster.drain()
    cluster.close()
    result = check_traces([tmp_path])
    assert not result.ok
    first = result.divergences[0]
    assert first.node == "n2" and first.input == "member add n4 at 127.0.0.1:7004"
    assert "no entry of term 2 has committed yet" in first.expected


def test_a_config_entry_naming_other_voters_is_rejected(tmp_path: Path) -> None:
    """Reference: thesis 4.1, the entry holds exactly the configuration the change made."""
    _grow_and_shrink(tmp_path)

    def has_config(e: Json) -> bool:
        return any(ent[2] == 2 for m in e.get("out", ()) for ent in m.get("ents", ()))

    def forge(e: Json) -> None:
        for m in e["out"]:
            for ent in m.get("ents", ()):
                if ent[2] == 2:
                    config = json.loads(base64.b64decode(ent[3]))
                    config["voters"]["n4"] = config["learners"].pop("n4")
                    raw = json.dumps(config, sort_keys=True, separators=(",", ":"))
                    ent[3] = base64.b64encode(raw.encode()).decode()

    line = edit_first(tmp_path / "node-n1.ndjson", has_config, forge)
    result = check_traces([tmp_path])
    assert not result.ok
    first = result.divergences[0]
    assert (first.node, first.line) == ("n1", line)
    assert "Append" in first.expected and "ents=" in first.actual


def test_sentinel_for_a_change_on_an_idle_cluster_conforms(tmp_path: Path) -> None:
    """Reference: the 2015 fix; a leader elected with a fully committed log appends a no-op
    of its term on request, and a second request (or one off the leader) is refused."""
    cluster = SansIOCluster(tmp_path)
    cluster.elect("n1")  # nothing in the log: no sentinel, no entry of term 1
    with pytest.raises(MembershipChangeError):
        cluster.cores["n1"].add_learner("n4", "127.0.0.1:7004")
    cluster.cores["n1"].append_sentinel()
    with pytest.raises(MembershipChangeError):
        cluster.cores["n1"].append_sentinel()  # the log holds an entry of term 1 now
    with pytest.raises(NotLeader):
        cluster.cores["n2"].append_sentinel()
    cluster.drain()
    cluster.cores["n1"].add_learner("n4", "127.0.0.1:7004")
    cluster.drain()
    cluster.close()
    result = check_traces([tmp_path])
    assert result.ok, result.render()
    assert not result.global_only, result.render()
    n1 = load(tmp_path / "node-n1.ndjson")
    assert [("err" in e) for e in n1 if e.get("i") == "sentinel"] == [False, True]


@pytest.mark.network
def test_real_nodes_join_transfer_and_remove_conform(tmp_path: Path) -> None:
    """Reference: thesis 4.1, 4.2.1, 4.2.2, 3.10; in-process Nodes over grpc with SQLite: a
    ``join`` node is added, promoted by the driver once caught up, takes leadership by
    TimeoutNow, and removes the first leader; every node fully replayed."""
    traces = tmp_path / "traces"
    asyncio.run(record(SCENARIOS["membership-transfer"], tmp_path / "data", traces))
    result = check_traces([traces])
    assert result.ok, result.render()
    assert result.nodes == 4
    assert not result.global_only, result.render()
    events = [e for path in traces.iterdir() for e in load(path)]
    ops = sorted(e["op"] for e in events if e.get("i") == "member" and "err" not in e)
    assert ops == ["add", "promote", "remove"]
    assert any(e.get("i") == "recv" and e["m"]["k"] == "tnow" and e.get("out") for e in events)


def test_a_header_without_voters_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """A node that is neither joining nor has a configuration cannot be replayed: reported."""
    _grow_and_shrink(tmp_path)
    records = load(tmp_path / "node-n2.ndjson")
    records[0]["voters"] = []
    records[0]["learners"] = ["n2"]
    save(tmp_path / "node-n2.ndjson", records)
    result = check_traces([tmp_path])
    assert not result.ok
    assert any("header configuration" in error for error in result.errors), result.render()


def test_reads_answered_by_the_reply_that_retires_the_leader_conform(tmp_path: Path) -> None:
    """Reference: thesis 4.2.2 and 6.4 — the reply that commits the leader's own removal
    also confirms a pending read: the spec answers it, then steps down, and aborts only the
    rest. A chaos run showed the impl aborting it (fixed in the core) and, after that fix,
    the checker expecting it aborted; this trace fails on either old rule."""
    cluster = SansIOCluster(tmp_path)
    cluster.elect("n1")
    cluster.cores["n1"].propose(b"first")
    cluster.drain()
    cluster.heartbeat()
    n1 = cluster.cores["n1"]
    n1.read_index(7)
    n1.remove_server("n1")
    # only the config entry's appends carry the read's number: lose the read's heartbeats
    cluster.drop = lambda src, env: (
        src == "n1" and isinstance(env.message, AppendRequest) and not env.message.entries
    )
    cluster.drain()
    assert n1.role is Role.FOLLOWER
    cluster.close()
    events = load(tmp_path / "node-n1.ndjson")
    retired = next(e for e in events if e.get("s", [None] * 3)[2] == "F" and e.get("reads"))
    assert [r[0] for r in retired["reads"]] == [7] and not retired.get("abort")
    result = check_traces([tmp_path])
    assert result.ok, result.render()
