"""Fingerprints with node-symmetry reduction.

All nodes run the same code and are all voters, so relabelling node ids consistently maps
reachable states to reachable states and preserves every invariant (none of them names a
particular id). The explorer therefore keeps one state per orbit: its fingerprint is the
hash of the least encoding over the relabellings that sort the nodes by a cheap,
relabelling-invariant signature (term, role, log length, ...). That set of relabellings is the
same for every member of an orbit (up to composition with the relabelling between them), so
the least encoding is an orbit invariant: the reduction is exact, and it usually needs one
encoding because the signatures already differ. With ties it tries every order of the tied
nodes (at worst n!).

A relabelling touches every place an id lives: node order, voted_for, leader, the vote sets,
the per-peer tuples (indexed by id), message endpoints, crashed, partition groups and the
ghost read records. Encodings are plain tuples of ints, bytes and log entries, so they order
totally and hash fast; the fingerprint is Python's 64-bit tuple hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import permutations, product

from spec import (
    AppendRequest,
    AppendResponse,
    ClusterState,
    Message,
    NodeState,
    Role,
    VoteRequest,
    VoteResponse,
)

__all__ = ["MASK64", "encode", "fingerprint", "relabellings"]

MASK64 = (1 << 64) - 1

_ROLE_CODE = {Role.FOLLOWER: 0, Role.PRECANDIDATE: 1, Role.CANDIDATE: 2, Role.LEADER: 3}

Encoding = tuple[object, ...]


def _mask(ids: Iterable[int], perm: tuple[int, ...]) -> int:
    bits = 0
    for i in ids:
        bits |= 1 << perm[i]
    return bits


def _encode_node(
    node: NodeState, cluster: ClusterState, perm: tuple[int, ...], inv: tuple[int, ...]
) -> Encoding:
    vote = -1 if node.voted_for is None else perm[node.voted_for]
    leader = -1 if node.leader is None else perm[node.leader]
    nxt = tuple([node.next_index[i] for i in inv]) if node.next_index else ()
    match = tuple([node.match_index[i] for i in inv]) if node.match_index else ()
    acked = tuple([node.acked_ctx[i] for i in inv]) if node.acked_ctx else ()
    disk = cluster.disks[node.id]
    if (
        disk.term == node.term
        and disk.voted_for == node.voted_for
        and disk.log == node.log
        and disk.commit == node.commit
    ):
        disk_code: Encoding = ()
    else:
        disk_vote = -1 if disk.voted_for is None else perm[disk.voted_for]
        disk_code = (disk.term, disk_vote, disk.log, disk.commit)
    return (
        node.term,
        vote,
        node.log,
        node.commit,
        _ROLE_CODE[node.role],
        leader,
        _mask(node.prevotes, perm),
        _mask(node.votes, perm),
        _mask(node.rejections, perm),
        nxt,
        match,
        node.heard_from_leader,
        _mask(node.recent_active, perm),
        node.sentinel,
        node.read_seq,
        acked,
        node.pending_reads,
        disk_code,
        node.id in cluster.crashed,
    )


def _encode_message(message: Message, perm: tuple[int, ...]) -> Encoding:
    src = perm[message.src]
    dst = perm[message.dst]
    match message:
        case VoteRequest():
            return (
                0,
                src,
                dst,
                message.term,
                message.prevote,
                message.last_log_index,
                message.last_log_term,
            )
        case VoteResponse():
            return (
                1,
                src,
                dst,
                message.term,
                message.prevote,
                message.granted,
                message.request_term,
            )
        case AppendRequest():
            return (
                2,
                src,
                dst,
                message.term,
                message.prev_index,
                message.prev_term,
                message.entries,
                message.leader_commit,
                message.read_ctx,
            )
        case AppendResponse():
            return (
                3,
                src,
                dst,
                message.term,
                message.success,
                message.match_index,
                message.hint_index,
                message.read_ctx,
            )


def encode(cluster: ClusterState, perm: tuple[int, ...], inv: tuple[int, ...]) -> Encoding:
    """encode is the state relabelled by `perm` (old id -> new id; `inv` is its inverse)."""
    nodes = tuple([_encode_node(cluster.nodes[old], cluster, perm, inv) for old in inv])
    network = tuple(sorted([_encode_message(m, perm) for m in cluster.network]))
    partition = tuple(sorted([_mask(group, perm) for group in cluster.partition]))
    reads = tuple(
        sorted(
            [
                (perm[r.node], r.read_id, r.must_cover, -1 if r.answered is None else r.answered)
                for r in cluster.reads
            ]
        )
    )
    return (nodes, network, partition, reads)


def _signature(node: NodeState, cluster: ClusterState) -> tuple[object, ...]:
    """_signature is relabelling-invariant: it only sorts nodes, never decides equality."""
    if node.voted_for is None:
        vote_kind = 0
    elif node.voted_for == node.id:
        vote_kind = 1
    else:
        vote_kind = 2
    return (
        node.term,
        _ROLE_CODE[node.role],
        len(node.log),
        node.commit,
        vote_kind,
        node.id in cluster.crashed,
        len(node.votes),
        len(node.prevotes),
        node.heard_from_leader,
        cluster.disks[node.id].term,
    )


def _inverse(inv: tuple[int, ...]) -> tuple[int, ...]:
    perm = [0] * len(inv)
    for new, old in enumerate(inv):
        perm[old] = new
    return tuple(perm)


def relabellings(cluster: ClusterState) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """relabellings yields (perm, inv) for every order that sorts the nodes by signature."""
    sigs = [_signature(node, cluster) for node in cluster.nodes]
    order = sorted(range(len(sigs)), key=sigs.__getitem__)
    groups: list[list[int]] = []
    for old in order:
        if groups and sigs[groups[-1][0]] == sigs[old]:
            groups[-1].append(old)
        else:
            groups.append([old])
    if len(groups) == len(sigs):
        inv = tuple(order)
        yield _inverse(inv), inv
        return
    for choice in product(*(permutations(group) for group in groups)):
        inv = tuple(old for part in choice for old in part)
        yield _inverse(inv), inv


def fingerprint(cluster: ClusterState, budget: tuple[int, ...], symmetry: bool = True) -> int:
    """fingerprint is a 64-bit hash of the state's orbit (or of the state, without symmetry)."""
    if symmetry:
        best: Encoding | None = None
        for perm, inv in relabellings(cluster):
            candidate = encode(cluster, perm, inv)
            if best is None or candidate < best:  # type: ignore[operator]
                best = candidate
    else:
        ident = tuple(range(cluster.size))
        best = encode(cluster, ident, ident)
    return hash((budget, best)) & MASK64
