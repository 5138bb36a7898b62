"""The committed corpus in tests/traces/ conforms (what `make conformance` checks).

Reference: Raft paper sections 5.2-5.4 and 7, thesis 6.4 and 9.6, as replayed by the spec.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from properties.conformance import check_traces
from tests.conformance._edit import load

Json = dict[str, Any]
CORPUS = Path(__file__).resolve().parents[1] / "traces"


def test_corpus_is_small_and_complete() -> None:
    runs = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    expected = [
        "chaos-lossy-churn",
        "chaos-partition-restart-all",
        "chaos-remove-leader-reads",
        "chaos-restart-snapshot-commit",
        "chaos-transfer-membership",
        "election",
        "failover",
        "multiprocess",
        "restart",
        "snapshot",
        "snapshot-install-restart",
        "snapshot-restart",
    ]
    assert runs == expected
    size = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert size < 2 * 1024 * 1024


def test_corpus_conforms() -> None:
    result = check_traces([CORPUS])
    assert result.ok, result.render()
    assert result.runs == 12 and result.nodes == 38
    # only the snapshot followers may be checked globally only, and only after an install
    # (and, in snapshot-install-restart, the restart from a snapshot it never saw built)
    chaos = CORPUS / "chaos-partition-restart-all" / "node-n1.ndjson.gz"
    again = CORPUS / "chaos-restart-snapshot-commit" / "node-n1.ndjson.gz"
    assert sorted(result.global_only) == sorted(
        [
            f"node n1 ({chaos}): InstallSnapshot is not in the spec",
            f"node n1 ({chaos}): restart from a snapshot the checker never saw built",
            f"node n1 ({chaos}): restart from a snapshot the checker never saw built",
            f"node n1 ({again}): InstallSnapshot is not in the spec",
            f"node n1 ({again}): restart from a snapshot the checker never saw built",
            f"node n1 ({again}): restart from a snapshot the checker never saw built",
            f"node n2 ({CORPUS / 'snapshot' / 'node-n2.ndjson'}): "
            "InstallSnapshot is not in the spec",
            f"node n2 ({CORPUS / 'snapshot-install-restart' / 'node-n2.ndjson'}): "
            "InstallSnapshot is not in the spec",
            f"node n2 ({CORPUS / 'snapshot-install-restart' / 'node-n2.ndjson'}): "
            "restart from a snapshot the checker never saw built",
        ]
    )


def _segments(path: Path) -> list[list[Json]]:
    out: list[list[Json]] = []
    for record in load(path):
        if "format" in record:
            out.append([])
        else:
            out[-1].append(record)
    return out


def test_chaos_runs_restart_every_node_and_install_a_snapshot() -> None:
    """Reference: sections 5.1 and 7: a crash of every node at once, then a snapshot install.

    In the restart-all run every node has a segment per start (first start, the restart of
    all nodes, the harness's final restart), each later one loading the term it had made
    durable; a lagging follower installs a snapshot. The churn run restarts every node too.
    """
    run = CORPUS / "chaos-partition-restart-all"
    installs = 0
    for path in sorted(run.iterdir()):
        segments = _segments(path)
        assert len(segments) == 3, path
        for earlier, later in itertools.pairwise(segments):
            assert later[0]["i"] == "start" and later[0]["hs"][0] >= 1
            assert later[0]["hs"][0] <= max(e["s"][0] for e in earlier)
        installs += sum(
            1 for seg in segments for e in seg if e["i"] == "recv" and e["m"]["k"] == "snap"
        )
    assert installs >= 1
    for path in sorted((CORPUS / "chaos-lossy-churn").iterdir()):
        assert len(_segments(path)) == 2, path


def test_restart_from_an_unseen_snapshot_starts_the_ready_discipline_afresh() -> None:
    """Reference: section 7: a node restarted from a snapshot applies again from its base.

    The recorded follower installs a snapshot (global-only from there), applies past its
    base, and restarts from a snapshot whose entries the checker never saw. Its first Ready
    hands out the committed entries after the base: the Ready contract must have been reset
    to what the restart loaded, not left with the previous run's applied range.
    """
    run = CORPUS / "snapshot-install-restart"
    records = load(run / "node-n2.ndjson")
    starts = [i for i, e in enumerate(records) if e.get("i") == "start"]
    restart = records[starts[-1]]
    base = restart["base"][0]
    before = [e["cmt"][1] for e in records[: starts[-1]] if e.get("i") == "ready" and "cmt" in e]
    first_ready = next(e for e in records[starts[-1] :] if e.get("i") == "ready" and "cmt" in e)
    assert 0 < base < max(before), "applied past the snapshot base before the restart"
    assert first_ready["cmt"][0] == base + 1, "applying restarts at the base"
    result = check_traces([run])
    assert result.ok, result.render()


def test_transfer_membership_run_obeys_timeout_now_and_changes_members() -> None:
    """Reference: thesis 3.10, 4.1, 4.2.1; the run is for transfers and membership changes,
    and those nodes stay fully replayed (the global-only list above has none of it)."""
    run = CORPUS / "chaos-transfer-membership"
    events = [e for path in sorted(run.iterdir()) for e in load(path)]  # headers too
    obeyed = [e for e in events if e.get("i") == "recv" and e["m"]["k"] == "tnow" and "out" in e]
    ops = sorted({e["op"] for e in events if e.get("i") == "member" and "err" not in e})
    joined = [e for e in events if e.get("format") and e.get("join")]
    assert obeyed and ops == ["add", "promote", "remove"] and joined


def test_restart_from_a_snapshot_past_the_stored_commit_is_fully_replayed() -> None:
    """Reference: Figure 2 (commitIndex is volatile) and section 7 (a snapshot holds only
    committed entries): n2 restarts from its own snapshot at 640 with a stored hard state
    whose commit is 638 (a commit-only hard state rides with the next write); it knows 640
    is committed, and the checker must too (it once expected 638)."""
    run = CORPUS / "chaos-restart-snapshot-commit"
    starts = [
        e
        for e in load(run / "node-n2.ndjson.gz")
        if e.get("i") == "start" and e["base"][0] > e["hs"][2]
    ]
    assert starts and all(e["s"][4] == e["base"][0] for e in starts)
    result = check_traces([run])
    assert result.ok, result.render()
    assert not any("n2" in note for note in result.global_only), result.global_only


def test_reads_answered_as_the_removed_leader_retires_are_fully_replayed() -> None:
    """Reference: thesis 4.2.2 and 6.4: in a chaos run the leader n4 removes itself; the
    reply that commits the removal also confirms read 24, which n4 answers as it steps
    down, aborting only read 25 (the checker once expected both aborted)."""
    run = CORPUS / "chaos-remove-leader-reads"
    retiring = [
        e
        for e in load(run / "node-n4.ndjson.gz")
        if e.get("i") == "recv" and e["s"][2] == "F" and e.get("reads") and e.get("abort")
    ]
    assert [([r[0] for r in e["reads"]], e["abort"]) for e in retiring] == [([24], [25])]
    result = check_traces([run])
    assert result.ok, result.render()
    assert not result.global_only, result.global_only
