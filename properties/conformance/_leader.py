"""The leader side of replay: its commit index, its sent appends and TimeoutNow.

Kept apart from ``_replay`` (which feeds each event to the spec) because these are the
places where the checker itself computes what the spec allows instead of only stepping it:

* Leader durability (relaxation 1): the spec leader's own appends are durable within the
  step, the impl leader counts itself only up to its durable index. ``leader_commit``
  recomputes the commit index with the spec's rule over the voters in use (thesis 4.1) but
  with the leader's own match = its recorded durable index, and releases reads by the spec's
  ReadIndex rule against it (thesis 6.4).
* ``is_append``: a sent append equals the spec's, field by field.
* ``check_timeout_now``: the impl sent TimeoutNow exactly where the spec does (thesis 3.10).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from properties._report import describe_message
from properties.conformance._divergence import Diverged, plain
from properties.conformance._mapping import IdMap, b64decode, entry_kind
from spec import (
    AppendRequest,
    Message,
    NodeState,
    PendingRead,
    ReadAnswer,
    confirmed_ctx,
    quorum_size,
    term_at,
    voters_in_use,
)

__all__ = ["check_timeout_now", "describe", "is_append", "leader_commit", "lost_election"]

Json = dict[str, Any]


def leader_commit(
    pre: NodeState,
    post: NodeState,
    durable: int,
    spec_reads: tuple[ReadAnswer, ...],
    *,
    kind: str,
    relaxations: Counter[str],
) -> tuple[NodeState, tuple[ReadAnswer, ...]]:
    """leader_commit: the spec's commit rule with the leader's match = durable index."""
    # spec.quorum_match's voters: those of the configuration in use (thesis 4.1), so a
    # learner never counts, nor a leader that removed itself
    voters = voters_in_use(post)
    size = quorum_size(len(voters))
    match_index = post.match_index
    me = post.id
    matches = sorted(durable if p == me else match_index[p] for p in voters)
    candidate = matches[len(matches) - size]
    floor = pre.commit if pre.commit <= post.commit else post.commit
    commit = floor
    if candidate > floor and term_at(post.log, candidate) == post.term:
        commit = candidate
    if commit == post.commit and kind not in ("persisted", "advance"):
        return post, spec_reads
    # the spec's own rule (spec.quorum_match): the leader's whole log counts
    last = len(post.log)
    whole = sorted(last if p == me else match_index[p] for p in voters)[len(voters) - size]
    most = whole if whole > post.commit and term_at(post.log, whole) == post.term else floor
    most = max(most, post.commit)
    if commit > most:
        raise Diverged(
            f"leader commit at most {most} (spec, counting the whole leader log)",
            f"commit {commit} from durable index {durable}",
        )
    if commit < most:
        relaxations["leader commit waits for its own durability"] += 1
    # put back reads the spec released against its (earlier) commit, release by the rule
    pending = list(post.pending_reads)
    known = {r.read_id: r for r in pre.pending_reads}
    for answer in spec_reads:
        read = known.get(answer.read_id)
        if read is None:
            read = PendingRead(answer.read_id, pre.commit, post.read_seq)
        pending.append(read)
    post = replace(post, commit=commit, pending_reads=tuple(sorted(pending, key=_ctx)))
    if not post.pending_reads or post.commit < post.sentinel:
        return post, ()
    confirmed = confirmed_ctx(post)
    ready = tuple(r for r in post.pending_reads if r.ctx <= confirmed)
    waiting = tuple(r for r in post.pending_reads if r.ctx > confirmed)
    answers = tuple(ReadAnswer(r.read_id, max(r.read_index, post.sentinel)) for r in ready)
    return replace(post, pending_reads=waiting), answers


def lost_election(state: NodeState) -> bool:
    """lost_election: the (pre)candidate's rejections rule out a quorum of its voters."""
    voters = voters_in_use(state)
    rejected = len(state.rejections & frozenset(voters))
    return len(voters) - rejected < quorum_size(len(voters))


def check_timeout_now(
    state: NodeState,
    spec_appends: list[AppendRequest],
    impl_tnow: list[Json],
    ids: IdMap,
    *,
    sent_before: bool,
    relaxations: Counter[str],
) -> bool:
    """check_timeout_now: the impl sent TimeoutNow exactly where the spec does (thesis 3.10).

    Returns whether the impl has now sent TimeoutNow in this transfer. The spec's other
    appends here are TransferLeadership's catch-up, which the impl sends (or, paused by flow
    control, does not) as ordinary appends, each checked as its own SendAppend; they are not
    compared. The impl sends TimeoutNow once per transfer; a repeat by the spec (another
    reply from the caught-up target) is accepted once the impl has sent it.
    """
    sent = sent_before
    spec_tnow = Counter(m.dst for m in spec_appends if m.timeout_now and m.term == state.term)
    for record in impl_tnow:
        dst = ids.to_spec(record["to"])
        if (
            spec_tnow[dst] == 0
            or record["term"] != state.term
            or ids.to_spec(record["from"]) != state.id
        ):
            raise Diverged(
                "no TimeoutNow (the spec sends it to a caught-up transfer target)",
                f"sent {plain(record)}",
            )
        spec_tnow[dst] -= 1
        sent = True
    for dst, count in spec_tnow.items():
        if count <= 0:
            continue
        if not sent:
            raise Diverged(
                f"TimeoutNow to {ids.to_impl(dst)} (its log matches the leader's)",
                "no TimeoutNow",
            )
        relaxations["TimeoutNow repeated by the spec, sent once by the impl"] += 1
    return sent


def is_append(messages: tuple[Message, ...], record: Json, me: int, ids: IdMap) -> bool:
    """is_append: the spec sent exactly one AppendRequest, equal to the recorded one.

    Field by field, as ``spec_message(record) == message`` would compare, without decoding
    the record into a spec message first (entries are compared against the spec's own).
    """
    if len(messages) != 1:
        return False
    m = messages[0]
    if not (
        isinstance(m, AppendRequest)
        and m.src == me
        and m.dst == ids.to_spec(record["to"])
        and m.term == record["term"]
        and m.prev_index == record["pi"]
        and m.prev_term == record["pt"]
        and not m.timeout_now
        and m.leader_commit == record["lc"]
        and m.read_ctx == record["ctx"]
        and ids.to_spec(record["from"]) == me
        and len(m.entries) == len(record["ents"])
    ):
        return False
    index = m.prev_index
    for entry, (at, term, kind, data) in zip(m.entries, record["ents"], strict=True):
        index += 1
        if at != index or entry.term != term or entry.kind is not entry_kind(kind):
            return False
        if entry.payload != b64decode(data):
            return False
    return True


def describe(messages: Counter[Message]) -> str:
    """describe renders spec messages in one line, in a stable order."""
    if not messages:
        return "no message"
    return "; ".join(describe_message(m) for m in sorted(messages.elements(), key=repr))


def _ctx(read: PendingRead) -> int:
    return read.ctx
