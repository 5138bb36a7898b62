"""Fingerprints with node-symmetry reduction.

All nodes run the same code and are all voters, so relabelling node ids consistently maps
reachable states to reachable states and preserves every invariant (none of them names a
particular id). The explorer keeps one state per orbit. A state's fingerprint is the least,
over a set R(s) of relabellings, of a 64-bit hash of the relabelled state. R(s) is every
relabelling that sorts the nodes by a cheap relabelling-invariant signature (term, role, log
length, ...); for another member t = p(s) of the orbit, R(t) = R(s) composed with p^-1, so
both minimise over the same relabelled states and the fingerprint is an orbit invariant.
Distinct orbits share a fingerprint only by a hash collision (about n^2 / 2^65 for n states,
as with TLC's 64-bit fingerprints). Signatures usually differ, so one relabelling suffices;
ties try every order of the tied nodes (at most n!).

A relabelling touches every place an id lives: node order, voted_for, leader, the vote sets,
the per-peer tuples (indexed by id), the transfer target, configurations (a node's initial
one and those in CONFIG log entries, on nodes, disks and in appends), message endpoints,
crashed, partition groups and the ghost read records. An initial configuration smaller than
the universe (`ExploreConfig.voters`) needs no special case: every node holds it as
`initial_config`, which is hashed relabelled, so two reachable states share a fingerprint
only through a relabelling that maps that configuration to itself, and those relabellings
are symmetries of the model.

Speed comes from sharing: a step changes one node and adds a few messages, and the rest are
the very same objects as in the parent, so the hash of each node and message under each
relabelling is computed once and cached by object identity (the cache holds a reference, so
an identity is never reused while cached). The fast engine (`_engine`) keeps the same hashes
keyed by interned numbers instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from itertools import permutations, product
from operator import itemgetter

from spec import (
    AppendRequest,
    AppendResponse,
    ClusterState,
    Config,
    Durable,
    Entry,
    Message,
    NodeState,
    ReadRecord,
    Role,
    VoteRequest,
    VoteResponse,
)
from spec._messages import message_sort_key  # the network bag's order, not re-derived here

__all__ = [
    "MASK64",
    "Fingerprinter",
    "candidates",
    "combine",
    "extra_hash",
    "fingerprint",
    "message_hash",
    "node_hash",
    "relabel",
    "relabellings",
    "signature",
    "with_disk",
]

MASK64 = (1 << 64) - 1

_ROLE_CODE = {Role.FOLLOWER: 0, Role.PRECANDIDATE: 1, Role.CANDIDATE: 2, Role.LEADER: 3}
_CACHE_LIMIT = 3_000_000


class _Relabelling:
    """_Relabelling is one permutation: `perm` maps old id -> new id, `inv` new -> old."""

    __slots__ = ("index", "inv", "perm", "pick")

    def __init__(self, index: int, inv: tuple[int, ...]) -> None:
        self.index = index
        self.inv = inv
        perm = [0] * len(inv)
        for new, old in enumerate(inv):
            perm[old] = new
        self.perm = tuple(perm)
        getter = itemgetter(*inv)
        # itemgetter of one index returns the item itself, not a 1-tuple.
        self.pick: Callable[[Sequence[int]], tuple[int, ...]] = (
            getter if len(inv) > 1 else (lambda seq: (seq[0],))
        )

    def mask(self, ids: Iterable[int]) -> int:
        perm = self.perm
        bits = 0
        for i in ids:
            bits |= 1 << perm[i]
        return bits


def relabellings(size: int, symmetry: bool) -> list[_Relabelling]:
    """relabellings is every permutation of `size` ids (only the identity without symmetry)."""
    orders = list(permutations(range(size))) if symmetry else [tuple(range(size))]
    return [_Relabelling(k, inv) for k, inv in enumerate(orders)]


def candidates(
    sigs: Sequence[int], by_inv: Mapping[tuple[int, ...], _Relabelling]
) -> list[_Relabelling]:
    """candidates is R(s): the relabellings that sort the nodes by their signatures `sigs`."""
    order = sorted(range(len(sigs)), key=sigs.__getitem__)
    if len(set(sigs)) == len(sigs):
        return [by_inv[tuple(order)]]
    groups: list[list[int]] = []
    for old in order:
        if groups and sigs[groups[-1][0]] == sigs[old]:
            groups[-1].append(old)
        else:
            groups.append([old])
    return [
        by_inv[tuple(old for part in choice for old in part)]
        for choice in product(*(permutations(group) for group in groups))
    ]


def node_hash(node: NodeState, r: _Relabelling) -> int:
    """node_hash is the hash of `node` relabelled by `r` (its id is implied by its position)."""
    perm = r.perm
    return hash(
        (
            node.term,
            -1 if node.voted_for is None else perm[node.voted_for],
            _log_key(node.log, r),
            node.commit,
            _ROLE_CODE[node.role],
            -1 if node.leader is None else perm[node.leader],
            r.mask(node.prevotes),
            r.mask(node.votes),
            r.mask(node.rejections),
            r.pick(node.next_index) if node.next_index else (),
            r.pick(node.match_index) if node.match_index else (),
            node.heard_from_leader,
            r.mask(node.recent_active),
            node.sentinel,
            node.read_seq,
            r.pick(node.acked_ctx) if node.acked_ctx else (),
            node.pending_reads,
            _config_key(node.initial_config, r),
            -1 if node.transfer_target is None else perm[node.transfer_target],
        )
    )


def _config_key(config: Config | None, r: _Relabelling) -> tuple[int, int] | None:
    """A configuration names node ids, so it is hashed as relabelled bit masks."""
    if config is None:
        return None
    return (r.mask(config.voters), r.mask(config.learners))


def _log_key(log: tuple[Entry, ...], r: _Relabelling) -> object:
    """A log is hashed as itself unless a CONFIG entry in it names node ids."""
    if all(entry.config is None for entry in log):
        return log
    return tuple(
        (entry.term, entry.kind, entry.payload, _config_key(entry.config, r)) for entry in log
    )


def with_disk(h: int, node: NodeState, disk: Durable, r: _Relabelling) -> int:
    """with_disk folds a node's disk into its hash `h`, unless the disk mirrors its memory."""
    if (
        disk.term == node.term
        and disk.voted_for == node.voted_for
        and disk.log == node.log
        and disk.commit == node.commit
    ):
        return h
    vote = -1 if disk.voted_for is None else r.perm[disk.voted_for]
    return hash((h, disk.term, vote, _log_key(disk.log, r), disk.commit))


