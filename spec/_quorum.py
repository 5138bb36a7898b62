"""Quorum arithmetic, in one place.

The seed computed its threshold over the *other* peers as ``len >> 1``, which lets two nodes of
four elect a leader. A quorum here is a strict majority of all voters, ``n // 2 + 1``, for every
cluster size (Raft paper section 5.2: "votes from a majority of the servers in the full cluster").
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["is_quorum", "quorum_impossible", "quorum_size"]


def quorum_size(voters: int) -> int:
    """quorum_size is the smallest strict majority of `voters` servers."""
    if voters < 1:
        raise ValueError("a cluster needs at least one voter")
    return voters // 2 + 1


def is_quorum(members: Iterable[int], voters: tuple[int, ...]) -> bool:
    """is_quorum says whether `members` (deduplicated, restricted to voters) is a majority."""
    return len(set(members) & set(voters)) >= quorum_size(len(voters))


def quorum_impossible(rejected: Iterable[int], voters: tuple[int, ...]) -> bool:
    """quorum_impossible says the rejections already rule out a majority of grants."""
    return len(voters) - len(set(rejected) & set(voters)) < quorum_size(len(voters))
