"""TLS and mutual TLS for a node's server, its peer channels and the clients.

TlsConfig only names files; load_tls reads and checks them once, at start,
so a node with a missing file, a file that is not PEM or a key that does not
belong to its certificate fails before it binds a port, naming the file,
instead of failing every handshake later with an opaque gRPC error.

The rules (the same on every side):

- cert + key: the node's server speaks TLS and presents that certificate; its
  dials to peers speak TLS and, if a CA is given, present it too;
- ca: the trust root. A node with a CA requires every caller (peer or client)
  to present a certificate signed by it (mutual TLS) and verifies the peers it
  dials against it. A client with a CA verifies the node against it.
- no ca: the node's server does not ask for client certificates and dials
  verify against the system's roots.

Certificates must name the host peers and clients dial (a subjectAltName
DNS or IP entry), as TLS hostname checks require.

Node identity (``verify_peer_id``, on by default under mutual TLS): mutual TLS
alone admits any certificate the CA signed, so without more a holder of a
client certificate, or of node n2's certificate, could speak the peer protocol
as any member. So a node's certificate names the node it speaks for in a
subjectAltName URI ``raftwright://<cluster-id>/<node-id>`` (node_identity_uri;
percent-encoded where the ids need it), and a node refuses peer traffic
(the peer stream and every unary peer RPC) whose sender is not among the node
ids the caller's certificate names for this cluster. Why a URI and not the CN
or a DNS name: the CN and DNS entries already mean "the host", and a
hostname is not a node id; a URI in its own scheme cannot be mistaken for
either, and it names the cluster too, so one CA may sign for several clusters
without a node of one speaking in another. A certificate may name several
node ids (one shared certificate for a StatefulSet's pods names every pod);
it then speaks for each of them, so give each node its own where you can.
Client calls (kv, status, transfer) need no identity: a client certificate
names no node. Keep the cluster's CA for this cluster (or these clusters) only.

The check is the receiver's: it covers every request a peer sends. It does
not cover the replies a node reads back on the calls it dialed, because
grpc's Python API shows a caller no server certificate; a dialer verifies
the server it reached by the address in its certificate (the TLS hostname
check). So give each node a certificate that names only its own address: then
n2's certificate at n3's address fails the handshake.
"""

from __future__ import annotations

import ssl
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from impl._config import ConfigError, NodeConfig

__all__ = [
    "IDENTITY_SCHEME",
    "PeerIdentityCheck",
    "TlsConfig",
    "TlsMaterial",
    "certificate_node_ids",
    "channel_credentials",
    "load_tls",
    "node_channel_credentials",
    "node_identity_uri",
    "node_server_credentials",
    "server_credentials",
]

_CERT_MARK = b"-----BEGIN CERTIFICATE-----"
_KEY_MARKS = (
    b"-----BEGIN PRIVATE KEY-----",
    b"-----BEGIN RSA PRIVATE KEY-----",
    b"-----BEGIN EC PRIVATE KEY-----",
)


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TlsConfig names the PEM files; cert and key go together (both or neither).

    A node needs cert and key; a client may give only ca (server-verified TLS)
    or all three (mutual TLS). verify_peer_id (a node's setting; clients
    ignore it): None means on exactly when mutual TLS is on (ca given); True
    without ca is an error, because without client certificates there is no
    identity to check; False turns the check off (mutual TLS only).
    """

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    verify_peer_id: bool | None = None

    def __post_init__(self) -> None:
        for name in ("cert", "key", "ca"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if (self.cert is None) != (self.key is None):
            raise ConfigError("tls: cert and key must be given together")
        if self.cert is None and self.ca is None:
            raise ConfigError("tls: give cert and key, or ca, or all three")
        if self.verify_peer_id is not None and not isinstance(self.verify_peer_id, bool):
            raise ConfigError(
                f"tls: verify_peer_id must be true or false, got {self.verify_peer_id!r}"
            )
        if self.verify_peer_id and self.ca is None:
            raise ConfigError(
                "tls: verify_peer_id needs ca (mutual TLS): without client certificates"
                " there is no node identity to check"
            )

    @property
    def verifies_peer_id(self) -> bool:
        """verifies_peer_id: the resolved switch (default: on under mutual TLS)."""
        return self.ca is not None if self.verify_peer_id is None else self.verify_peer_id


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """TlsMaterial holds the checked PEM bytes."""

    cert: bytes | None
    key: bytes | None
    ca: bytes | None


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"tls {what} file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"tls {what} file {str(path)!r} cannot be read: {exc}") from None
    return data


def load_tls(config: TlsConfig) -> TlsMaterial:
    """load_tls reads the files and checks them: PEM, parseable, key matching cert."""
    cert = key = ca = None
    if config.ca is not None:
        ca = _read(config.ca, "ca")
        if _CERT_MARK not in ca:
            raise ConfigError(f"tls ca file {str(config.ca)!r} holds no PEM certificate")
        try:
            ssl.create_default_context(cadata=ca.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(
                f"tls ca file {str(config.ca)!r} is not a valid PEM CA: {exc}"
            ) from None
    if config.cert is not None and config.key is not None:
        cert = _read(config.cert, "cert")
        key = _read(config.key, "key")
        if _CERT_MARK not in cert:
            raise ConfigError(f"tls cert file {str(config.cert)!r} holds no PEM certificate")
        if not any(mark in key for mark in _KEY_MARKS):
            raise ConfigError(f"tls key file {str(config.key)!r} holds no PEM private key")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(str(config.cert), str(config.key))
        except ssl.SSLError as exc:
            reason = str(exc.reason or exc)
            if "KEY_VALUES_MISMATCH" in reason.upper():
                raise ConfigError(
                    f"tls key file {str(config.key)!r} does not match the certificate in"
                    f" {str(config.cert)!r}"
                ) from None
            raise ConfigError(
                f"tls cert {str(config.cert)!r} / key {str(config.key)!r} cannot be loaded:"
                f" {reason}"
            ) from None
    return TlsMaterial(cert=cert, key=key, ca=ca)


def server_credentials(material: TlsMaterial) -> grpc.ServerCredentials:
    """server_credentials: TLS with the node's certificate; mutual TLS when a CA is set."""
    if material.cert is None or material.key is None:
        raise ConfigError("tls: a node's server needs cert and key")
    return grpc.ssl_server_credentials(
        [(material.key, material.cert)],
        root_certificates=material.ca,
        require_client_auth=material.ca is not None,
    )


