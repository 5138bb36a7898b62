"""Leadership transfer in replay: ``transfer`` and TimeoutNow are checked against the spec.

Reference: Raft thesis section 3.10 (leadership transfer: the leader catches the target up,
then sends TimeoutNow; the target starts an election at once, skipping prevote, and the
election restriction still applies). The spec models TimeoutNow as the catch-up append with
``timeout_now`` set; the checker maps the impl's ``tnow`` onto it (docs/trace-format.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from impl._core import TransferInProgress
from impl._core._progress import Progress
from impl._trace import TracingCore
from properties.conformance import check_traces
from tests.conformance._edit import edit_first, load
from tests.conformance._record import SCENARIOS, record
from tests.conformance._sansio import SansIOCluster


def _caught_up_transfer(trace_dir: Path) -> SansIOCluster:
    cluster = SansIOCluster(trace_dir)
    cluster.elect("n1")
    for i in range(3):
        cluster.cores["n1"].propose(b"x%d" % i)
        cluster.drain()
    cluster.cores["n1"].transfer_leadership("n2")
    cluster.drain()
    assert cluster.leader() == "n2"
    cluster.cores["n2"].propose(b"after")
    cluster.drain()
    cluster.heartbeat()
    cluster.close()
    return cluster


def _lagging_transfer(trace_dir: Path, core_class: type[TracingCore] = TracingCore) -> None:
    """n3 misses writes while down; the transfer to it needs catch-up appends first."""
    cluster = SansIOCluster(trace_dir, core_class=core_class)
    cluster.elect("n1")
    cluster.cores["n1"].propose(b"a")
    cluster.drain()
    cluster.crash("n3")
    for i in range(3):
        cluster.cores["n1"].propose(b"x%d" % i)
        cluster.drain()
    cluster.start("n3")
    cluster.cores["n1"].transfer_leadership("n3")
    with pytest.raises(TransferInProgress):  # thesis 3.10: refused, recorded with err
        cluster.cores["n1"].propose(b"during the transfer")
    cluster.cores["n1"].transfer_leadership("n1")
    cluster.drain()
    for _ in range(5):  # the catch-up probes ride on heartbeats (one per round)
        if cluster.leader() == "n3":
            break
        cluster.heartbeat()
    leader = cluster.leader()
    assert leader is not None
    cluster.heartbeat()
    # both targets are caught up: the second request restarts the transfer after the first
    # TimeoutNow left, so two transfer elections of the same term compete
    cluster.cores[leader].transfer_leadership("n2")
    cluster.cores[leader].transfer_leadership("n1")
    for core in cluster.cores.values():
        core.check_quorum_timeout()
    cluster.drain()
    leader = cluster.leader()
    assert leader is not None
    cluster.cores[leader].propose(b"after")
    cluster.drain()
    cluster.heartbeat()
    cluster.close()


def test_transfer_to_a_caught_up_follower_is_fully_replayed(tmp_path: Path) -> None:
    """Reference: thesis 3.10; TimeoutNow, the transfer election and the new leader's term."""
    _caught_up_transfer(tmp_path)
    result = check_traces([tmp_path])
    assert result.ok, result.render()
    assert not result.global_only, result.render()
    assert not any("TimeoutNow" in name and "global" in name for name in result.relaxations)
    n2 = load(tmp_path / "node-n2.ndjson")
    obeyed = next(e for e in n2 if e.get("i") == "recv" and e["m"]["k"] == "tnow")
    assert obeyed["s"][2] == "C" and all(not m["pre"] for m in obeyed["out"])


