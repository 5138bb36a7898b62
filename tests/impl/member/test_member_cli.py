"""``raftwright node --join`` and ``raftwright member add|remove|list`` with real processes.

Reference: Raft thesis 4.2.1 (a new server joins as a learner and is promoted once
caught up) and 4.1 (one server per change). Every node is a subprocess on
127.0.0.1 and is killed at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from impl import KVClient
from impl._config import ConfigError
from impl._config_file import load_config_file, resolve_settings
from impl.cli import main
from tests._ports import free_ports

from ._memberutil import CLUSTER_ID, MemberCluster, change_members, wait_for

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[3]


def cli(*args: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "impl.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


class Procs:
    """Procs starts node processes and kills every one of them at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def node(self, node_id: str, address: str, *extra: str) -> None:
        log = (self.root / f"{node_id}.log").open("wb")
        self.procs[node_id] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "impl.cli",
                "node",
                "--id",
                node_id,
                "--listen",
                address,
                "--data-dir",
                str(self.root / node_id),
                "--election-timeout-ms",
                "150,300",
                "--heartbeat-ms",
                "30",
                *extra,
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def stop(self, node_id: str) -> int:
        proc = self.procs.pop(node_id)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(5)

    def close(self) -> None:
        for node_id in list(self.procs):
            self.stop(node_id)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.close()


Run = Callable[..., subprocess.CompletedProcess[str]]


