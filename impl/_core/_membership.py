"""Cluster configurations: the value a CONFIG entry carries and its wire encoding.

Raft thesis chapter 4 (section 4.1): a configuration change is an ordinary log entry, and a
server uses the latest configuration in its log whether or not it is committed. New servers
join as learners (thesis 4.2.1: they receive the log but do not vote or count until they have
caught up). The entry's payload is the *whole* new configuration, so a server learns it from
one entry without replaying earlier ones, and so a snapshot can carry it as one value:
compact UTF-8 JSON with sorted keys, ``{"learners": {id: addr}, "voters": {id: addr}}``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "Membership",
    "MembershipRefusal",
    "decode_config",
    "encode_config",
]


class MembershipRefusal(enum.Enum):
    """MembershipRefusal says why a membership change was refused (a driver maps it to a code).

    BLOCKED: the rules forbid a change right now (transfer, pending change, no entry of the
    leader's term committed yet); retrying later can succeed. NOT_MEMBER / ALREADY_MEMBER /
    NOT_LEARNER: the named server is not what the change needs. LAST_VOTER: the change would
    leave no voter. NOT_CAUGHT_UP: a learner is behind the commit index. INVALID: malformed id
    or address.
    """

    BLOCKED = "blocked"
    NOT_MEMBER = "not_member"
    ALREADY_MEMBER = "already_member"
    NOT_LEARNER = "not_learner"
    LAST_VOTER = "last_voter"
    NOT_CAUGHT_UP = "not_caught_up"
    INVALID = "invalid"


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(sorted(mapping.items())))


@dataclass(frozen=True, slots=True, eq=True)
class Membership:
    """Membership is one cluster configuration as a node sees it.

    ``voters`` and ``learners`` map node id to the HOST:PORT address peers and clients dial
    (empty when unknown, e.g. peers given without addresses). ``index`` is the log index of
    the CONFIG entry that holds it, 0 for the initial configuration. ``committed`` says
    whether that entry is known committed on the node that answered.
    """

    voters: Mapping[str, str]
    learners: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    index: int = 0
    committed: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "voters", _frozen(self.voters))
        object.__setattr__(self, "learners", _frozen(self.learners))
        both = set(self.voters) & set(self.learners)
        if both:
            raise ValueError(f"servers {sorted(both)} are both voter and learner")

    @property
    def members(self) -> tuple[str, ...]:
        """members is every server a leader replicates to: voters and learners, sorted."""
        return tuple(sorted((*self.voters, *self.learners)))

    @property
    def voter_ids(self) -> tuple[str, ...]:
        """voter_ids is who votes and who counts for quorums, sorted."""
        return tuple(self.voters)

    @property
    def learner_ids(self) -> tuple[str, ...]:
        """learner_ids is who only receives the log, sorted."""
        return tuple(self.learners)

    def address(self, node_id: str) -> str | None:
        """address is ``node_id``'s address, or None if it is not a member."""
        if node_id in self.voters:
            return self.voters[node_id]
        return self.learners.get(node_id)

    def encode(self) -> bytes:
        """encode is the CONFIG entry payload (index and committed are not part of it)."""
        return encode_config(self.voters, self.learners)


def encode_config(voters: Mapping[str, str], learners: Mapping[str, str]) -> bytes:
    """encode_config renders a configuration as compact JSON with sorted keys (the contract)."""
    body = {"learners": dict(learners), "voters": dict(voters)}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _ids(raw: Any, what: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ValueError(f"configuration {what} must be an object of id -> address")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise ValueError(f"configuration {what}: bad entry {key!r}: {value!r}")
        out[key] = value
    return out


def decode_config(data: bytes, index: int = 0, committed: bool = True) -> Membership:
    """decode_config parses a CONFIG entry payload; ValueError if it is not a configuration.

    A configuration needs at least one voter: the last voter can never be removed, so an
    entry without one was not written by a correct leader.
    """
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"configuration entry is not JSON: {exc}") from exc
    if not isinstance(raw, dict) or set(raw) - {"voters", "learners"}:
        raise ValueError("configuration entry must be {'voters': {...}, 'learners': {...}}")
    voters = _ids(raw.get("voters"), "voters")
    learners = _ids(raw.get("learners", {}), "learners")
    if not voters:
        raise ValueError("a configuration needs at least one voter")
    return Membership(voters, learners, index, committed)