def channel_credentials(material: TlsMaterial) -> grpc.ChannelCredentials:
    """channel_credentials verifies the server against the CA and presents our certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=material.ca,
        private_key=material.key,
        certificate_chain=material.cert,
    )


def node_server_credentials(config: NodeConfig) -> grpc.ServerCredentials | None:
    """node_server_credentials for the node's server; None means plaintext."""
    if config.tls is None:
        return None
    return server_credentials(load_tls(config.tls))


def node_channel_credentials(config: NodeConfig) -> grpc.ChannelCredentials | None:
    """node_channel_credentials for the node's dials to its peers; None means plaintext."""
    if config.tls is None:
        return None
    return channel_credentials(load_tls(config.tls))


# ------------------------------------------------------------ node identity

IDENTITY_SCHEME = "raftwright"

# The grpc auth-context property holding the peer certificate's URI SANs.
_PEER_URI = "peer_uri"


def node_identity_uri(cluster_id: str, node_id: str) -> str:
    """node_identity_uri is the subjectAltName URI a node's certificate carries.

    Both ids are percent-encoded (RFC 3986) so any cluster id fits; the
    ids raftwright accepts for nodes (letters, digits, _ . -) need none.
    """
    quote = urllib.parse.quote
    return f"{IDENTITY_SCHEME}://{quote(cluster_id, safe='')}/{quote(node_id, safe='')}"


def _node_id_of(uri: str, cluster_id: str) -> str | None:
    """_node_id_of: the node id a URI names for cluster_id, or None (another cluster, not ours)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() != IDENTITY_SCHEME:
        return None
    authority, slash, path = rest.partition("/")
    if not slash or not path or "/" in path or "?" in path or "#" in path:
        return None
    unquote = urllib.parse.unquote
    if unquote(authority) != cluster_id:
        return None
    return unquote(path)


def certificate_node_ids(
    auth_context: Mapping[str, Iterable[bytes]], cluster_id: str
) -> frozenset[str]:
    """certificate_node_ids: the node ids the caller's certificate names for cluster_id.

    auth_context is grpc's ``context.auth_context()``; its ``peer_uri``
    property lists the verified client certificate's URI SANs (grpc fills
    it only after the handshake checked the certificate against the CA).
    Empty when there is no certificate or it names no node of this cluster.
    """
    ids: set[str] = set()
    for raw in auth_context.get(_PEER_URI, ()):
        node_id = _node_id_of(raw.decode("utf-8", "replace"), cluster_id)
        if node_id is not None:
            ids.add(node_id)
    return frozenset(ids)


class PeerIdentityCheck:
    """PeerIdentityCheck decides whether a caller's certificate may speak for a sender.

    Off (every sender passes) for plaintext, server-only TLS or
    ``verify_peer_id = false``; on, a sender passes only if the caller's
    certificate names it (certificate_node_ids).
    """

    __slots__ = ("cluster_id", "enabled")

    def __init__(self, cluster_id: str, *, enabled: bool) -> None:
        self.cluster_id = cluster_id
        self.enabled = enabled

    @classmethod
    def for_node(cls, config: NodeConfig) -> PeerIdentityCheck:
        """for_node: the check a node's server applies (its TlsConfig decides)."""
        tls = config.tls
        return cls(config.cluster_id, enabled=tls is not None and tls.verifies_peer_id)

    def names(self, auth_context: Mapping[str, Iterable[bytes]]) -> frozenset[str] | None:
        """names: the node ids the caller may speak for; None means any (check off)."""
        if not self.enabled:
            return None
        return certificate_node_ids(auth_context, self.cluster_id)

    def refusal(self, names: frozenset[str] | None, sender: str) -> str | None:
        """refusal: why sender is refused for a caller allowed ``names``, or None."""
        if names is None or sender in names:
            return None
        wanted = node_identity_uri(self.cluster_id, sender)
        if not names:
            return (
                f"sender {sender!r} refused: the caller's certificate names no node of"
                f" cluster {self.cluster_id!r} (a peer's certificate needs the"
                f" subjectAltName URI {wanted})"
            )
        return (
            f"sender {sender!r} refused: the caller's certificate speaks for"
            f" {sorted(names)} only (it would need the subjectAltName URI {wanted})"
        )