def message_hash(message: Message, r: _Relabelling) -> int:
    """message_hash is the hash of `message` with its endpoints relabelled by `r`."""
    src = r.perm[message.src]
    dst = r.perm[message.dst]
    match message:
        case VoteRequest():
            fields: tuple[object, ...] = (
                0,
                message.prevote,
                message.last_log_index,
                message.last_log_term,
                message.transfer,
            )
        case VoteResponse():
            fields = (1, message.prevote, message.granted, message.request_term)
        case AppendRequest():
            fields = (
                2,
                message.prev_index,
                message.prev_term,
                _log_key(message.entries, r),
                message.leader_commit,
                message.read_ctx,
                message.timeout_now,
            )
        case AppendResponse():
            fields = (
                3,
                message.success,
                message.match_index,
                message.hint_index,
                message.read_ctx,
            )
    return hash((src, dst, message.term, fields))


def signature(node: NodeState) -> int:
    """signature is relabelling-invariant: it only orders nodes, never decides equality.

    Packed into one int for fast sorting (bit 0 is left for "crashed"); equal packings of
    different nodes only cost an extra relabelling to try, never soundness.
    """
    if node.voted_for is None:
        vote_kind = 0
    elif node.voted_for == node.id:
        vote_kind = 1
    else:
        vote_kind = 2
    return (
        (node.term << 40)
        | (_ROLE_CODE[node.role] << 36)
        | (min(len(node.log), 255) << 28)
        | (min(node.commit, 255) << 20)
        | (vote_kind << 16)
        | (len(node.votes) << 10)
        | (len(node.prevotes) << 4)
        | (node.heard_from_leader << 3)
        | ((node.leader is None) << 2)
    )


