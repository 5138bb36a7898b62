"""Deterministic traces from a sans-IO cluster of TracingCores: they conform, and edits don't.

Reference: Raft paper section 5.2 (one vote per term, election), 5.3 (replication),
5.4.1 (election restriction), thesis 6.4 (ReadIndex) and 9.6 (prevote): the spec encodes
these rules, and replay demands the implementation's every step follow them.
"""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path

import pytest

from impl._core import VoteRequest
from impl._trace import TracingCore
from properties.conformance import check_traces, main
from tests.conformance._edit import edit_first, load, save
from tests.conformance._sansio import SansIOCluster


def _run(trace_dir: Path, core_class: type[TracingCore] = TracingCore) -> SansIOCluster:
    cluster = SansIOCluster(trace_dir, core_class=core_class)
    cluster.elect("n1")
    for i in range(4):
        leader = cluster.leader()
        assert leader is not None
        cluster.cores[leader].propose(b"cmd%d" % i)
        cluster.drain()
    cluster.cores["n1"].read_index(7)
    cluster.drain()
    cluster.heartbeat()
    cluster.crash("n3")
    cluster.cores["n1"].propose(b"while n3 is down")
    cluster.drain()
    cluster.start("n3")
    cluster.heartbeat()
    cluster.close()
    return cluster


@pytest.fixture
def traces(tmp_path: Path) -> Path:
    _run(tmp_path)
    return tmp_path


def test_fresh_sansio_traces_conform(traces: Path) -> None:
    """Reference: sections 5.2-5.4 and thesis 6.4; election, writes, a read, a restart."""
    result = check_traces([traces])
    assert result.ok, result.render()
    assert result.nodes == 3
    assert result.spec_steps > 50
    assert not result.global_only
    n1 = load(traces / "node-n1.ndjson")
    assert any(e.get("reads") for e in n1), "the read was released and recorded"
    assert sum(1 for e in load(traces / "node-n3.ndjson") if "format" in e) == 2


def test_changed_vote_is_rejected(traces: Path) -> None:
    """Reference: section 5.2, a server votes for the candidate that asked first."""
    line = edit_first(
        traces / "node-n2.ndjson",
        lambda e: e["s"][1] == "n1",
        lambda e: e["s"].__setitem__(1, "n3"),
    )
    result = check_traces([traces])
    assert not result.ok
    first = result.divergences[0]
    assert (first.node, first.line) == ("n2", line)
    assert "vote='n1'" in first.expected and "vote='n3'" in first.actual
    assert "DIVERGENCE on node n2" in result.render()


def test_lowered_term_is_rejected(traces: Path) -> None:
    """Reference: section 5.1, terms only grow."""
    records = load(traces / "node-n1.ndjson")
    target = next(i for i, e in enumerate(records) if e.get("i") == "propose")
    records[target]["s"][0] -= 1
    save(traces / "node-n1.ndjson", records)
    result = check_traces([traces])
    assert not result.ok
    assert result.divergences[0].node == "n1"
    assert "term=1" in result.divergences[0].expected
    assert "term=0" in result.divergences[0].actual


def test_message_never_sent_is_rejected(traces: Path) -> None:
    """A follower's trace claims a prevote reply n3 never sent (the global check)."""
    records = load(traces / "node-n2.ndjson")
    last = records[-1]
    forged = {
        "i": "recv",
        "m": {"k": "vresp", "pre": True, "ok": False, "rt": 0, "from": "n3", "to": "n2", "term": 0},
        "n": last["n"] + 1,
        "s": list(last["s"]),
    }
    save(traces / "node-n2.ndjson", [*records, forged])
    result = check_traces([traces])
    assert not result.ok
    assert not result.divergences, "the replay alone accepts a stale, ignored reply"
    assert any("never sent" in v and "n3->n2" in v for v in result.violations)


def test_vote_sent_before_durable_is_rejected(traces: Path) -> None:
    """Reference: Figure 2, persistent state is updated before responding to RPCs."""
    path = traces / "node-n2.ndjson"
    edit_first(path, lambda e: e.get("i") == "ready" and "hs" in e, lambda e: e.pop("hs"))
    result = check_traces([traces])
    assert not result.ok
    assert "durable before" in result.divergences[0].expected