def test_transfer_with_catch_up_and_the_impl_choices_conforms(tmp_path: Path) -> None:
    """Reference: thesis 3.10; catch-up appends before TimeoutNow, a proposal during the
    transfer refused by both, and the counted choices where the impl differs from the spec
    (a transfer to itself, a transfer asked during one)."""
    _lagging_transfer(tmp_path)
    result = check_traces([tmp_path])
    assert result.ok, result.render()
    assert not result.global_only, result.render()
    relaxed = result.relaxations
    assert not any("proposal" in name for name in relaxed), relaxed
    refused = [
        e
        for e in load(tmp_path / "node-n1.ndjson")
        if e.get("i") == "propose" and e.get("err", "").startswith("TransferInProgress")
    ]
    assert len(refused) == 1 and "out" not in refused[0]
    assert relaxed["transfer to the leader itself: impl no-op, spec refuses"] == 1
    assert relaxed["transfer during a transfer: impl restarts it, spec refuses"] == 1
    sent = sum(
        1
        for path in tmp_path.iterdir()
        for e in load(path)
        for m in e.get("out", ())
        if m["k"] == "tnow"
    )
    assert sent == 3


class EagerTransfer(TracingCore):
    """EagerTransfer: a seeded bug, TimeoutNow before the target has caught up."""

    def _maybe_send_timeout_now(self, peer: str, pr: Progress) -> None:
        if self._transfer_to == peer and not self._transfer_sent:
            self._transfer_sent = True
            from impl._core import TimeoutNow

            self._send(peer, TimeoutNow(self._cluster, self._id, self._term))


def test_timeout_now_to_a_lagging_target_is_rejected(tmp_path: Path) -> None:
    """Reference: thesis 3.10, TimeoutNow only once the target's log matches the leader's."""
    cluster = SansIOCluster(tmp_path, core_class=EagerTransfer)
    cluster.elect("n1")
    cluster.crash("n3")
    cluster.cores["n1"].propose(b"missed by n3")
    cluster.drain()
    cluster.start("n3")
    cluster.cores["n1"].transfer_leadership("n3")
    cluster.drain()
    cluster.close()
    result = check_traces([tmp_path])
    assert not result.ok
    first = result.divergences[0]
    assert first.node == "n1" and first.input.startswith("transfer")
    assert "no TimeoutNow" in first.expected and "tnow n1->n3" in first.actual


def test_transfer_election_with_prevote_is_rejected(tmp_path: Path) -> None:
    """Reference: thesis 3.10, the target campaigns at once, skipping prevote."""
    _caught_up_transfer(tmp_path)

    def to_prevote(e: dict[str, object]) -> None:
        for m in e["out"]:  # type: ignore[attr-defined]
            m["pre"] = True

    line = edit_first(
        tmp_path / "node-n2.ndjson",
        lambda e: e.get("i") == "recv" and e["m"]["k"] == "tnow",
        to_prevote,
    )
    result = check_traces([tmp_path])
    assert not result.ok
    first = result.divergences[0]
    assert (first.node, first.line) == ("n2", line)
    assert "transfer" in first.expected and "PreVoteReq" in first.actual
    assert "DIVERGENCE on node n2" in result.render()


def test_obeying_a_stale_timeout_now_is_rejected(tmp_path: Path) -> None:
    """Reference: section 5.1 and thesis 3.10, a message of an older term is refused."""
    _caught_up_transfer(tmp_path)

    def stale(e: dict[str, object]) -> None:
        e["m"]["term"] = 0  # type: ignore[index]

    edit_first(
        tmp_path / "node-n2.ndjson",
        lambda e: e.get("i") == "recv" and e["m"]["k"] == "tnow",
        stale,
    )
    result = check_traces([tmp_path])
    assert not result.ok
    first = result.divergences[0]
    assert first.node == "n2" and "recv tnow" in first.input
    assert first.expected == "no message" and "VoteReq" in first.actual


@pytest.mark.network
def test_real_nodes_transfer_twice_and_conform(tmp_path: Path) -> None:
    """Reference: thesis 3.10; in-process Nodes over grpc, two transfers, fully replayed."""
    traces = tmp_path / "traces"
    asyncio.run(record(SCENARIOS["transfer"], tmp_path / "data", traces))
    result = check_traces([traces])
    assert result.ok, result.render()
    assert not result.global_only, result.render()
    received = [
        e
        for path in traces.iterdir()
        for e in load(path)
        if e.get("i") == "recv" and e["m"]["k"] == "tnow"
    ]
    assert len(received) >= 2
