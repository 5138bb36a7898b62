"""A leader refuses client writes while it transfers leadership (Raft thesis 3.10, step 1).

"The prior leader stops accepting new client requests" so that the target can catch up with
a log that stops growing; otherwise, under a steady write load, the target is always behind
when it campaigns and the other voters refuse it (section 5.4.1, the election restriction).
The refusal is ``TransferInProgress`` and changes nothing; once the transfer ends (the target
leads, or the leader's next check-quorum tick gives up on it) writes are taken again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from impl._core import (
    CoreConfig,
    CoreError,
    NotLeader,
    RaftCore,
    Role,
    StoredState,
    TimeoutNow,
    TransferInProgress,
    VoteResponse,
)
from impl._trace import TraceWriter, TracingCore, trace_path

from ._harness import CLUSTER, Net


def _leader_with_lagging_n2() -> Net:
    """_leader_with_lagging_n2: n1 leads 3 voters; n2 misses two entries (cut from n1)."""
    net = Net(3)
    net.elect("n1")
    net.propose(b"a")
    net.run()
    net.cut("n1", "n2")
    net.propose(b"b")
    net.propose(b"c")
    net.run()
    return net


def _observable(core: RaftCore) -> dict[str, Any]:
    return {**core.status(), "has_ready": core.has_ready(), "target": core.transfer_target}


def test_proposal_during_transfer_is_refused_and_changes_nothing() -> None:
    """Reference: thesis 3.10 step 1 — no new client requests during a transfer."""
    net = _leader_with_lagging_n2()
    leader = net["n1"]
    leader.transfer_leadership("n2")  # n2 is cut off: the transfer stays pending
    net.flush("n1")
    assert leader.transfer_target == "n2"
    before = _observable(leader)
    with pytest.raises(TransferInProgress, match="n2") as refused:
        leader.propose(b"x")
    assert refused.value.target == "n2"
    assert isinstance(refused.value, CoreError)
    with pytest.raises(TransferInProgress):
        leader.propose_many([b"y", b"z"])
    assert _observable(leader) == before
    assert not leader.has_ready()
    # reads are not client writes: they still work (thesis 6.4)
    leader.read_index(7)
    net.run()
    assert [r.request_id for r in net.nodes["n1"].reads] == [7]


def test_writes_resume_when_the_transfer_times_out() -> None:
    """Reference: thesis 3.10 — a transfer that does not finish within an election timeout
    is abandoned, and the leader takes client requests again."""
    net = _leader_with_lagging_n2()
    leader = net["n1"]
    leader.transfer_leadership("n2")
    net.flush("n1")
    with pytest.raises(TransferInProgress):
        leader.propose(b"x")
    leader.check_quorum_timeout()  # the leader's timeout ends the transfer
    assert leader.transfer_target is None and leader.role is Role.LEADER
    index = net.propose(b"x")
    net.run()
    assert leader.commit_index == index
    net.heartbeat("n1")  # followers learn the commit index
    assert net.nodes["n3"].applied[-1] == b"x"


def test_writes_go_to_the_new_leader_after_the_transfer() -> None:
    """Reference: thesis 3.10 — the target catches up, gets TimeoutNow and wins."""
    net = _leader_with_lagging_n2()
    net["n1"].transfer_leadership("n2")
    net.heal()
    for _ in range(3):  # the first heartbeat finds where n2's log ends, the next fill it
        if net.leaders() == ["n2"]:
            break
        net.heartbeat("n1")
    assert net.leader() == "n2"
    with pytest.raises(NotLeader):
        net["n1"].propose(b"x")
    assert net["n2"].transfer_target is None
    index = net.propose(b"x")
    net.run()
    net.heartbeat("n2")  # followers learn the commit index
    assert all(net.nodes[i].applied[-1] == b"x" for i in ("n1", "n2", "n3"))
    assert net["n2"].commit_index == index


def test_transfer_under_a_steady_write_load_makes_the_target_leader() -> None:
    """Reference: thesis 3.10 — a client writes before every message delivery, yet the
    target (writes in flight to it when the transfer starts) catches up and becomes leader.

    Taking those writes (the bug) keeps the leader's log ahead of the target, so the
    TimeoutNow never goes out and the transfer only ends at the leader's timeout.
    """
    net = _leader_with_lagging_n2()
    net.heal()
    net.heartbeat("n1")
    net.heartbeat("n1")
    assert net.logs("n2") == net.logs("n1")
    for i in range(3):  # writes in flight: n2 is behind when the transfer starts
        net.propose(f"p{i}".encode())
    assert net["n1"].progress["n2"].match < net["n1"].last_index
    net["n1"].transfer_leadership("n2")
    refused = 0
    taken = 0
    net.flush_all()
    for _ in range(200):
        top = max(n.core.term for n in net.nodes.values())
        leader = [i for i in net.leaders() if net[i].term == top]
        if leader:
            try:
                net.propose(b"w", leader[0])
                taken += 1
            except TransferInProgress:
                refused += 1
        net.flush_all()
        if net.deliver_one() is None:
            break
    net.run()
    assert net.leader() == "n2", [net[i].status() for i in ("n1", "n2")]
    assert refused > 0
    timeout_now = [s for s in net.sent if isinstance(s.message, TimeoutNow)]
    assert [(s.src, s.dst) for s in timeout_now] == [("n1", "n2")]
    # every write n2 took as leader is committed everywhere; none of the refused ones exist
    assert taken > 0
    logs = {i: net.logs(i) for i in ("n1", "n2", "n3")}
    assert logs["n1"] == logs["n2"] == logs["n3"]


def test_refused_proposal_is_traced_with_its_error(tmp_path: Path) -> None:
    """Reference: docs/trace-format.md — a refused input carries ``err`` and no output.

    The conformance checker matches it with the spec's refusal of ClientRequest during a
    transfer (spec/_replication.py, on_client_request), so relaxation 9 needs no special case.
    """
    path = trace_path(tmp_path, "n1")
    config = CoreConfig("n1", ("n1", "n2"), CLUSTER, prevote=False)
    core = TracingCore(config, StoredState.empty(), TraceWriter(path))
    core.election_timeout()
    core.advance(core.ready())
    core.receive(VoteResponse(CLUSTER, "n2", 1, False, True, 1))
    assert core.role is Role.LEADER
    core.transfer_leadership("n2")
    with pytest.raises(TransferInProgress):
        core.propose_many([b"w"])
    with pytest.raises(TransferInProgress):
        core.propose(b"v")
    core.close_trace()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    proposals = [r for r in records if r.get("i") == "propose"]
    assert [r["data"] for r in proposals] == [["dw=="], ["dg=="]]
    for record in proposals:
        assert record["err"].startswith("TransferInProgress: leadership transfer to n2")
        assert "out" not in record
