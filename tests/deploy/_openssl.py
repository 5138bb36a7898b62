"""Certificates made with the openssl commands that docs/deploy.md gives operators.

The rehearsal uses these rather than a Python certificate library on purpose:
if the documented commands stop producing certificates that raftwright
accepts for mutual TLS, the rehearsal fails. The commands here and in
docs/deploy.md ("Certificates") must stay the same.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["OpensslUnavailable", "make_ca", "make_leaf"]

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]


class OpensslUnavailable(RuntimeError):  # noqa: N818 (reads as the reason to skip)
    """OpensslUnavailable: there is no openssl command to make certificates with."""


def _openssl(args: Sequence[str], cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise OpensslUnavailable("the openssl command is not installed")
    result = subprocess.run(
        [exe, *args], cwd=cwd, check=False, capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def make_ca(directory: Path) -> Path:
    """make_ca writes ca.key and ca.crt (a self-signed CA) into directory; returns ca.crt."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        ["req", "-x509", "-new", "-nodes", *_EC, "-keyout", "ca.key", "-out", "ca.crt",
         "-days", "3650", "-subj", "/CN=raftwright CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        directory,
    )  # fmt: skip
    return directory / "ca.crt"


def make_leaf(directory: Path, name: str, sans: Sequence[str], *, server: bool = True) -> Path:
    """make_leaf writes NAME.key and NAME.crt signed by directory's CA; returns NAME.crt.

    sans are subjectAltName items such as ``IP:10.0.0.1`` or ``DNS:n1.example``.
    A node's certificate serves and dials (serverAuth, clientAuth); a client's
    (server=False) only dials.
    """
    usage = "serverAuth,clientAuth" if server else "clientAuth"
    lines = [
        "basicConstraints=CA:FALSE",
        "keyUsage=critical,digitalSignature",
        f"extendedKeyUsage={usage}",
    ]
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    (directory / f"{name}.ext").write_text("\n".join(lines) + "\n")
    _openssl(
        ["req", "-new", "-nodes", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr",
         "-subj", f"/CN={name}"],
        directory,
    )  # fmt: skip
    _openssl(
        ["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", f"{name}.crt", "-days", "825", "-extfile", f"{name}.ext"],
        directory,
    )  # fmt: skip
    return directory / f"{name}.crt"
