"""The examples in docs/deploy.md work as written.

The operator copies them, so they are run here: the node config file is read
by the node's own config loader and says what the page says it does, and the
certificate commands, run as one shell script, make a CA, three node
certificates naming their addresses and node identities (the subjectAltName
URI a node checks under mutual TLS, impl/_security.py) and a client certificate that openssl
verifies against the CA with the purposes the nodes need.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from impl._config_file import load_config_file, resolve_settings
from impl._security import node_identity_uri

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy.md"


def blocks(language: str) -> list[str]:
    """blocks are the fenced code blocks of docs/deploy.md opened with ```language."""
    text = DOC.read_text()
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)


def test_node_config_example_is_read_as_documented(tmp_path: Path) -> None:
    (example,) = blocks("toml")
    path = tmp_path / "n1.toml"
    path.write_text(example)
    settings = resolve_settings(load_config_file(path), {})
    config = settings.config
    assert config.node_id == "n1"
    assert config.listen == "0.0.0.0:7000"
    assert dict(config.peers) == {f"n{i}": f"10.0.0.{i}:7000" for i in (1, 2, 3)}
    assert config.data_dir == Path("/var/lib/raftwright/n1")
    assert config.cluster_id == "prod-kv"
    assert config.metrics_listen == "0.0.0.0:9100"
    assert settings.log_format == "json"
    assert config.tls is not None
    assert config.tls.ca == Path("/etc/raftwright/ca.crt")
    assert config.tls.cert == Path("/etc/raftwright/n1.crt")


def test_certificate_commands_make_verifiable_certificates(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    (script,) = [b for b in blocks("") if "openssl req -x509" in b]
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    names = ["n1", "n2", "n3", "client"]
    # A node serves and dials its peers, so its certificate must do both; a client's dials.
    checks = [(n, p) for n in names[:3] for p in ("sslserver", "sslclient")]
    for name, purpose in [*checks, ("client", "sslclient")]:
        verify = subprocess.run(
            [openssl, "verify", "-purpose", purpose, "-CAfile", "ca.crt", f"{name}.crt"],
            cwd=tmp_path,
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
    for i in (1, 2, 3):
        sans = subprocess.run(
            [openssl, "x509", "-in", f"n{i}.crt", "-noout", "-ext", "subjectAltName"],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        assert f"IP Address:10.0.0.{i}" in sans
        assert f"URI:{node_identity_uri('prod-kv', f'n{i}')}" in sans