def in_process(capsys: pytest.CaptureFixture[str]) -> Run:
    """in_process runs the CLI's main() here (no interpreter start-up per command)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


def _wait_put(run: Run, cluster: str, key: str, value: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        result = run("kv", "--cluster", cluster, "--timeout", "5", "put", key, value)
        if result.returncode == 0:
            return
        assert time.monotonic() < deadline, result.stderr
        time.sleep(0.2)


def test_join_add_list_remove_end_to_end(procs: Procs, capsys: pytest.CaptureFixture[str]) -> None:
    """Reference: thesis 4.2.1 and 4.1, through the CLI an operator uses.

    The nodes are processes; ``member add`` runs as one too, the other commands run
    the same main() in this process (each interpreter start costs seconds on a loaded
    machine).
    """
    icli = in_process(capsys)
    ports = free_ports(4)
    addr = {f"n{i + 1}": f"127.0.0.1:{p}" for i, p in enumerate(ports)}
    peers = ",".join(f"{i}={a}" for i, a in list(addr.items())[:3])
    for node_id in ("n1", "n2", "n3"):
        procs.node(node_id, addr[node_id], "--peers", peers)
    procs.node("n4", addr["n4"], "--join")
    three = ",".join(list(addr.values())[:3])
    _wait_put(icli, three, "before", "1")
    # The node supplies the entry of its term a change waits for after a leader change (the
    # 2015 fix); the CLI retries the ABORTED answer until --timeout.
    added = cli(
        "member", "add", "--cluster", three, f"n4={addr['n4']}", "--timeout", "15",
        "--wait", "30",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "n4 is a voter" in added.stdout

    listed = icli("member", "list", "--cluster", three, "--json")
    assert listed.returncode == 0, listed.stderr
    view = json.loads(listed.stdout)
    assert {m["id"]: (m["address"], m["voter"]) for m in view["members"]} == {
        i: (a, True) for i, a in addr.items()
    }
    assert view["committed"] is True and view["leader"] in addr
    assert all(m["match_index"] > 0 for m in view["members"])

    table = icli("member", "list", "--cluster", addr["n4"])
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "ADDRESS", "ROLE", "MATCH"]
    rows = {line.split()[0]: line.split()[1:3] for line in lines[1:5]}
    assert rows == {i: [a, "voter"] for i, a in addr.items()}
    assert "committed" in lines[5]

    # Refusals: exit 3 with the node's reason on stderr.
    again = icli("member", "add", "--cluster", three, f"n4={addr['n4']}", "--timeout", "5")
    assert again.returncode == 3 and "ALREADY_EXISTS" in again.stderr
    missing = icli("member", "remove", "--cluster", three, "n9", "--timeout", "5")
    assert missing.returncode == 3 and "NOT_FOUND" in missing.stderr
    bad = icli("member", "add", "--cluster", three, "n5=nowhere")
    assert bad.returncode == 2 and "configuration error" in bad.stderr

    removed = icli(
        "member", "remove", "--cluster", ",".join(addr.values()), "n3", "--timeout", "15"
    )
    assert removed.returncode == 0, removed.stderr
    procs.stop("n3")
    rest = ",".join(addr[i] for i in ("n1", "n2", "n4"))
    _wait_put(icli, rest, "after", "2")
    got = icli("kv", "--cluster", addr["n4"], "get", "before")
    assert got.returncode == 0 and got.stdout == "1\n", got.stderr

    # n4 restarts (still --join, no --peers): it uses the config its data dir holds.
    assert procs.stop("n4") == 0
    procs.node("n4", addr["n4"], "--join")
    _wait_put(icli, rest, "restarted", "3")
    deadline = time.monotonic() + 30
    while (listed := icli("member", "list", "--cluster", addr["n4"], "--json")).returncode:
        assert time.monotonic() < deadline, listed.stderr  # n4 is still starting
        time.sleep(0.2)
    ids = {m["id"] for m in json.loads(listed.stdout)["members"]}
    assert ids == {"n1", "n2", "n4"}


def test_member_commands_have_help_and_no_cluster_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for args in (("member",), ("member", "add"), ("member", "remove"), ("member", "list")):
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main([*args, "--help"])
        assert info.value.code == 0 and "usage: raftwright" in capsys.readouterr().out, args
    (port,) = free_ports(1)
    down = in_process(capsys)("member", "list", "--cluster", f"127.0.0.1:{port}", "--timeout", "1")
    assert down.returncode == 2 and "raftwright:" in down.stderr


def test_join_in_the_config_file(tmp_path: Path) -> None:
    """A TOML ``join = true`` starts a node with no config; peers may be left out."""
    path = tmp_path / "n4.toml"
    path.write_text('id = "n4"\nlisten = "127.0.0.1:7004"\ndata_dir = "d"\njoin = true\n')
    settings = resolve_settings(load_config_file(path), {})
    assert settings.config.join and settings.config.voters == ()
    assert settings.config.address == "127.0.0.1:7004"
    path.write_text('id = "n4"\nlisten = "127.0.0.1:7004"\ndata_dir = "d"\njoin = "yes"\n')
    with pytest.raises(ConfigError, match="join"):
        load_config_file(path)
    path.write_text(
        'id = "n4"\nlisten = "127.0.0.1:7004"\ndata_dir = "d"\njoin = true\n'
        '[peers]\nn1 = "127.0.0.1:7001"\n'
    )
    with pytest.raises(ConfigError, match="joining node"):
        resolve_settings(load_config_file(path), {})
    path.write_text('id = "n4"\nlisten = "127.0.0.1:7004"\ndata_dir = "d"\n')
    with pytest.raises(ConfigError, match="peers"):
        resolve_settings(load_config_file(path), {})
    assert os.fspath(settings.config.data_dir).endswith("d")


def test_wait_for_a_learner_that_cannot_catch_up_exits_1(tmp_path: Path) -> None:
    """Reference: thesis 4.2.1: a learner is promoted only once caught up; n4 never runs.

    ``member add --wait`` exits 1 with the reason, the learner stays (it counts in no
    quorum, so the cluster keeps committing), ``member list`` shows it as a learner, and
    ``member remove`` takes it out again.
    """

    async def acli(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "impl.cli", *args, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 40)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def main() -> None:
        c = MemberCluster(tmp_path)
        try:
            await c.start_initial()
            three = ",".join(c.initial.values())
            rc, out, err = await acli(
                "member", "add", "--cluster", three, f"n4={c.address('n4')}",
                "--timeout", "15", "--wait", "1",
            )  # fmt: skip
            assert rc == 1 and "n4 is not a voter within 1.0s" in err, (rc, err)
            assert "added n4" in out
            code, out, err = await acli(
                "member", "list", "--cluster", three, "--json", "--timeout", "5"
            )
            assert code == 0, err
            view = json.loads(out)
            assert {m["id"]: m["voter"] for m in view["members"]}["n4"] is False
            rc, out, err = await acli("member", "list", "--cluster", three)
            assert rc == 0 and any(
                line.split()[:3] == ["n4", c.address("n4"), "learner"] for line in out.splitlines()
            ), out
            async with KVClient(list(c.initial.values()), deadline_s=10) as kv:
                await kv.put("k", b"v")  # the learner is in no quorum
            await change_members(list(c.initial.values()), lambda cl: cl.remove_member("n4"))
            await wait_for(
                lambda: True if "n4" not in c.nodes["n1"].members().learners else None,
                15,
                "n1 never dropped the learner",
            )
            assert set(c.nodes["n1"].members().voters) == {"n1", "n2", "n3"}
        finally:
            await c.stop_all()

    asyncio.run(main())


def test_member_commands_over_mutual_tls(tmp_path: Path) -> None:
    """Membership over mutual TLS: the joiner's certificate names it; clients need one too.

    Reference: thesis 4.2.1 (the learner joins and is promoted) with every link
    authenticated; a client without a certificate is refused and changes nothing.
    """
    from tests.impl.ops._certs import CertAuthority

    ca = CertAuthority(tmp_path / "pki")
    tls = {i: ca.issue_node(i, CLUSTER_ID).tls() for i in ("n1", "n2", "n3", "n4")}
    client = ca.issue("operator")
    flags = ["--tls-ca", str(ca.ca_path), "--tls-cert", str(client.cert)]
    flags += ["--tls-key", str(client.key)]

    async def acli(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "impl.cli", *args, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 40)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def main() -> None:
        c = MemberCluster(tmp_path, tls=tls)
        try:
            await c.start_initial()
            await c.start("n4", join=True)
            three = ",".join(c.initial.values())
            ca_only = ["--tls-ca", str(ca.ca_path)]
            rc, _, err = await acli(
                "member", "list", "--cluster", three, *ca_only, "--timeout", "2"
            )
            assert rc >= 2, "no client certificate: refused"
            rc, out, err = await acli(
                "member", "add", "--cluster", three, f"n4={c.address('n4')}",
                "--timeout", "15", "--wait", "20", *flags,
            )  # fmt: skip
            assert rc == 0, err
            rc, out, err = await acli("member", "list", "--cluster", three, "--json", *flags)
            assert rc == 0, err
            view = json.loads(out)
            assert {m["id"]: m["voter"] for m in view["members"]} == dict.fromkeys(
                ("n1", "n2", "n3", "n4"), True
            )
        finally:
            await c.stop_all()

    asyncio.run(main())
