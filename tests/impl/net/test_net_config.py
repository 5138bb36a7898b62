"""NodeConfig validation: a bad configuration fails at once with a clear ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from impl import ConfigError, NodeConfig
from impl._config import parse_address, parse_peers

PEERS = {"a": "127.0.0.1:7001", "b": "127.0.0.1:7002", "c": "127.0.0.1:7003"}


def make(**overrides: object) -> NodeConfig:
    fields: dict[str, object] = {
        "node_id": "a",
        "cluster_id": "test",
        "listen": "127.0.0.1:7001",
        "peers": PEERS,
        "data_dir": Path("unused"),
    }
    fields.update(overrides)
    return NodeConfig(**fields)  # type: ignore[arg-type]


def test_valid_config_has_sorted_voters_and_others() -> None:
    cfg = make()
    assert cfg.voters == ("a", "b", "c")
    assert cfg.others == {"b": "127.0.0.1:7002", "c": "127.0.0.1:7003"}
    assert cfg.address == "127.0.0.1:7001"
    assert cfg.election_timeout_ms == (200, 400)
    assert cfg.heartbeat_ms == 50


def test_unknown_self_id() -> None:
    with pytest.raises(ConfigError, match="not among the peers"):
        make(node_id="z")


def test_duplicate_ids_in_peer_list() -> None:
    with pytest.raises(ConfigError, match="duplicate peer id 'a'"):
        parse_peers("a=127.0.0.1:1,b=127.0.0.1:2,a=127.0.0.1:3")


def test_duplicate_addresses() -> None:
    with pytest.raises(ConfigError, match="share an address"):
        make(peers={"a": "127.0.0.1:7001", "b": "127.0.0.1:7001"})


@pytest.mark.parametrize(
    "address", ["nohost", "host:", ":80", "host:0", "host:70000", "host:x1", "ho st:80", "[]:1"]
)
def test_bad_addresses(address: str) -> None:
    with pytest.raises(ConfigError):
        parse_address(address)
    with pytest.raises(ConfigError):
        make(listen=address)


def test_good_addresses() -> None:
    assert parse_address("localhost:1") == ("localhost", 1)
    assert parse_address("[::1]:65535") == ("[::1]", 65535)


@pytest.mark.parametrize("timeouts", [(400, 200), (0, 100), (-5, 10)])
def test_timeouts_out_of_order(timeouts: tuple[int, int]) -> None:
    with pytest.raises(ConfigError, match="election_timeout_ms"):
        make(election_timeout_ms=timeouts)


def test_heartbeat_must_be_below_election_timeout() -> None:
    with pytest.raises(ConfigError, match="heartbeat_ms"):
        make(heartbeat_ms=200)
    with pytest.raises(ConfigError, match="heartbeat_ms"):
        make(heartbeat_ms=0)


def test_bad_ids_and_cluster() -> None:
    with pytest.raises(ConfigError, match="node id"):
        make(node_id="", peers={"": "127.0.0.1:1"})
    with pytest.raises(ConfigError, match="cluster_id"):
        make(cluster_id="")
    with pytest.raises(ConfigError, match="peer id"):
        make(peers={**PEERS, "bad id": "127.0.0.1:9"})
    with pytest.raises(ConfigError, match="snapshot_every"):
        make(snapshot_every=0)


def test_parse_peers_errors() -> None:
    with pytest.raises(ConfigError, match="ID=HOST:PORT"):
        parse_peers("a127.0.0.1:1")
    with pytest.raises(ConfigError, match="empty"):
        parse_peers(" , ")
    assert parse_peers("a=h:1, b=h:2") == {"a": "h:1", "b": "h:2"}


def test_peers_are_frozen() -> None:
    cfg = make()
    with pytest.raises(TypeError):
        cfg.peers["d"] = "127.0.0.1:9"  # type: ignore[index]


def test_tls_and_metrics_settings() -> None:
    from impl._security import TlsConfig

    with pytest.raises(ConfigError, match="a node needs cert and key"):
        make(tls=TlsConfig(ca=Path("ca.pem")))
    with pytest.raises(ConfigError, match="must be a TlsConfig"):
        make(tls="cert.pem")
    assert make(tls=TlsConfig(cert=Path("c"), key=Path("k"))).tls == TlsConfig(
        cert=Path("c"), key=Path("k")
    )
    with pytest.raises(ConfigError, match="metrics_listen"):
        make(metrics_listen="nowhere")
    with pytest.raises(ConfigError, match="must differ from listen"):
        make(metrics_listen="127.0.0.1:7001")
    assert make(metrics_listen="0.0.0.0:9101").metrics_listen == "0.0.0.0:9101"
