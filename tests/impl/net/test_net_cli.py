"""The ``raftwright`` CLI end to end: a 3-node cluster of subprocesses on loopback.

Checks the scripting conventions other tools rely on: ``kv get`` prints the
value alone and exits 0, a missing key exits 1 with a message on stderr, no
reachable leader exits 2, and ``status --json`` lists a killed node as
"unreachable". The cluster is stopped with SIGTERM and must exit 0 with every
child gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._netutil import consecutive_free_ports, free_ports

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[3]


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "impl.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_every_command_has_help() -> None:
    for args in (
        (),
        ("node",),
        ("cluster",),
        ("kv",),
        ("kv", "put"),
        ("kv", "get"),
        ("kv", "delete"),
        ("status",),
        ("transfer",),
    ):
        result = cli(*args, "--help")
        assert result.returncode == 0, (args, result.stderr)
        assert "usage: raftwright" in result.stdout


def test_bad_node_config_fails_clearly(tmp_path: Path) -> None:
    result = cli(
        "node",
        "--id",
        "z",
        "--listen",
        "127.0.0.1:notaport",
        "--peers",
        "a=127.0.0.1:1",
        "--data-dir",
        str(tmp_path),
    )
    assert result.returncode >= 2
    assert "configuration error" in result.stderr


def test_cluster_kv_status_and_clean_stop(tmp_path: Path) -> None:
    base = consecutive_free_ports(3)
    addresses = ",".join(f"127.0.0.1:{base + i}" for i in range(3))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "impl.cli",
            "cluster",
            "--nodes",
            "3",
            "--base-port",
            str(base),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    pids: dict[str, int] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if len(parts) == 4 and parts[2] == "pid":
                pids[parts[0]] = int(parts[3])
            if line.startswith("Ctrl-C"):
                break
        assert sorted(pids) == ["n1", "n2", "n3"]

        put = cli("kv", "--cluster", addresses, "put", "greeting", "hello world")
        assert put.returncode == 0, put.stderr
        get = cli("kv", "--cluster", addresses, "get", "greeting")
        assert (get.returncode, get.stdout) == (0, "hello world\n"), get.stderr
        missing = cli("kv", "--cluster", addresses, "get", "nope")
        assert missing.returncode == 1
        assert missing.stdout == ""
        assert "not found" in missing.stderr
        deleted = cli("kv", "--cluster", addresses, "delete", "greeting")
        assert deleted.returncode == 0, deleted.stderr
        assert cli("kv", "--cluster", addresses, "get", "greeting").returncode == 1

        status = cli("status", "--cluster", addresses, "--json")
        assert status.returncode == 0, status.stderr
        nodes = json.loads(status.stdout)["nodes"]
        assert [n["id"] for n in nodes] == ["n1", "n2", "n3"]
        leaders = {n["leader"] for n in nodes}
        assert len(leaders) == 1 and None not in leaders
        for n in nodes:
            assert {
                "id",
                "address",
                "role",
                "term",
                "leader",
                "commit_index",
                "applied_index",
            } <= set(n)
        leader = leaders.pop()
        victim = next(node_id for node_id in pids if node_id != leader)
        os.kill(pids[victim], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pids[victim]) and time.monotonic() < deadline:
            time.sleep(0.05)

        status = cli("status", "--cluster", addresses, "--json")
        assert status.returncode == 0, status.stderr
        by_id = {n["id"]: n for n in json.loads(status.stdout)["nodes"]}
        assert by_id[victim]["role"] == "unreachable"
        assert by_id[victim]["address"] == f"127.0.0.1:{base + int(victim[1:]) - 1}"
        assert {by_id[n]["role"] for n in by_id if n != victim} <= {"leader", "follower"}
        table = cli("status", "--cluster", addresses)
        assert table.returncode == 0 and "unreachable" in table.stdout

        # Two of three nodes still form a quorum: writes keep working.
        assert cli("kv", "--cluster", addresses, "put", "k", "v").returncode == 0
        assert cli("kv", "--cluster", addresses, "get", "k").stdout == "v\n"

        (dead_port,) = free_ports(1)
        no_leader = cli("kv", "--cluster", f"127.0.0.1:{dead_port}", "--timeout", "1", "get", "k")
        assert no_leader.returncode == 2
        assert "no leader" in no_leader.stderr
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            for pid in pids.values():
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
    assert code == 0
    assert not any(pid_alive(pid) for pid in pids.values()), "every node process stopped"
