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
import shlex
import shutil
import subprocess
import textwrap
import tomllib
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


def membership_section() -> str:
    """membership_section is the text of "Adding and removing nodes" in docs/deploy.md."""
    text = DOC.read_text()
    start = text.index("### Adding and removing nodes")
    return text[start : text.index("\n## ", start)]


def section_blocks(section: str) -> list[str]:
    """section_blocks are the section's fenced blocks, indented ones (in list items) too."""
    found = re.findall(r"^( *)```\w*\n(.*?)^\1```$", section, re.M | re.S)
    return [textwrap.dedent(body) for _, body in found]


def documented_commands(section: str, program: str) -> list[list[str]]:
    """documented_commands are the section's shell lines that run program, as argv."""
    commands = []
    for block in section_blocks(section):
        for line in block.replace("\\\n", " ").splitlines():  # continuation lines joined
            words = shlex.split(line, comments=True)
            if words[:1] == [program]:
                commands.append(words)
    return commands


def test_membership_commands_are_the_rehearsals() -> None:
    """The add / list / remove commands of the procedure are what the rehearsal runs.

    The rehearsal builds its commands with the functions of
    test_netns_membership.py; given the page's $C, $TLS and addresses they
    must give the page's lines word for word. Reference: Raft thesis 4.1.
    """
    from .test_netns_membership import add_command, list_command, remove_command

    documented = documented_commands(membership_section(), "raftwright")
    cli = [
        ["raftwright", *add_command("$C", ["$TLS"], "n4", "10.0.0.4:7000")],
        ["raftwright", *list_command("$C", ["$TLS"])],
        ["raftwright", *remove_command("$C", ["$TLS"], "n1")],
    ]
    for command in cli:
        assert command in documented, (command, documented)
    # Nothing else: every member command the page gives is one the rehearsal runs.
    assert all(c in cli for c in documented if c[1] == "member"), documented


def test_joining_node_config_is_the_rehearsals(tmp_path: Path) -> None:
    """n4's documented file sets the keys the rehearsal's does, and the loader reads it as a
    joiner: join on, no peers but itself, mutual TLS. Reference: Raft thesis 4.2.1."""
    from .test_netns_membership import join_config

    (example,) = [b for b in section_blocks(membership_section()) if "join = true" in b]
    rehearsed = join_config("n4", "10.0.0.4:7000", "n4", "certs", "10.0.0.4:9100")
    documented, ours = tomllib.loads(example), tomllib.loads(rehearsed)
    assert documented.keys() == ours.keys()
    assert documented["tls"].keys() == ours["tls"].keys()
    path = tmp_path / "n4.toml"
    path.write_text(example)
    config = resolve_settings(load_config_file(path), {}).config
    assert config.join
    assert config.node_id == "n4"
    assert config.cluster_id == "prod-kv"  # the cluster of the three-node files
    assert dict(config.peers) == {"n4": "0.0.0.0:7000"}
    assert config.tls is not None
    assert config.tls.ca == Path("/etc/raftwright/ca.crt")
    assert config.tls.cert == Path("/etc/raftwright/n4.crt")


def test_joining_node_certificate_command_names_n4(tmp_path: Path) -> None:
    """Run after the CA commands, the page's n4 certificate block gives a certificate that
    verifies for both purposes and names 10.0.0.4 and raftwright://prod-kv/n4."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    (setup,) = [b for b in blocks("") if "openssl req -x509" in b]
    (n4,) = [b for b in section_blocks(membership_section()) if "openssl x509 -req" in b]
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", setup + "\n" + n4],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for purpose in ("sslserver", "sslclient"):
        verify = subprocess.run(
            [openssl, "verify", "-purpose", purpose, "-CAfile", "ca.crt", "n4.crt"],
            cwd=tmp_path,
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
    sans = subprocess.run(
        [openssl, "x509", "-in", "n4.crt", "-noout", "-ext", "subjectAltName"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "IP Address:10.0.0.4" in sans
    assert f"URI:{node_identity_uri('prod-kv', 'n4')}" in sans
