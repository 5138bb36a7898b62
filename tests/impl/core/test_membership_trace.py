"""Trace records of membership change (docs/trace-format.md): the ``member`` input, CONFIG
entries (kind 2, the configuration as JSON), the header's ``learners``/``join`` and the
``snap`` message's ``learners``. Reference: Raft thesis 4.1 and 4.2.1 (the conformance
checker replays these records against the spec's membership rules)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from impl._core import (
    CoreConfig,
    Membership,
    MembershipChangeError,
    SnapshotMeta,
    SnapshotRequest,
    StoredState,
)
from impl._trace import TraceWriter, TracingCore, trace_path
from impl._trace_codec import encode_message

from ._harness import CLUSTER

ADDR = "127.0.0.1:7002"


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_member_inputs_and_config_entries_are_recorded(tmp_path: Path) -> None:
    path = trace_path(tmp_path, "n1")
    core = TracingCore(
        CoreConfig("n1", ("n1",), CLUSTER, addresses={"n1": "127.0.0.1:7001"}),
        StoredState.empty(),
        TraceWriter(path),
    )
    core.election_timeout()
    core.propose(b"w")
    rd = core.ready()
    core.advance(rd)
    index = core.add_learner("n2", ADDR)
    with pytest.raises(MembershipChangeError):
        core.remove_server("n9")
    with pytest.raises(MembershipChangeError):
        core.promote_learner("n2")  # the add is not committed yet
    core.advance(core.ready())
    core.close_trace()
    records = _lines(path)
    header = records[0]
    assert header["voters"] == ["n1"] and header["learners"] == [] and "join" not in header
    members = [r for r in records if r.get("i") == "member"]
    assert [(r["op"], r["node"], r.get("addr"), "err" in r) for r in members] == [
        ("add", "n2", ADDR, False),
        ("remove", "n9", None, True),
        ("promote", "n2", None, True),
    ]
    assert members[1]["err"].startswith("MembershipChangeError: ")
    sent = [m for m in members[0].get("out", []) if m["k"] == "app"]
    assert sent and sent[0]["to"] == "n2"  # the new learner is probed at once
    # the entry appears in a Ready's entries and in appends: kind 2 with the JSON payload
    appends = [m for r in records for m in r.get("out", []) if m["k"] == "app" and m["ents"]]
    config_entries = [e for m in appends for e in m["ents"] if e[2] == 2]
    expected = {"learners": {"n2": ADDR}, "voters": {"n1": "127.0.0.1:7001"}}
    assert members[0]["s"][6] == index
    for ent in config_entries:
        assert ent[0] == index and json.loads(base64.b64decode(ent[3])) == expected


def test_join_header_and_snapshot_learners(tmp_path: Path) -> None:
    path = trace_path(tmp_path, "n4")
    core = TracingCore(
        CoreConfig("n4", (), CLUSTER, join=True), StoredState.empty(), TraceWriter(path)
    )
    core.close_trace()
    header = _lines(path)[0]
    assert header["join"] is True and header["voters"] == [] and header["learners"] == []
    config = Membership({"n1": "a:1"}, {"n4": "d:4"}, 3)
    meta = SnapshotMeta(5, 2, ("n1",), config)
    encoded = encode_message(SnapshotRequest(CLUSTER, "n1", 2, meta, b"abc"), "n4", CLUSTER)
    assert encoded["voters"] == ["n1"] and encoded["learners"] == ["n4"] and encoded["size"] == 3
