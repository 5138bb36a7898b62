#!/usr/bin/env python3
"""Container entrypoint: derive a node's config from its StatefulSet pod name, then run it.

A Kubernetes StatefulSet gives each pod a stable name ``<set>-<ordinal>``
(raftwright-0, raftwright-1, ...) and, through a headless Service, a stable DNS
name ``<pod>.<service>.<namespace>.svc.<domain>``. So the node id is the pod
name, the peers are the ``replicas`` pods of the same set at their DNS names,
and the data dir is the pod's own volume, which the StatefulSet re-attaches to
the pod of the same ordinal after any restart or reschedule: the node's Raft
log always comes back to the node id that wrote it (the store also refuses to
open for another id).

This script writes that config as TOML (the ``raftwright node --config``
format) and replaces itself with ``raftwright node --config FILE``. With
``--print`` it only prints the TOML, which is how it is tested without a
cluster. Settings come from the environment:

    RAFTWRIGHT_POD_NAME     the pod name (default: $HOSTNAME)
    RAFTWRIGHT_REPLICAS     number of voters, = the StatefulSet's replicas (required)
    RAFTWRIGHT_SERVICE      the headless Service name (default: the set name)
    RAFTWRIGHT_NAMESPACE    Kubernetes namespace (default: "default")
    RAFTWRIGHT_DOMAIN       cluster DNS domain (default: "cluster.local")
    RAFTWRIGHT_PEER_HOST    peer host template (default:
                            "{pod}.{service}.{namespace}.svc.{domain}")
    RAFTWRIGHT_PORT         Raft and client port (default 7000)
    RAFTWRIGHT_PORT_STRIDE  node i uses PORT + i * STRIDE (default 0; >0 only to run
                            several nodes on one host, e.g. this script's test)
    RAFTWRIGHT_LISTEN_HOST  address to bind (default 0.0.0.0)
    RAFTWRIGHT_DATA_DIR     data dir (default /var/lib/raftwright)
    RAFTWRIGHT_CLUSTER_ID   cluster id (default: the set name)
    RAFTWRIGHT_METRICS_PORT serve Prometheus /metrics on this port (default: off)
    RAFTWRIGHT_TLS_DIR      folder with tls.crt, tls.key and ca.crt (a kubernetes.io/tls
                            Secret plus its CA); when set, peer and client traffic use
                            mutual TLS (default: off)
    RAFTWRIGHT_CONFIG_OUT   where the TOML is written (default /tmp/raftwright-node.toml)
    RAFTWRIGHT_LOG_FORMAT   "json" or "text" (default json)

This file uses the standard library only: it runs before anything else in
the container and must not fail on an import.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["EntrypointError", "PodConfig", "derive", "main", "render_toml"]

_POD = re.compile(r"^(?P<set>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-(?P<ordinal>0|[1-9][0-9]*)$")
DEFAULT_PEER_HOST = "{pod}.{service}.{namespace}.svc.{domain}"


class EntrypointError(ValueError):
    """EntrypointError says which environment setting is wrong and why."""


@dataclass(frozen=True, slots=True)
class PodConfig:
    """PodConfig is what one pod's node is told: its id, addresses, peers and files."""

    node_id: str
    listen: str
    peers: dict[str, str]
    data_dir: str
    cluster_id: str
    metrics_listen: str | None
    tls_dir: str | None
    log_format: str


def _int(env: Mapping[str, str], key: str, default: int | None, low: int) -> int:
    text = env.get(key, "").strip()
    if not text:
        if default is None:
            raise EntrypointError(f"{key} is required")
        return default
    if not re.fullmatch(r"[0-9]+", text):
        raise EntrypointError(f"{key} must be a whole number, got {text!r}")
    value = int(text)
    if value < low:
        raise EntrypointError(f"{key} must be at least {low}, got {value}")
    return value


