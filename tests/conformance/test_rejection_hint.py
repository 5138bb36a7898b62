"""A follower whose entry AT the rejected prev index is of an older term hints that index.

The impl's rejection hint is the last index whose term is at most the rejected prev term
(etcd's findConflictByTerm); when the follower's own entry at prev_index is older than the
leader's, that is prev_index itself. The checker used to demand a hint strictly below
prev_index and reported this legal reply as a divergence (a 5-node nightly chaos run).
Reference: section 5.3 (the follower may return the conflicting term to skip back faster).
"""

from __future__ import annotations

from pathlib import Path

from properties.conformance import check_traces
from tests.conformance._edit import edit_first, load
from tests.conformance._sansio import SansIOCluster


def _record(trace_dir: Path) -> None:
    c = SansIOCluster(trace_dir, n=5)
    c.elect("n1")
    c.cores["n1"].propose(b"everyone")
    c.drain()
    c.heartbeat()
    for node in ("n3", "n4", "n5"):
        c.crash(node)
    c.cores["n1"].propose(b"only n2 gets this")  # uncommitted: 2 of 5
    c.cores["n1"].propose(b"and this")
    c.cores["n1"].propose(b"and this too")  # n2's log runs past the prev index it rejects
    c.drain()
    c.crash("n1")
    c.crash("n2")
    for node in ("n3", "n4", "n5"):
        c.start(node)
    c.elect("n3")  # term 2, over a log without n2's two old entries
    c.cores["n3"].propose(b"newer")
    c.cores["n3"].propose(b"newer still")
    c.drain()  # committed by n3, n4, n5
    c.crash("n3")
    c.start("n2")
    for node in ("n4", "n5"):
        c.cores[node].check_quorum_timeout()  # their lease on the old leader ends
    c.elect("n4")  # term 3: its first append to n2 has prev index 3, prev term 2
    for _ in range(3):
        c.heartbeat()
    c.close()


def _is_hint_at_prev(event: dict[str, object]) -> bool:
    out = event.get("out", ())
    assert isinstance(out, list | tuple)
    return any(m["k"] == "appr" and not m["ok"] and m["hi"] == m["mi"] > 0 for m in out)


def test_hint_at_the_rejected_prev_index_conforms(tmp_path: Path) -> None:
    _record(tmp_path)
    assert any(_is_hint_at_prev(e) for e in load(tmp_path / "node-n2.ndjson"))
    result = check_traces([tmp_path])
    assert result.ok, result.divergences


def test_hint_term_above_the_prev_term_is_rejected(tmp_path: Path) -> None:
    _record(tmp_path)

    def raise_hint_term(event: dict[str, object]) -> None:
        out = event["out"]
        assert isinstance(out, list)
        reply = next(m for m in out if m["k"] == "appr" and not m["ok"])
        reply["ht"] = 99

    edit_first(tmp_path / "node-n2.ndjson", _is_hint_at_prev, raise_hint_term)
    result = check_traces([tmp_path])
    assert not result.ok
    assert result.divergences[0].node == "n2"