def test_restart_that_forgets_its_vote_is_rejected(traces: Path) -> None:
    """Reference: section 5.1 and PySyncObj #84: term and vote must survive a restart."""
    path = traces / "node-n3.ndjson"
    records = load(path)
    starts = [i for i, e in enumerate(records) if e.get("i") == "start"]
    records[starts[1]]["hs"] = [0, None, 0]
    save(path, records)
    result = check_traces([traces])
    assert not result.ok
    assert "restart loads the hard state" in result.divergences[0].expected


def test_kill_after_the_write_before_persisted_is_recorded_conforms(tmp_path: Path) -> None:
    """Reference: Figure 2 and section 5.1: a restart loads what storage holds; here storage
    finished the Ready's write but the process died before the trace recorded ``persisted``
    (a SIGKILL right after the fsync). The restarted node legitimately knows more durable
    than the previous run ever reported; that is not "durable beyond what storage was given".
    """
    cluster = SansIOCluster(tmp_path)
    cluster.elect("n1")
    cluster.cores["n1"].propose(b"before")
    cluster.drain()
    cluster.cores["n1"].propose(b"written, never reported")
    cluster.run_until_ready("n3")
    written = cluster.crash_after_write("n3")
    cluster.start("n3")
    cluster.heartbeat()
    cluster.cores["n1"].propose(b"after")
    cluster.drain()
    cluster.close()
    n3 = load(tmp_path / "node-n3.ndjson")
    second = max(i for i, e in enumerate(n3) if "format" in e)
    reported = max(e["index"] for e in n3[:second] if e.get("i") == "persisted")
    start = n3[second + 1]
    assert start["i"] == "start" and start["s"][9] == written > reported, "the situation"
    result = check_traces([tmp_path])
    assert result.ok, result.render()
    assert not result.global_only


def test_restart_that_claims_more_durable_than_it_loaded_is_rejected(tmp_path: Path) -> None:
    """Reference: Figure 2: after a restart only what storage loaded is durable."""
    _run(tmp_path)
    path = tmp_path / "node-n3.ndjson"
    records = load(path)
    start = [e for e in records if e.get("i") == "start"][1]
    start["s"][9] = start["s"][6] + 1
    save(path, records)
    result = check_traces([tmp_path])
    assert not result.ok
    assert "the log loaded at start" in result.divergences[0].expected


def test_restart_that_loads_entries_never_given_to_storage_is_rejected(tmp_path: Path) -> None:
    """Reference: Figure 2: a restart cannot load log entries its storage was never given."""
    _run(tmp_path)
    path = tmp_path / "node-n3.ndjson"
    records = load(path)
    start = [e for e in records if e.get("i") == "start"][1]
    last = start["ents"][-1]
    start["ents"].append([last[0] + 1, last[1], 0, ""])
    save(path, records)
    result = check_traces([tmp_path])
    assert not result.ok
    assert "restart loads the log" in result.divergences[0].expected


class DoubleVoter(TracingCore):
    """DoubleVoter is a deliberately broken core: it forgets its vote before every request."""

    def _handle_vote_request(self, msg: VoteRequest) -> None:
        if not msg.prevote:
            self._vote = None
        super()._handle_vote_request(msg)


def _split_vote(trace_dir: Path, core_class: type[TracingCore]) -> SansIOCluster:
    cluster = SansIOCluster(trace_dir, core_class=core_class)
    cluster.cores["n1"].election_timeout()
    cluster.cores["n2"].election_timeout()
    cluster.drain()
    cluster.close()
    return cluster


def test_split_vote_conforms_with_the_real_core(tmp_path: Path) -> None:
    """Reference: section 5.2, two candidates in one term; each voter grants only one."""
    cluster = _split_vote(tmp_path, TracingCore)
    assert sum(1 for c in cluster.cores.values() if c.role.value == "leader") <= 1
    result = check_traces([tmp_path])
    assert result.ok, result.render()


def test_broken_core_that_votes_twice_is_rejected(tmp_path: Path) -> None:
    """Reference: section 5.2, Election Safety rests on one vote per term."""
    _split_vote(tmp_path, DoubleVoter)
    result = check_traces([tmp_path])
    assert not result.ok
    first = result.divergences[0]
    assert "deny" in first.expected and "grant" in first.actual
    assert any(v.startswith(str(tmp_path)) for v in result.violations)
    assert any("election_safety" in v or "one_vote_per_term" in v for v in result.violations)


