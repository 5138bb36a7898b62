"""NodeConfig: everything a raftwright node needs to know before it starts.

Validation happens once, at construction, so a misconfigured node fails with a
clear ConfigError instead of electing itself in a cluster of one by mistake.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from impl._security import TlsConfig

__all__ = ["ConfigError", "NodeConfig", "parse_address", "parse_peers", "valid_node_id"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_HOST = re.compile(r"^[A-Za-z0-9_.\-]+$")


class ConfigError(ValueError):
    """ConfigError says which setting is wrong and why."""


def valid_node_id(node_id: str) -> bool:
    """valid_node_id: 1-64 characters of letters, digits, ``_ . -``, not starting with a sign."""
    return bool(_ID.match(node_id))


def parse_address(address: str) -> tuple[str, int]:
    """parse_address splits ``HOST:PORT`` (or ``[V6]:PORT``) and checks both parts."""
    if not isinstance(address, str) or ":" not in address:
        raise ConfigError(f"address {address!r} is not HOST:PORT")
    host, _, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        inner = host[1:-1]
        if not inner or not re.fullmatch(r"[0-9A-Fa-f:.]+", inner):
            raise ConfigError(f"address {address!r} has a bad IPv6 host")
    elif not host or not _HOST.match(host):
        raise ConfigError(f"address {address!r} has a bad host {host!r}")
    if not port_text.isdigit():
        raise ConfigError(f"address {address!r} has a non-numeric port {port_text!r}")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ConfigError(f"address {address!r} has port {port} outside 1..65535")
    return host, port


def parse_peers(text: str) -> dict[str, str]:
    """parse_peers reads ``ID=HOST:PORT,ID=HOST:PORT`` into an ordered dict.

    Duplicate ids are refused here, because a dict would silently keep the last.
    """
    peers: dict[str, str] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        node_id, sep, address = item.partition("=")
        if not sep:
            raise ConfigError(f"peer {item!r} is not ID=HOST:PORT")
        node_id = node_id.strip()
        address = address.strip()
        if node_id in peers:
            raise ConfigError(f"duplicate peer id {node_id!r}")
        parse_address(address)
        peers[node_id] = address
    if not peers:
        raise ConfigError("the peer list is empty")
    return peers


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """NodeConfig of one node.

    peers maps EVERY voter's id (this node included) to the address its peers
    and clients dial; listen is where this node binds (it may differ, e.g.
    0.0.0.0:PORT). fsync=False sets SQLite synchronous=OFF and exists only for
    like-for-like benchmarks against systems that do not fsync.

    tls (cert + key, optionally ca) turns on TLS for the node's server and its
    dials to peers; with ca it is mutual TLS (impl/_security.py has the rules).
    metrics_listen is where ``raftwright node`` serves Prometheus text at
    GET /metrics (None: no metrics endpoint).

    join=True starts a node that knows no configuration yet (Raft thesis
    4.2.1): it never campaigns and waits until a leader adds it as a learner.
    peers may then be empty or name just this node (listen is its address
    otherwise). After a restart the config in its log or snapshot rules.
    """

    node_id: str
    cluster_id: str
    listen: str
    peers: Mapping[str, str]
    data_dir: Path
    election_timeout_ms: tuple[int, int] = (200, 400)
    heartbeat_ms: int = 50
    snapshot_every: int = 10000
    fsync: bool = True
    trace_dir: Path | None = None
    max_inflight_appends: int = 8
    tls: TlsConfig | None = None
    metrics_listen: str | None = None
    join: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.node_id, str) or not _ID.match(self.node_id):
            raise ConfigError(
                f"node id {self.node_id!r} must be 1-64 characters of letters, digits, _ . -"
            )
        if not isinstance(self.cluster_id, str) or not self.cluster_id:
            raise ConfigError("cluster_id must be a non-empty string")
        parse_address(self.listen)
        seen: set[str] = set()
        for peer_id, address in self.peers.items():
            if not isinstance(peer_id, str) or not _ID.match(peer_id):
                raise ConfigError(f"peer id {peer_id!r} is not a valid node id")
            if peer_id in seen:
                raise ConfigError(f"duplicate peer id {peer_id!r}")
            seen.add(peer_id)
            try:
                parse_address(address)
            except ConfigError as exc:
                raise ConfigError(f"peer {peer_id!r}: {exc}") from None
        if self.join:
            if set(self.peers) - {self.node_id}:
                raise ConfigError(
                    "a joining node (join) knows no other peers: leave peers out or list"
                    f" only {self.node_id!r}; the leader adds it (raftwright member add)"
                )
        elif self.node_id not in self.peers:
            raise ConfigError(
                f"node id {self.node_id!r} is not among the peers {sorted(self.peers)}"
            )
        addresses = list(self.peers.values())
        if len(set(addresses)) != len(addresses):
            raise ConfigError(f"two peers share an address: {addresses}")
        lo, hi = self.election_timeout_ms
        if lo <= 0 or hi < lo:
            raise ConfigError(
                f"election_timeout_ms {self.election_timeout_ms} must be (low, high)"
                " with 0 < low <= high"
            )
        if not 0 < self.heartbeat_ms < lo:
            raise ConfigError(
                f"heartbeat_ms {self.heartbeat_ms} must be positive and below the"
                f" election timeout {lo} ms"
            )
        if self.snapshot_every <= 0:
            raise ConfigError(f"snapshot_every {self.snapshot_every} must be positive")
        if self.max_inflight_appends <= 0:
            raise ConfigError("max_inflight_appends must be positive")
        if self.tls is not None:
            from impl._security import TlsConfig

            if not isinstance(self.tls, TlsConfig):
                raise ConfigError(f"tls must be a TlsConfig, got {type(self.tls).__name__}")
            if self.tls.cert is None:
                raise ConfigError("tls: a node needs cert and key (ca is optional)")
        if self.metrics_listen is not None:
            try:
                parse_address(self.metrics_listen)
            except ConfigError as exc:
                raise ConfigError(f"metrics_listen: {exc}") from None
            if self.metrics_listen == self.listen:
                raise ConfigError("metrics_listen must differ from listen")
        object.__setattr__(self, "peers", MappingProxyType(dict(self.peers)))
        object.__setattr__(self, "data_dir", Path(self.data_dir))

    @property
    def voters(self) -> tuple[str, ...]:
        """Voters of the initial config, sorted (empty for a joining node)."""
        return () if self.join else tuple(sorted(self.peers))

    @property
    def others(self) -> dict[str, str]:
        """The peers other than this node."""
        return {k: v for k, v in self.peers.items() if k != self.node_id}

    @property
    def address(self) -> str:
        """The address peers and clients use to reach this node."""
        return self.peers.get(self.node_id, self.listen)
