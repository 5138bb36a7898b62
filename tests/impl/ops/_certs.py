"""Throwaway certificates for the TLS tests: a CA and the leaf certificates it signs.

EC P-256 keys (fast to make); every leaf names 127.0.0.1 and localhost in its
subjectAltName and may act as server and client, as a node does both. A node's
leaf (issue_node) also names the node it speaks for, the subjectAltName URI
``raftwright://<cluster-id>/<node-id>`` that a node checks under mutual TLS
(impl/_security.py); issue makes leaves with any URIs (or none: a client's).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from impl._security import TlsConfig, node_identity_uri

__all__ = ["CertAuthority", "Leaf"]

_ONE_DAY = datetime.timedelta(days=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class Leaf:
    """Leaf is one certificate and key on disk, with the CA file that signed it."""

    cert: Path
    key: Path
    ca: Path

    def tls(
        self, *, ca: Path | None = None, mutual: bool = True, verify_peer_id: bool | None = None
    ) -> TlsConfig:
        """tls is the TlsConfig using this leaf (ca overrides the trust root)."""
        return TlsConfig(
            cert=self.cert,
            key=self.key,
            ca=(ca or self.ca) if mutual else None,
            verify_peer_id=verify_peer_id,
        )


class CertAuthority:
    """CertAuthority writes a self-signed CA into directory and signs leaves with it."""

    def __init__(self, directory: Path, name: str = "raftwright-test-ca") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _ONE_DAY)
            .not_valid_after(now + _ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_path = directory / f"{name}.pem"
        self.ca_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue_node(self, node_id: str, cluster_id: str, *, stem: str | None = None) -> Leaf:
        """issue_node signs a node's leaf: CN node_id and the URI naming it in cluster_id."""
        return self.issue(node_id, uris=[node_identity_uri(cluster_id, node_id)], stem=stem)

    def issue(self, common_name: str, *, uris: Sequence[str] = (), stem: str | None = None) -> Leaf:
        """issue signs a leaf for common_name valid for 127.0.0.1 and localhost.

        uris are extra subjectAltName URIs; stem names the files (default:
        common_name), so two leaves of one name can coexist.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _ONE_DAY)
            .not_valid_after(now + _ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        *(x509.UniformResourceIdentifier(uri) for uri in uris),
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        stem = stem or common_name
        cert_path = self.directory / f"{self.name}-{stem}.crt"
        key_path = self.directory / f"{self.name}-{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_key_pem(key))
        key_path.chmod(0o600)
        return Leaf(cert=cert_path, key=key_path, ca=self.ca_path)
