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

What mutual TLS does not do: it admits any certificate the CA signed, and it
does not bind a certificate to a node id, so a holder of a client
certificate could also speak the peer protocol. Keep the cluster's CA for
this cluster only, and give client certificates only to trusted operators
and services.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from impl._config import ConfigError, NodeConfig

__all__ = [
    "TlsConfig",
    "TlsMaterial",
    "channel_credentials",
    "load_tls",
    "node_channel_credentials",
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
    or all three (mutual TLS).
    """

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None

    def __post_init__(self) -> None:
        for name in ("cert", "key", "ca"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if (self.cert is None) != (self.key is None):
            raise ConfigError("tls: cert and key must be given together")
        if self.cert is None and self.ca is None:
            raise ConfigError("tls: give cert and key, or ca, or all three")


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
