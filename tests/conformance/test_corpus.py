"""The committed corpus in tests/traces/ conforms (what `make conformance` checks).

Reference: Raft paper sections 5.2-5.4 and 7, thesis 6.4 and 9.6, as replayed by the spec.
"""

from __future__ import annotations

from pathlib import Path

from properties.conformance import check_traces
from tests.conformance._edit import load

CORPUS = Path(__file__).resolve().parents[1] / "traces"


def test_corpus_is_small_and_complete() -> None:
    runs = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    expected = [
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
    assert result.runs == 7 and result.nodes == 21
    # only the snapshot followers may be checked globally only, and only after an install
    # (and, in snapshot-install-restart, the restart from a snapshot it never saw built)
    assert sorted(result.global_only) == sorted(
        [
            f"node n2 ({CORPUS / 'snapshot' / 'node-n2.ndjson'}): "
            "InstallSnapshot is not in the spec",
            f"node n2 ({CORPUS / 'snapshot-install-restart' / 'node-n2.ndjson'}): "
            "InstallSnapshot is not in the spec",
            f"node n2 ({CORPUS / 'snapshot-install-restart' / 'node-n2.ndjson'}): "
            "restart from a snapshot the checker never saw built",
        ]
    )


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
