"""The node config file (TOML): every key, flags over file, and each class of error.

A misread config must stop the node before it starts, naming the key, and
``raftwright node`` exits 2 then (the scripting convention for bad settings).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from impl import ConfigError
from impl._config_file import load_config_file, resolve_settings
from impl._security import TlsConfig
from impl.cli import build_parser, node_settings_from_args

ROOT = Path(__file__).resolve().parents[3]

FULL = """
id = "n1"
listen = "0.0.0.0:7001"
data_dir = "data/n1"
trace_dir = "/var/tmp/trace"
cluster_id = "prod"
election_timeout_ms = [300, 600]
heartbeat_ms = 60
snapshot_every = 500
fsync = false
metrics_listen = "127.0.0.1:9101"
log_format = "json"

[peers]
n1 = "10.0.0.1:7001"
n2 = "10.0.0.2:7001"
n3 = "10.0.0.3:7001"

[tls]
cert = "certs/n1.crt"
key = "certs/n1.key"
ca = "/etc/raftwright/ca.pem"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def settings(tmp_path: Path, text: str, *argv: str) -> Any:
    args = build_parser().parse_args(["node", "--config", str(write(tmp_path, text)), *argv])
    return node_settings_from_args(args)


def test_every_key_is_read_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    s = settings(tmp_path, FULL)
    c = s.config
    assert (c.node_id, c.listen, c.cluster_id) == ("n1", "0.0.0.0:7001", "prod")
    assert dict(c.peers) == {"n1": "10.0.0.1:7001", "n2": "10.0.0.2:7001", "n3": "10.0.0.3:7001"}
    assert c.data_dir == tmp_path.resolve() / "data" / "n1"
    assert c.trace_dir == Path("/var/tmp/trace")
    assert c.election_timeout_ms == (300, 600)
    assert (c.heartbeat_ms, c.snapshot_every, c.fsync) == (60, 500, False)
    assert c.metrics_listen == "127.0.0.1:9101"
    assert s.log_format == "json"
    assert c.tls == TlsConfig(
        cert=tmp_path.resolve() / "certs" / "n1.crt",
        key=tmp_path.resolve() / "certs" / "n1.key",
        ca=Path("/etc/raftwright/ca.pem"),
    )


def test_flags_override_the_file(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        FULL,
        "--heartbeat-ms",
        "40",
        "--cluster-id",
        "staging",
        "--election-timeout-ms",
        "100,200",
        "--log-format",
        "text",
        "--tls-ca",
        "/other/ca.pem",
        "--peers",
        "n1=10.0.0.1:7001,n2=10.0.0.2:7001",
    )
    c = s.config
    assert (c.heartbeat_ms, c.cluster_id, c.election_timeout_ms) == (40, "staging", (100, 200))
    assert s.log_format == "text"
    assert c.tls is not None and c.tls.ca == Path("/other/ca.pem")
    assert c.tls.cert == tmp_path.resolve() / "certs" / "n1.crt"  # the rest from the file
    assert sorted(c.peers) == ["n1", "n2"]


def test_minimal_file_gets_defaults_and_listen_from_peers(tmp_path: Path) -> None:
    s = settings(tmp_path, 'id = "a"\ndata_dir = "d"\n[peers]\na = "127.0.0.1:7001"\n')
    c = s.config
    assert c.listen == "127.0.0.1:7001"
    assert (c.cluster_id, c.heartbeat_ms, c.fsync, c.tls, c.metrics_listen) == (
        "raftwright",
        50,
        True,
        None,
        None,
    )
    assert s.log_format == "text"


BASE = 'id = "a"\ndata_dir = "d"\n'
PEERS = '[peers]\na = "127.0.0.1:7001"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "heartbeat-ms = 10\n" + PEERS, "unknown config key 'heartbeat-ms'"),
        (BASE + 'heartbeat_ms = "10"\n' + PEERS, "'heartbeat_ms' must be an integer, got str"),
        (
            BASE + "heartbeat_ms = true\n" + PEERS,
            "'heartbeat_ms' must be an integer, got a boolean",
        ),
        (BASE + 'fsync = "no"\n' + PEERS, "'fsync' must be true or false"),
        (BASE + "election_timeout_ms = [100]\n" + PEERS, "'election_timeout_ms' must be a list"),
        (BASE + "election_timeout_ms = 100\n" + PEERS, "'election_timeout_ms' must be a list"),
        (BASE + 'log_format = "xml"\n' + PEERS, "'log_format' must be one of"),
        (BASE + 'peers = "a=1.2.3.4:5"\n', "'peers' must be a table"),
        (BASE + "[peers]\na = 7001\n", "'peers.a' must be a string"),
        (BASE + '[peers]\na = "nohost"\n', "'peers.a'"),
        (BASE + PEERS + '[tls]\ncert = "c"\n', "'tls.key' is missing"),
        (BASE + PEERS + '[tls]\ncert = "c"\nkey = "k"\nkey_file = "x"\n', "'tls.key_file'"),
        (BASE + PEERS + '[tls]\ncert = "c"\nkey = 3\n', "'tls.key' must be a string"),
        ('data_dir = "d"\n' + PEERS, "missing setting 'id'"),
        (BASE, "missing setting 'peers'"),
        ('id = "a"\n' + PEERS, "missing setting 'data_dir'"),
        ('id = "b"\ndata_dir = "d"\n' + PEERS, "missing setting 'listen'"),
        (BASE + "heartbeat_ms = 1000\n" + PEERS, "heartbeat_ms 1000 must be positive and below"),
        (BASE + 'metrics_listen = "127.0.0.1:7001"\n' + PEERS, "metrics_listen must differ"),
        ("id = [unclosed\n", "is not valid TOML"),
    ],
)
def test_each_error_names_its_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        settings(tmp_path, text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "absent.toml")


def test_resolve_without_file_needs_the_same_settings() -> None:
    with pytest.raises(ConfigError, match="missing setting 'id'"):
        resolve_settings({}, {"peers": {"a": "127.0.0.1:1"}, "data_dir": Path("d")})


@pytest.mark.timeout(60)
def test_cli_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "heartbeat_ms = 10\nsnapshot_evry = 5\n" + PEERS)
    result = subprocess.run(
        [sys.executable, "-m", "impl.cli", "node", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 2
    assert "configuration error: unknown config key 'snapshot_evry'" in result.stderr
