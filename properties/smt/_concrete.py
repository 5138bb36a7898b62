"""Between spec values and the Z3 node encoding: pin a concrete state, read a model back.

Both directions go through one projection, `NodeView`: the fields of a `NodeState` that the
encoding models (see properties/smt/_node.py for what it leaves out), so a spec state and a
solved post-state compare as plain tuples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, assert_never

import z3

from properties.smt._node import (
    CANDIDATE,
    FOLLOWER,
    LEADER,
    NONE,
    PRECANDIDATE,
    MsgKind,
    SymMsg,
    SymNode,
)
from spec import (
    AppendRequest,
    AppendResponse,
    Message,
    NodeState,
    Role,
    VoteRequest,
    VoteResponse,
)

__all__ = [
    "ROLE_NAMES",
    "NodeView",
    "message_views",
    "pin_message",
    "pin_node",
    "read_messages",
    "read_node",
    "role_code",
    "view_of",
]

Expr = Any

ROLE_NAMES = {
    FOLLOWER: "follower",
    PRECANDIDATE: "precandidate",
    CANDIDATE: "candidate",
    LEADER: "leader",
}


def role_code(role: Role) -> int:
    """role_code is the integer the encoding uses for `role`."""
    match role:
        case Role.FOLLOWER:
            return FOLLOWER
        case Role.PRECANDIDATE:
            return PRECANDIDATE
        case Role.CANDIDATE:
            return CANDIDATE
        case Role.LEADER:
            return LEADER
        case _:
            assert_never(role)


@dataclass(frozen=True, slots=True)
class NodeView:
    """NodeView is the part of a node that the encoding models; logs are entry terms."""

    term: int
    voted_for: int | None
    role: str
    leader: int | None
    log: tuple[int, ...]
    commit: int
    prevotes: frozenset[int]
    votes: frozenset[int]
    rejections: frozenset[int]
    next_index: tuple[int, ...]
    match_index: tuple[int, ...]
    heard_from_leader: bool

    def differences(self, other: NodeView) -> list[str]:
        """differences names each field where `other` differs, as "field: mine vs theirs"."""
        return [
            f"{name}: {getattr(self, name)!r} vs {getattr(other, name)!r}"
            for name in self.__dataclass_fields__
            if getattr(self, name) != getattr(other, name)
        ]


def view_of(state: NodeState) -> NodeView:
    """view_of projects a spec NodeState (unset per-peer arrays read as zeros)."""
    n = len(state.voters)
    return NodeView(
        term=state.term,
        voted_for=state.voted_for,
        role=state.role.value,
        leader=state.leader,
        log=tuple(entry.term for entry in state.log),
        commit=state.commit,
        prevotes=state.prevotes,
        votes=state.votes,
        rejections=state.rejections,
        next_index=state.next_index or (0,) * n,
        match_index=state.match_index or (0,) * n,
        heard_from_leader=state.heard_from_leader,
    )


def _opt(value: int | None) -> int:
    return NONE if value is None else value


def pin_node(s: SymNode, state: NodeState) -> list[Expr]:
    """pin_node constrains `s` to equal the concrete `state` (logs padded with 0)."""
    view = view_of(state)
    if len(view.log) > s.cap:
        raise ValueError(f"log of {len(view.log)} entries exceeds capacity {s.cap}")
    log = view.log + (0,) * (s.cap - len(view.log))
    facts = [
        s.id == state.id,
        s.term == view.term,
        s.voted_for == _opt(view.voted_for),
        s.role == role_code(state.role),
        s.leader == _opt(view.leader),
        s.log_len == len(view.log),
        s.commit == view.commit,
        s.heard == view.heard_from_leader,
    ]
    facts += [x == v for x, v in zip(s.log, log, strict=True)]
    for xs, members in (
        (s.prevotes, view.prevotes),
        (s.votes, view.votes),
        (s.rejections, view.rejections),
    ):
        facts += [x == (k in members) for k, x in enumerate(xs)]
    facts += [x == v for x, v in zip(s.next_index, view.next_index, strict=True)]
    facts += [x == v for x, v in zip(s.match_index, view.match_index, strict=True)]
    return facts


def _int(model: Any, expr: Expr) -> int:
    return int(model.eval(expr, model_completion=True).as_signed_long())


def _bool(model: Any, expr: Expr) -> bool:
    return bool(z3.is_true(model.eval(expr, model_completion=True)))


def _none(value: int) -> int | None:
    return None if value == NONE else value


def read_node(model: Any, s: SymNode) -> NodeView:
    """read_node decodes the values a model gives the symbolic node `s`."""
    length = _int(model, s.log_len)

    def members(xs: tuple[Expr, ...]) -> frozenset[int]:
        return frozenset(k for k, x in enumerate(xs) if _bool(model, x))

    return NodeView(
        term=_int(model, s.term),
        voted_for=_none(_int(model, s.voted_for)),
        role=ROLE_NAMES.get(_int(model, s.role), "?"),
        leader=_none(_int(model, s.leader)),
        log=tuple(_int(model, x) for x in s.log[: max(0, min(length, s.cap))]),
        commit=_int(model, s.commit),
        prevotes=members(s.prevotes),
        votes=members(s.votes),
        rejections=members(s.rejections),
        next_index=tuple(_int(model, x) for x in s.next_index),
        match_index=tuple(_int(model, x) for x in s.match_index),
        heard_from_leader=_bool(model, s.heard),
    )


def pin_message(m: SymMsg, message: Message) -> list[Expr]:
    """pin_message constrains the symbolic `m` to the concrete spec `message`."""
    facts = [m.src == message.src, m.dst == message.dst, m.term == message.term]
    match message:
        case VoteRequest():
            facts += [
                m.kind == MsgKind.VOTE_REQUEST,
                m.prevote == message.prevote,
                m.last_log_index == message.last_log_index,
                m.last_log_term == message.last_log_term,
            ]
        case VoteResponse():
            facts += [
                m.kind == MsgKind.VOTE_RESPONSE,
                m.prevote == message.prevote,
                m.granted == message.granted,
                m.request_term == message.request_term,
            ]
        case AppendRequest():
            terms = [entry.term for entry in message.entries]
            if len(terms) > len(m.entries):
                raise ValueError("append carries more entries than the encoding holds")
            terms += [0] * (len(m.entries) - len(terms))
            facts += [
                m.kind == MsgKind.APPEND_REQUEST,
                m.prev_index == message.prev_index,
                m.prev_term == message.prev_term,
                m.n_entries == len(message.entries),
                m.leader_commit == message.leader_commit,
                *[x == t for x, t in zip(m.entries, terms, strict=True)],
            ]
        case AppendResponse():
            facts += [
                m.kind == MsgKind.APPEND_RESPONSE,
                m.success == message.success,
                m.match_index == message.match_index,
                m.hint_index == message.hint_index,
            ]
        case _:
            assert_never(message)
    return facts


def message_views(messages: tuple[Message, ...]) -> tuple[tuple[object, ...], ...]:
    """message_views projects spec messages onto the fields the encoding models, sorted."""
    views: list[tuple[object, ...]] = []
    for message in messages:
        match message:
            case VoteRequest():
                views.append(
                    (
                        "VoteRequest",
                        message.src,
                        message.dst,
                        message.term,
                        message.prevote,
                        message.last_log_index,
                        message.last_log_term,
                    )
                )
            case VoteResponse():
                views.append(
                    (
                        "VoteResponse",
                        message.src,
                        message.dst,
                        message.term,
                        message.prevote,
                        message.granted,
                        message.request_term,
                    )
                )
            case AppendRequest():
                views.append(
                    (
                        "AppendRequest",
                        message.src,
                        message.dst,
                        message.term,
                        message.prev_index,
                        message.prev_term,
                        tuple(entry.term for entry in message.entries),
                        message.leader_commit,
                    )
                )
            case AppendResponse():
                views.append(
                    (
                        "AppendResponse",
                        message.src,
                        message.dst,
                        message.term,
                        message.success,
                        message.match_index,
                        message.hint_index,
                    )
                )
            case _:
                assert_never(message)
    return tuple(sorted(views, key=repr))


def read_messages(
    model: Any, sends: Expr, m: SymMsg, src: int, n: int
) -> tuple[tuple[object, ...], ...]:
    """read_messages decodes an effect's output like `message_views` (broadcasts expanded)."""
    if not _bool(model, sends):
        return ()
    kind = _int(model, m.kind)
    dst = _int(model, m.dst)
    term = _int(model, m.term)
    views: list[tuple[object, ...]] = []
    if kind == MsgKind.VOTE_REQUEST:
        targets = [peer for peer in range(n) if peer != src] if dst == NONE else [dst]
        for peer in targets:
            views.append(
                (
                    "VoteRequest",
                    src,
                    peer,
                    term,
                    _bool(model, m.prevote),
                    _int(model, m.last_log_index),
                    _int(model, m.last_log_term),
                )
            )
    elif kind == MsgKind.VOTE_RESPONSE:
        views.append(
            (
                "VoteResponse",
                src,
                dst,
                term,
                _bool(model, m.prevote),
                _bool(model, m.granted),
                _int(model, m.request_term),
            )
        )
    elif kind == MsgKind.APPEND_REQUEST:
        count = _int(model, m.n_entries)
        entries = tuple(_int(model, x) for x in m.entries[: max(0, count)])
        views.append(
            (
                "AppendRequest",
                src,
                dst,
                term,
                _int(model, m.prev_index),
                _int(model, m.prev_term),
                entries,
                _int(model, m.leader_commit),
            )
        )
    elif kind == MsgKind.APPEND_RESPONSE:
        views.append(
            (
                "AppendResponse",
                src,
                dst,
                term,
                _bool(model, m.success),
                _int(model, m.match_index),
                _int(model, m.hint_index),
            )
        )
    return tuple(sorted(views, key=repr))
