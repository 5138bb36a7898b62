"""The committed corpus in tests/traces/ conforms (what `make conformance` checks).

Reference: Raft paper sections 5.2-5.4 and 7, thesis 6.4 and 9.6, as replayed by the spec.
"""

from __future__ import annotations

from pathlib import Path

from properties.conformance import check_traces

CORPUS = Path(__file__).resolve().parents[1] / "traces"


def test_corpus_is_small_and_complete() -> None:
    runs = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    expected = ["election", "failover", "multiprocess", "restart", "snapshot", "snapshot-restart"]
    assert runs == expected
    size = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert size < 2 * 1024 * 1024


def test_corpus_conforms() -> None:
    result = check_traces([CORPUS])
    assert result.ok, result.render()
    assert result.runs == 6 and result.nodes == 18
    # only the snapshot follower may be checked globally only, and only after its install
    assert len(result.global_only) == 1
    assert "snapshot/" in result.global_only[0] and "InstallSnapshot" in result.global_only[0]
