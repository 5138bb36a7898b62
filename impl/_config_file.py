"""The node config file (TOML) and how it merges with command-line flags.

Every ``raftwright node`` option has a key; a flag given on the command line
overrides the file. The file is checked strictly, because a typo in a config
file must not silently fall back to a default (``heartbeat-ms = 10`` instead
of ``heartbeat_ms`` would otherwise run with 50). Every error names the key:

    id = "n1"
    listen = "0.0.0.0:7001"              # default: this node's address in peers
    data_dir = "/var/lib/raftwright"     # relative paths: relative to this file
    cluster_id = "prod"
    election_timeout_ms = [200, 400]
    heartbeat_ms = 50
    snapshot_every = 10000
    fsync = true
    trace_dir = "/var/log/raftwright/trace"
    metrics_listen = "0.0.0.0:9101"
    log_format = "json"                  # or "text"
    join = false                         # true: start with no config, wait for member add

    [peers]
    n1 = "10.0.0.1:7001"
    n2 = "10.0.0.2:7001"
    n3 = "10.0.0.3:7001"

    [tls]
    cert = "n1.crt"
    key = "n1.key"
    ca = "ca.pem"                        # with ca: mutual TLS
    verify_peer_id = true                # default: on with ca (a peer's certificate
                                         # must name the node id it claims)
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impl._config import ConfigError, NodeConfig, parse_address
from impl._logging import LOG_FORMATS
from impl._security import TlsConfig

__all__ = ["DEFAULTS", "NodeSettings", "load_config_file", "resolve_settings"]

DEFAULT_CLUSTER_ID = "raftwright"

# key -> (python type(s) accepted, human name of the type)
_SCALARS: dict[str, tuple[type, str]] = {
    "id": (str, "a string"),
    "listen": (str, "a string HOST:PORT"),
    "data_dir": (str, "a string path"),
    "trace_dir": (str, "a string path"),
    "cluster_id": (str, "a string"),
    "heartbeat_ms": (int, "an integer"),
    "snapshot_every": (int, "an integer"),
    "fsync": (bool, "true or false"),
    "metrics_listen": (str, "a string HOST:PORT"),
    "log_format": (str, "a string"),
    "join": (bool, "true or false"),
}
_TABLES = ("peers", "tls")
_TLS_KEYS = ("cert", "key", "ca", "verify_peer_id")
KEYS = (*_SCALARS, "election_timeout_ms", *_TABLES)

DEFAULTS: dict[str, Any] = {
    "cluster_id": DEFAULT_CLUSTER_ID,
    "election_timeout_ms": (200, 400),
    "heartbeat_ms": 50,
    "snapshot_every": 10000,
    "fsync": True,
    "log_format": "text",
    "join": False,
}


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """NodeSettings: the NodeConfig plus the process-level settings of ``raftwright node``."""

    config: NodeConfig
    log_format: str


def _check_type(key: str, value: Any, kind: type, what: str) -> None:
    # bool is an int in Python; TOML keeps them apart, and so do we.
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"config key {key!r} must be {what}, got a boolean")
    if not isinstance(value, kind):
        raise ConfigError(f"config key {key!r} must be {what}, got {type(value).__name__}")


def _path(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def load_config_file(path: Path) -> dict[str, Any]:
    """load_config_file reads and checks the TOML file; returns the keys it sets.

    Values come back typed as NodeConfig wants them: paths resolved against
    the file's folder, election_timeout_ms a tuple, tls a TlsConfig.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    base = path.resolve().parent
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SCALARS:
            kind, what = _SCALARS[key]
            _check_type(key, value, kind, what)
            out[key] = value
        elif key == "election_timeout_ms":
            if (
                not isinstance(value, list)
                or len(value) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
            ):
                raise ConfigError(
                    "config key 'election_timeout_ms' must be a list of two integers"
                    f" [low, high], got {value!r}"
                )
            out[key] = (value[0], value[1])
        elif key == "peers":
            if not isinstance(value, dict):
                raise ConfigError("config key 'peers' must be a table of id = \"host:port\"")
            peers: dict[str, str] = {}
            for peer_id, address in value.items():
                _check_type(f"peers.{peer_id}", address, str, 'a string "HOST:PORT"')
                try:
                    parse_address(address)
                except ConfigError as exc:
                    raise ConfigError(f"config key 'peers.{peer_id}': {exc}") from None
                peers[peer_id] = address
            out[key] = peers
        elif key == "tls":
            if not isinstance(value, dict):
                raise ConfigError("config key 'tls' must be a table with cert, key and ca")
            for tls_key, tls_value in value.items():
                if tls_key not in _TLS_KEYS:
                    raise ConfigError(
                        f"unknown config key 'tls.{tls_key}' (known: {', '.join(_TLS_KEYS)})"
                    )
                if tls_key == "verify_peer_id":
                    _check_type("tls.verify_peer_id", tls_value, bool, "true or false")
                else:
                    _check_type(f"tls.{tls_key}", tls_value, str, "a string path")
            verify_peer_id = value.get("verify_peer_id")
            files = {k: _path(base, v) for k, v in value.items() if k != "verify_peer_id"}
            if "cert" not in files or "key" not in files:
                missing = "cert" if "cert" not in files else "key"
                raise ConfigError(
                    f"config key 'tls.{missing}' is missing ([tls] needs cert and key)"
                )
            try:
                out[key] = TlsConfig(
                    cert=files["cert"],
                    key=files["key"],
                    ca=files.get("ca"),
                    verify_peer_id=verify_peer_id,
                )
            except ConfigError as exc:
                raise ConfigError(f"config table [tls]: {exc}") from None
        else:
            raise ConfigError(f"unknown config key {key!r} (known: {', '.join(KEYS)})")
    for key in ("data_dir", "trace_dir"):
        if key in out:
            out[key] = _path(base, out[key])
    return out


