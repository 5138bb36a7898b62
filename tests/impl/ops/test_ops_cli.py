"""``raftwright node --config`` with mutual TLS, metrics and JSON logs, as separate processes.

The deployment path end to end on loopback: three node processes read TOML
files with a [tls] table, the kv and status commands connect with client
certificates (and fail without), /metrics answers over HTTP, and every
line a JSON-logging node writes on stderr is one JSON object.
"""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from impl._logging import JsonFormatter, configure_logging

from ._certs import CertAuthority
from ._opsutil import free_ports

ROOT = Path(__file__).resolve().parents[3]
NODE_CMD = (sys.executable, "-m", "impl.cli", "--log-level", "INFO", "node")


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "impl.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def test_json_formatter_lines() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", "n7", stream)
    logger = logging.getLogger("raftwright.test")
    try:
        logger.info("hello %s", "world")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed\nover two lines")
    finally:
        configure_logging("WARNING", "text")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(x) for x in lines)
    assert set(first) == {"ts", "level", "logger", "msg", "node"}
    assert (first["level"], first["logger"], first["msg"], first["node"]) == (
        "INFO",
        "raftwright.test",
        "hello world",
        "n7",
    )
    assert first["ts"].endswith("Z") and "T" in first["ts"]
    assert second["msg"] == "failed\nover two lines" and "ValueError: boom" in second["exc"]
    assert isinstance(JsonFormatter(None).format(logging.makeLogRecord({"msg": "x"})), str)


@pytest.mark.network
@pytest.mark.timeout(120)
def test_tls_cluster_of_processes_from_config_files(tmp_path: Path) -> None:
    ca = CertAuthority(tmp_path / "pki")
    client = ca.issue("client")
    ports = free_ports(4)
    peers = {f"n{i + 1}": f"127.0.0.1:{ports[i]}" for i in range(3)}
    metrics_port = ports[3]
    addresses = ",".join(peers.values())
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    try:
        for node_id in peers:
            leaf = ca.issue_node(node_id, "ops-cli")
            extra = f'metrics_listen = "127.0.0.1:{metrics_port}"\n' if node_id == "n1" else ""
            config = tmp_path / f"{node_id}.toml"
            config.write_text(
                f'id = "{node_id}"\ndata_dir = "data/{node_id}"\ncluster_id = "ops-cli"\n'
                f'election_timeout_ms = [150, 300]\nheartbeat_ms = 30\nlog_format = "json"\n'
                f"{extra}[peers]\n"
                + "".join(f'{k} = "{v}"\n' for k, v in peers.items())
                + f'[tls]\ncert = "{leaf.cert}"\nkey = "{leaf.key}"\nca = "{leaf.ca}"\n'
            )
            logs[node_id] = tmp_path / f"{node_id}.log"
            with logs[node_id].open("wb") as out:
                procs[node_id] = subprocess.Popen(
                    [*NODE_CMD, "--config", str(config)],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=out,
                    stdin=subprocess.DEVNULL,
                )
        tls = ["--tls-ca", str(ca.ca_path), "--tls-cert", str(client.cert)]
        tls += ["--tls-key", str(client.key)]
        put = cli("kv", "--cluster", addresses, *tls, "--timeout", "20", "put", "k", "v1")
        assert put.returncode == 0, put.stderr
        get = cli("kv", "--cluster", addresses, *tls, "get", "k")
        assert (get.returncode, get.stdout) == (0, "v1\n"), get.stderr
        status = cli("status", "--cluster", addresses, "--json", *tls)
        assert status.returncode == 0, status.stderr
        nodes = json.loads(status.stdout)["nodes"]
        assert sorted(n["id"] for n in nodes) == ["n1", "n2", "n3"]
        assert sum(n["role"] == "leader" for n in nodes) == 1
        # Without a client certificate, and in plaintext, every node refuses.
        for bad in (["--tls-ca", str(ca.ca_path)], []):
            refused = cli("status", "--cluster", addresses, "--json", *bad)
            assert refused.returncode == 2, refused.stdout
            assert all(n["role"] == "unreachable" for n in json.loads(refused.stdout)["nodes"])
        plain_put = cli("kv", "--cluster", addresses, "--timeout", "2", "put", "k", "v2")
        assert plain_put.returncode == 2
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            assert r.status == 200
            text = r.read().decode()
        assert 'raftwright_role{node="n1",role=' in text
        assert 'raftwright_rpc_duration_seconds_count{node="n1",method="/raftwright.v1.' in text
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for node_id, proc in procs.items():
        assert proc.returncode == 0, (node_id, logs[node_id].read_text())
        lines = logs[node_id].read_text().splitlines()
        assert lines, f"{node_id} wrote no log"
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        for record in records:
            assert {"ts", "level", "logger", "msg", "node"} <= set(record)
            assert record["node"] == node_id
        assert any("listening on" in r["msg"] and "tls mutual" in r["msg"] for r in records)
        # gRPC core's own lines (refused handshakes) arrive as JSON records too.
        assert any(r["logger"] == "grpc" and "Handshake failed" in r["msg"] for r in records)


@pytest.mark.timeout(60)
def test_node_with_a_bad_certificate_setting_exits_2_naming_it(tmp_path: Path) -> None:
    ca = CertAuthority(tmp_path / "pki")
    n1, other = ca.issue("n1"), ca.issue("other")
    port = free_ports(1)[0]
    base = ["node", "--id", "n1", "--peers", f"n1=127.0.0.1:{port}"]
    base += ["--data-dir", str(tmp_path / "d")]
    mismatched = cli(*base, "--tls-cert", str(n1.cert), "--tls-key", str(other.key))
    assert mismatched.returncode == 2, mismatched.stderr
    assert f"tls key file {str(other.key)!r} does not match the certificate" in mismatched.stderr
    missing = cli(*base, "--tls-cert", str(tmp_path / "none.crt"), "--tls-key", str(n1.key))
    assert missing.returncode == 2
    assert "none.crt' does not exist" in missing.stderr
    half = cli(*base, "--tls-cert", str(n1.cert))
    assert half.returncode == 2
    assert "--tls-cert and --tls-key are needed together" in half.stderr


@pytest.mark.timeout(60)
def test_node_whose_ports_are_taken_exits_3_saying_so(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        free = f"127.0.0.1:{free_ports(1)[0]}"
        base = ["node", "--id", "n1", "--data-dir", str(tmp_path / "d")]
        grpc_port = cli(*base, "--peers", f"n1={busy}")
        assert grpc_port.returncode == 3, grpc_port.stderr
        assert "n1 cannot start" in grpc_port.stderr
        metrics_port = cli(*base, "--peers", f"n1={free}", "--metrics-listen", busy)
        assert metrics_port.returncode == 3, metrics_port.stderr
        assert "n1 cannot start" in metrics_port.stderr