def extra_hash(
    crashed: Iterable[int],
    partition: Iterable[frozenset[int]],
    reads: Iterable[ReadRecord],
    r: _Relabelling,
) -> tuple[object, ...]:
    """extra_hash is the relabelled fault and ghost-read part (empty when there is none)."""
    perm = r.perm
    return (
        r.mask(crashed),
        tuple(sorted([r.mask(group) for group in partition])),
        tuple(
            sorted(
                [
                    (
                        perm[x.node],
                        x.read_id,
                        x.must_cover,
                        -1 if x.answered is None else x.answered,
                    )
                    for x in reads
                ]
            )
        ),
    )


def combine(
    budget: tuple[int, ...],
    node_hashes: tuple[int, ...],
    network: tuple[int, ...],
    extra: tuple[object, ...],
) -> int:
    """combine is the 64-bit hash of one relabelled state from its parts."""
    return hash((budget, node_hashes, network, extra)) & MASK64


class Fingerprinter:
    """Fingerprinter hashes cluster states of one size, caching per-object partial hashes.

    Call `clear` between BFS levels to bound memory; it only costs recomputation.
    """

    def __init__(self, size: int, symmetry: bool = True) -> None:
        self.size = size
        self.symmetry = symmetry
        self._relabellings = relabellings(size, symmetry)
        self._by_inv = {r.inv: r for r in self._relabellings}
        self._slots = len(self._relabellings)
        self._hashes: dict[int, int] = {}
        self._signatures: dict[int, int] = {}
        self._keep: list[object] = []

    def clear(self) -> None:
        """clear drops the caches (and the references that keep cached objects alive)."""
        self._hashes.clear()
        self._signatures.clear()
        self._keep.clear()

    def _remember(self, obj: object) -> None:
        if len(self._keep) > _CACHE_LIMIT:
            self.clear()
        self._keep.append(obj)

    # --- per-object hashes ---------------------------------------------------------------

    def _node_hash(self, node: NodeState, r: _Relabelling) -> int:
        key = id(node) * self._slots + r.index
        cached = self._hashes.get(key)
        if cached is not None:
            return cached
        value = node_hash(node, r)
        self._remember(node)
        self._hashes[key] = value
        return value

    def _message_hash(self, message: Message, r: _Relabelling) -> int:
        key = id(message) * self._slots + r.index
        cached = self._hashes.get(key)
        if cached is not None:
            return cached
        value = message_hash(message, r)
        self._remember(message)
        self._hashes[key] = value
        return value

    def _signature(self, node: NodeState) -> int:
        key = id(node)
        cached = self._signatures.get(key)
        if cached is not None:
            return cached
        value = signature(node)
        self._remember(node)
        self._signatures[key] = value
        return value

    # --- whole states --------------------------------------------------------------------

    def _candidates(self, cluster: ClusterState) -> list[_Relabelling]:
        if not self.symmetry:
            return self._relabellings[:1]
        crashed = cluster.crashed
        sign = self._signature
        sigs = [sign(node) | (node.id in crashed) for node in cluster.nodes]
        return candidates(sigs, self._by_inv)

    def _hash_under(self, cluster: ClusterState, budget: tuple[int, ...], r: _Relabelling) -> int:
        nodes = cluster.nodes
        disks = cluster.disks
        node_hashes = tuple(
            [with_disk(self._node_hash(nodes[old], r), nodes[old], disks[old], r) for old in r.inv]
        )
        network = tuple(sorted([self._message_hash(m, r) for m in cluster.network]))
        extra: tuple[object, ...] = ()
        if cluster.crashed or cluster.partition or cluster.reads:
            extra = extra_hash(cluster.crashed, cluster.partition, cluster.reads, r)
        return combine(budget, node_hashes, network, extra)

    def __call__(self, cluster: ClusterState, budget: tuple[int, ...]) -> int:
        """The fingerprint of `cluster` with `budget` spent (see the module docstring)."""
        candidates = self._candidates(cluster)
        if len(candidates) == 1:
            return self._hash_under(cluster, budget, candidates[0])
        return min([self._hash_under(cluster, budget, r) for r in candidates])