def resolve_settings(file_values: Mapping[str, Any], flags: Mapping[str, Any]) -> NodeSettings:
    """resolve_settings merges defaults < file < flags (None means "flag not given").

    Missing required settings are named by their config key; NodeConfig then
    checks the values themselves.
    """
    merged: dict[str, Any] = dict(DEFAULTS)
    merged.update(file_values)
    merged.update({k: v for k, v in flags.items() if v is not None})
    # A joining node learns its peers from the leader (Raft thesis 4.2.1).
    required = ("id", "data_dir") if merged["join"] else ("id", "peers", "data_dir")
    for key in required:
        if key not in merged:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"missing setting {key!r} (config key {key!r} or {flag})")
    log_format = merged["log_format"]
    if log_format not in LOG_FORMATS:
        raise ConfigError(
            f"config key 'log_format' must be one of {LOG_FORMATS}, got {log_format!r}"
        )
    peers = dict(merged.get("peers", {}))
    node_id = merged["id"]
    listen = merged.get("listen")
    if listen is None:
        if node_id not in peers:
            raise ConfigError(
                f"missing setting 'listen': node {node_id!r} is not in peers, so its address"
                " is unknown"
            )
        listen = peers[node_id]
    elif node_id not in peers:
        peers[node_id] = listen
    config = NodeConfig(
        node_id=node_id,
        cluster_id=merged["cluster_id"],
        listen=listen,
        peers=peers,
        data_dir=Path(merged["data_dir"]),
        election_timeout_ms=tuple(merged["election_timeout_ms"]),
        heartbeat_ms=merged["heartbeat_ms"],
        snapshot_every=merged["snapshot_every"],
        fsync=merged["fsync"],
        trace_dir=merged.get("trace_dir"),
        tls=merged.get("tls"),
        metrics_listen=merged.get("metrics_listen"),
        join=merged["join"],
    )
    return NodeSettings(config=config, log_format=log_format)
