"""verify_peer_id from the TOML [tls] table and ``raftwright node --tls-no-verify-peer-id``.

The switch decides whether a node under mutual TLS checks that a peer's
certificate names the node id it claims (impl/_security.py). Each case goes
through the real parsing (load_config_file / node_settings_from_args) and ends
at the check the node's server builds from its config (PeerIdentityCheck.for_node).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from impl import ConfigError
from impl._security import PeerIdentityCheck
from impl.cli import build_parser, node_settings_from_args

ROOT = Path(__file__).resolve().parents[3]

BASE = """
id = "n1"
data_dir = "data"

[peers]
n1 = "127.0.0.1:7001"
n2 = "127.0.0.1:7002"
"""

MUTUAL = BASE + '\n[tls]\ncert = "n1.crt"\nkey = "n1.key"\nca = "ca.pem"\n'
SERVER_ONLY = BASE + '\n[tls]\ncert = "n1.crt"\nkey = "n1.key"\n'


def checks(tmp_path: Path, text: str | None, *argv: str) -> bool:
    """checks: whether the node configured by (file text, flags) checks peer ids."""
    args = ["node", *argv]
    if text is not None:
        path = tmp_path / "node.toml"
        path.write_text(text)
        args += ["--config", str(path)]
    config = node_settings_from_args(build_parser().parse_args(args)).config
    return PeerIdentityCheck.for_node(config).enabled


def test_toml_default_is_on_under_mutual_tls_and_off_without_ca(tmp_path: Path) -> None:
    assert checks(tmp_path, MUTUAL) is True
    assert checks(tmp_path, SERVER_ONLY) is False
    assert checks(tmp_path, BASE) is False


def test_toml_verify_peer_id_false_turns_the_check_off(tmp_path: Path) -> None:
    assert checks(tmp_path, MUTUAL + "verify_peer_id = false\n") is False
    assert checks(tmp_path, MUTUAL + "verify_peer_id = true\n") is True


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('verify_peer_id = "no"', "config key 'tls.verify_peer_id' must be true or false, got str"),
        ("verify_peer_id = 0", "config key 'tls.verify_peer_id' must be true or false, got int"),
        ("verify_peer_ids = false", "unknown config key 'tls.verify_peer_ids'"),
    ],
)
def test_toml_bad_values_name_the_key(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        checks(tmp_path, MUTUAL + line + "\n")
    assert message in str(info.value)


def test_toml_verify_peer_id_true_without_ca_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[tls\]: tls: verify_peer_id needs ca"):
        checks(tmp_path, SERVER_ONLY + "verify_peer_id = true\n")


def test_cli_flag_turns_the_check_off(tmp_path: Path) -> None:
    assert checks(tmp_path, MUTUAL, "--tls-no-verify-peer-id") is False
    # TLS from the flags alone.
    flags = ("--tls-cert", "n1.crt", "--tls-key", "n1.key", "--tls-ca", "ca.pem")
    assert checks(tmp_path, BASE, *flags) is True
    assert checks(tmp_path, BASE, *flags, "--tls-no-verify-peer-id") is False


def test_tls_flags_keep_the_files_verify_peer_id(tmp_path: Path) -> None:
    """--tls-ca over a file with verify_peer_id = false keeps the check off."""
    text = MUTUAL + "verify_peer_id = false\n"
    assert checks(tmp_path, text, "--tls-ca", "other-ca.pem") is False


def test_cli_flag_without_tls_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--tls-no-verify-peer-id needs TLS"):
        checks(tmp_path, BASE, "--tls-no-verify-peer-id")


@pytest.mark.timeout(60)
def test_cli_exits_2_on_a_bad_verify_peer_id(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(MUTUAL + 'verify_peer_id = "yes"\n')
    result = subprocess.run(
        [sys.executable, "-m", "impl.cli", "node", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 2
    assert "config key 'tls.verify_peer_id' must be true or false" in result.stderr