def fingerprint(cluster: ClusterState, budget: tuple[int, ...] = (), symmetry: bool = True) -> int:
    """fingerprint is a one-off `Fingerprinter(cluster.size, symmetry)(cluster, budget)`."""
    return Fingerprinter(cluster.size, symmetry)(cluster, budget)


def _relabel_message(message: Message, perm: Sequence[int]) -> Message:
    moved = replace(message, src=perm[message.src], dst=perm[message.dst])
    if isinstance(moved, AppendRequest):
        moved = replace(moved, entries=_relabel_log(moved.entries, perm))
    return moved


def _relabel_ids(ids: frozenset[int], perm: Sequence[int]) -> frozenset[int]:
    return frozenset(perm[i] for i in ids)


def _relabel_node(node: NodeState, perm: Sequence[int], inv: Sequence[int]) -> NodeState:
    def pick(values: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(values[old] for old in inv) if values else ()

    return replace(
        node,
        id=perm[node.id],
        voted_for=None if node.voted_for is None else perm[node.voted_for],
        leader=None if node.leader is None else perm[node.leader],
        prevotes=_relabel_ids(node.prevotes, perm),
        votes=_relabel_ids(node.votes, perm),
        rejections=_relabel_ids(node.rejections, perm),
        next_index=pick(node.next_index),
        match_index=pick(node.match_index),
        recent_active=_relabel_ids(node.recent_active, perm),
        acked_ctx=pick(node.acked_ctx),
        log=_relabel_log(node.log, perm),
        initial_config=_relabel_config(node.initial_config, perm),
        transfer_target=None if node.transfer_target is None else perm[node.transfer_target],
    )


def _relabel_config(config: Config | None, perm: Sequence[int]) -> Config | None:
    if config is None:
        return None
    return Config(
        tuple(sorted(perm[i] for i in config.voters)),
        tuple(sorted(perm[i] for i in config.learners)),
    )


def _relabel_log(log: tuple[Entry, ...], perm: Sequence[int]) -> tuple[Entry, ...]:
    if all(entry.config is None for entry in log):
        return log
    return tuple(replace(entry, config=_relabel_config(entry.config, perm)) for entry in log)


def relabel(cluster: ClusterState, perm: Sequence[int]) -> ClusterState:
    """relabel is the concrete state with node `i` renamed `perm[i]` everywhere.

    The explorer never builds relabelled states (it only hashes them); this is for tests and
    for other engines that want to check symmetry claims on real states.
    """
    inv = [0] * len(perm)
    for old, new in enumerate(perm):
        inv[new] = old
    nodes = tuple(_relabel_node(cluster.nodes[old], perm, inv) for old in inv)
    disks = tuple(
        Durable(
            d.term,
            None if d.voted_for is None else perm[d.voted_for],
            _relabel_log(d.log, perm),
            d.commit,
        )
        for d in (cluster.disks[old] for old in inv)
    )
    network = tuple(
        sorted((_relabel_message(m, perm) for m in cluster.network), key=message_sort_key)
    )
    return ClusterState(
        nodes=nodes,
        disks=disks,
        network=network,
        crashed=_relabel_ids(cluster.crashed, perm),
        partition=tuple(sorted((_relabel_ids(g, perm) for g in cluster.partition), key=sorted)),
        reads=tuple(
            sorted(
                ReadRecord(perm[x.node], x.read_id, x.must_cover, x.answered) for x in cluster.reads
            )
        ),
    )