def test_torn_last_line_is_tolerated(traces: Path) -> None:
    """A killed process leaves half a line at the end; the prefix still conforms."""
    with (traces / "node-n1.ndjson").open("a") as handle:
        handle.write('{"i":"recv","m":{"k":"ap')
    result = check_traces([traces])
    assert result.ok, result.render()


def test_corrupt_middle_line_is_an_error(traces: Path) -> None:
    path = traces / "node-n1.ndjson"
    lines = path.read_text().splitlines()
    lines[3] = lines[3][:10]
    path.write_text("\n".join(lines) + "\n")
    result = check_traces([traces])
    assert not result.ok
    assert any("corrupt line" in error for error in result.errors)


def test_cli_exit_codes(traces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(traces)]) == 0
    assert "conformance OK" in capsys.readouterr().out
    assert main([str(tmp_path / "missing")]) == 1
    assert "no such file" in capsys.readouterr().out
    edit_first(
        traces / "node-n1.ndjson",
        lambda e: e.get("i") == "timeout",
        lambda e: e.__setitem__("i", "heartbeat"),
    )
    assert main([str(traces / "node-n1.ndjson")]) == 1
    out = capsys.readouterr().out
    assert "DIVERGENCE on node n1" in out and "events before it" in out


def test_leader_committing_before_a_durable_quorum_is_rejected(traces: Path) -> None:
    """Reference: section 5.4.2 and thesis 10.2.1: the leader counts itself once durable.

    The first commit on n1 is edited to claim the leader's own log was not yet durable, so
    only one of three voters held the entry: committing it then is premature.
    """
    path = traces / "node-n1.ndjson"
    records = load(path)
    target = next(
        i
        for i, e in enumerate(records)
        if e.get("i") == "recv" and e["s"][4] > records[i - 1]["s"][4]
    )
    records[target]["s"][9] = records[target]["s"][4] - 1
    save(path, records)
    result = check_traces([traces])
    assert not result.ok
    first = result.divergences[0]
    assert first.node == "n1" and first.line == target + 1
    assert "commit=" in first.expected


def test_append_with_a_wrong_prev_term_is_rejected(traces: Path) -> None:
    """Reference: section 5.3, AppendEntries carries the term of the entry before the batch."""
    path = traces / "node-n1.ndjson"
    edit_first(
        path,
        lambda e: any(m["k"] == "app" and m["pi"] > 0 for m in e.get("out", ())),
        lambda e: next(m for m in e["out"] if m["k"] == "app" and m["pi"] > 0).__setitem__("pt", 7),
    )
    result = check_traces([traces])
    assert not result.ok
    first = result.divergences[0]
    assert first.node == "n1"
    assert "Append" in first.expected and "pt=7" in first.actual
    assert any("never sent" in v for v in result.violations)


def test_parallel_check_finds_the_same(traces: Path) -> None:
    """Nodes replay independently: checking in two processes gives the same verdicts."""
    serial = check_traces([traces])
    parallel = check_traces([traces], jobs=2)
    assert parallel.ok and serial.ok
    assert (parallel.events, parallel.spec_steps) == (serial.events, serial.spec_steps)
    _split_vote(traces / "broken", DoubleVoter)
    broken = check_traces([traces], jobs=2)
    assert not broken.ok
    assert broken.runs == 2
    assert broken.violations == check_traces([traces]).violations


def test_precandidate_that_grants_a_vote_follows_the_spec(tmp_path: Path) -> None:
    """Reference: section 5.2 and thesis 9.6: granting a vote cancels our own prevote round.

    The seed resets its election timer and cancels the election in flight when it grants a
    vote; the spec makes the pre-candidate a follower, and so must the impl.
    """
    from impl._core import AppendResponse, CoreConfig, StoredState
    from impl._trace import TraceWriter, trace_path

    config = CoreConfig("n3", ("n1", "n2", "n3"), "x")
    core = TracingCore(config, StoredState.empty(), TraceWriter(trace_path(tmp_path, "n3")))
    core.receive(AppendResponse("x", "n1", 1, False, 0, 0, 0, 0))  # adopt term 1, no vote
    core.advance(core.ready())
    core.election_timeout()
    core.advance(core.ready())
    core.receive(VoteRequest("x", "n2", 1, False, 0, 0))
    core.advance(core.ready())
    core.close_trace()
    assert (core.role.value, core.voted_for) == ("follower", "n2")
    result = check_traces([tmp_path])
    assert result.ok, result.render()