def derive(env: Mapping[str, str]) -> PodConfig:
    """derive computes the pod's node config from the environment (see the module doc)."""
    pod = env.get("RAFTWRIGHT_POD_NAME") or env.get("HOSTNAME", "")
    match = _POD.match(pod)
    if match is None:
        raise EntrypointError(
            f"pod name {pod!r} is not <statefulset>-<ordinal> (set RAFTWRIGHT_POD_NAME"
            " or run the pod from a StatefulSet)"
        )
    set_name, ordinal = match["set"], int(match["ordinal"])
    replicas = _int(env, "RAFTWRIGHT_REPLICAS", None, 1)
    if ordinal >= replicas:
        raise EntrypointError(
            f"pod {pod!r} has ordinal {ordinal} but RAFTWRIGHT_REPLICAS is {replicas}:"
            " scaling the StatefulSet alone does not add Raft voters"
        )
    port = _int(env, "RAFTWRIGHT_PORT", 7000, 1)
    stride = _int(env, "RAFTWRIGHT_PORT_STRIDE", 0, 0)
    if port + (replicas - 1) * stride > 65535:
        raise EntrypointError(f"RAFTWRIGHT_PORT {port} + stride {stride} runs past 65535")
    fields = {
        "service": env.get("RAFTWRIGHT_SERVICE") or set_name,
        "namespace": env.get("RAFTWRIGHT_NAMESPACE") or "default",
        "domain": env.get("RAFTWRIGHT_DOMAIN") or "cluster.local",
    }
    template = env.get("RAFTWRIGHT_PEER_HOST") or DEFAULT_PEER_HOST
    peers: dict[str, str] = {}
    for i in range(replicas):
        name = f"{set_name}-{i}"
        try:
            host = template.format(pod=name, ordinal=i, **fields)
        except (KeyError, IndexError, ValueError) as exc:
            raise EntrypointError(
                f"RAFTWRIGHT_PEER_HOST {template!r} is not usable: {exc}"
            ) from None
        peers[name] = f"{host}:{port + i * stride}"
    listen_host = env.get("RAFTWRIGHT_LISTEN_HOST") or "0.0.0.0"
    metrics_port = env.get("RAFTWRIGHT_METRICS_PORT", "").strip()
    metrics = None
    if metrics_port:
        metrics = f"{listen_host}:{_int(env, 'RAFTWRIGHT_METRICS_PORT', None, 1)}"
    log_format = env.get("RAFTWRIGHT_LOG_FORMAT") or "json"
    if log_format not in ("json", "text"):
        raise EntrypointError(f"RAFTWRIGHT_LOG_FORMAT must be json or text, got {log_format!r}")
    return PodConfig(
        node_id=pod,
        listen=f"{listen_host}:{port + ordinal * stride}",
        peers=peers,
        data_dir=env.get("RAFTWRIGHT_DATA_DIR") or "/var/lib/raftwright",
        cluster_id=env.get("RAFTWRIGHT_CLUSTER_ID") or set_name,
        metrics_listen=metrics,
        tls_dir=env.get("RAFTWRIGHT_TLS_DIR") or None,
        log_format=log_format,
    )


def _s(text: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \uXXXX for the rest).
    return json.dumps(text)


def render_toml(config: PodConfig) -> str:
    """render_toml writes config in the ``raftwright node --config`` TOML format."""
    lines = [
        "# Written by the raftwright container entrypoint from the pod name; do not edit.",
        f"id = {_s(config.node_id)}",
        f"listen = {_s(config.listen)}",
        f"data_dir = {_s(config.data_dir)}",
        f"cluster_id = {_s(config.cluster_id)}",
        f"log_format = {_s(config.log_format)}",
    ]
    if config.metrics_listen is not None:
        lines.append(f"metrics_listen = {_s(config.metrics_listen)}")
    lines += ["", "[peers]"]
    lines += [f"{_s(node_id)} = {_s(address)}" for node_id, address in config.peers.items()]
    if config.tls_dir is not None:
        tls = config.tls_dir.rstrip("/")
        lines += [
            "",
            "[tls]",
            f"cert = {_s(tls + '/tls.crt')}",
            f"key = {_s(tls + '/tls.key')}",
            f"ca = {_s(tls + '/ca.crt')}",
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if env is None else env
    try:
        config = derive(environ)
    except EntrypointError as exc:
        print(f"raftwright-entrypoint: {exc}", file=sys.stderr)
        return 3
    text = render_toml(config)
    if args[:1] == ["--print"]:
        sys.stdout.write(text)
        return 0
    path = environ.get("RAFTWRIGHT_CONFIG_OUT") or "/tmp/raftwright-node.toml"
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)
    command = shutil.which("raftwright")
    if command is None:
        print("raftwright-entrypoint: the raftwright command is not on PATH", file=sys.stderr)
        return 3
    message = f"{config.node_id} of {len(config.peers)} voters, config in {path}"
    if config.log_format == "json":
        # The node's own log lines are JSON then; keep the stream parseable line by line.
        record = {
            "ts": datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds"),
            "level": "INFO",
            "logger": "raftwright.entrypoint",
            "msg": message,
            "node": config.node_id,
        }
        print(json.dumps(record), file=sys.stderr, flush=True)
    else:
        print(f"raftwright-entrypoint: {message}", file=sys.stderr, flush=True)
    # Extra arguments (e.g. --log-level INFO) go to `raftwright` before the subcommand.
    os.execv(command, [command, *args, "node", "--config", path])


if __name__ == "__main__":
    sys.exit(main())