def test_committed_entries_skipped_by_a_ready_are_rejected(traces: Path) -> None:
    """Reference: section 5.3: every committed entry is applied, in log order, exactly once."""
    edit_first(
        traces / "node-n2.ndjson",
        lambda e: e.get("i") == "ready" and "cmt" in e,
        lambda e: e.pop("cmt"),
    )
    result = check_traces([traces])
    assert not result.ok
    assert "handing out committed entries" in result.divergences[0].expected


def test_a_stale_append_at_the_snapshot_base_leaves_the_log_digest_alone(tmp_path: Path) -> None:
    """Reference: section 7 (entries up to the snapshot base are immutable).

    Found by a chaos run: after compacting up to its last index, a follower refused a stale
    leader's append whose first entry sat at the base, and the recorder restarted its digest
    chain at the base, so the recorded digest changed although the log had not.
    """
    from impl._core import (
        AppendRequest,
        CoreConfig,
        Entry,
        EntryKind,
        HardState,
        SnapshotMeta,
        StoredState,
    )
    from impl._trace import TraceWriter, trace_path

    voters = ("n1", "n2", "n3")
    log = [Entry(1, 1, EntryKind.NORMAL, b"a"), Entry(2, 2, EntryKind.NORMAL, b"b")]
    stored = StoredState(HardState(2, None, 2), None, log)
    core = TracingCore(
        CoreConfig("n2", voters, "x"), stored, TraceWriter(trace_path(tmp_path, "n2"))
    )
    core.applied(2)
    core.snapshot_taken(SnapshotMeta(2, 2, voters))
    stale = AppendRequest("x", "n1", 1, 1, 1, (Entry(2, 1, EntryKind.NORMAL, b"z"),), 1, 0)
    core.receive(stale)
    core.close_trace()
    states = [event["s"] for event in load(trace_path(tmp_path, "n2")) if "s" in event]
    assert states[-1] == states[-2], "a refused append changed the recorded state"


def _restart_with_commit(tmp_path: Path, delta: int) -> None:
    """n3 restarts from a disk whose hard state holds its commit index moved by ``delta``."""
    cluster = SansIOCluster(tmp_path)
    cluster.elect("n1")
    for i in range(3):
        cluster.cores["n1"].propose(b"cmd%d" % i)
        cluster.drain()
    cluster.crash("n3")
    stored = cluster.disks["n3"]
    hs = stored.hard_state
    assert 1 <= hs.commit < len(stored.entries), "the leader's last commit is not yet known"
    cluster.disks["n3"] = replace(stored, hard_state=replace(hs, commit=hs.commit + delta))
    cluster.start("n3")
    cluster.heartbeat()
    cluster.cores["n1"].propose(b"after")
    cluster.drain()
    cluster.close()


def test_restart_that_loads_an_older_commit_index_conforms(tmp_path: Path) -> None:
    """Reference: Figure 2: commitIndex is volatile state. A driver may skip writing a hard
    state that moved only the commit index, so a restart can load an older one (term and
    vote intact); the node learns the commit again from its leader."""
    _restart_with_commit(tmp_path, -1)
    result = check_traces([tmp_path])
    assert result.ok, result.render()
    assert result.relaxations["restart loads an older commit index (volatile)"] == 1


def test_restart_that_loads_a_newer_commit_index_is_rejected(tmp_path: Path) -> None:
    """Reference: Figure 2: a restart cannot know a commit index it never made durable."""
    _restart_with_commit(tmp_path, +1)
    result = check_traces([tmp_path])
    assert not result.ok
    assert "restart loads the hard state" in result.divergences[0].expected


def test_gzipped_trace_checks_like_the_plain_one(traces: Path) -> None:
    """A ``.ndjson.gz`` file is the same trace; a gzip stream cut short is an error."""
    plain = check_traces([traces])
    packed = traces / "packed"
    packed.mkdir()
    for path in sorted(traces.glob("*.ndjson")):
        (packed / (path.name + ".gz")).write_bytes(gzip.compress(path.read_bytes()))
    zipped = check_traces([packed])
    assert plain.ok and zipped.ok, zipped.render()
    assert (zipped.nodes, zipped.events, zipped.spec_steps) == (
        plain.nodes,
        plain.events,
        plain.spec_steps,
    )
    victim = packed / "node-n2.ndjson.gz"
    victim.write_bytes(victim.read_bytes()[:-40])
    cut = check_traces([packed])
    assert not cut.ok
    assert any("not a readable gzip file" in error for error in cut.errors), cut.render()
