"""Profiles behind the analysis in BENCHMARKS.md (run by hand; not part of ``make bench``).

- ``python -m bench._profile node --concurrency 16 [--no-fsync] [--kind read] [--trace]``:
  a 3-process
  raftwright cluster under embedded load while py-spy samples the leader and one follower;
  prints CPU per committed op and the hottest frames (own time, then inclusive).
- ``python -m bench._profile grpc [--procs 2] [--concurrency 16] [--mode both] [--top 0]``:
  ``bench._grpc`` client processes call the raw echo server, then ``Propose`` (or ``Read``)
  on a 3-process cluster's leader, while py-spy samples the server; prints calls per
  second and CPU per call of the server and of the clients, and the hottest frames.
- ``python -m bench._profile checkers``: cProfile of the conformance checker (sans-IO
  trace) and of the explorer (``ci`` preset, depth 9, one worker); prints the top functions.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import dataclasses
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._cluster import Cluster
from bench._proc import Worker, free_ports, kill_all

__all__ = ["main", "top_frames"]


def top_frames(raw_file: Path, count: int) -> str:
    """top_frames summarises a py-spy ``--format raw`` file (collapsed stacks)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw_file.read_text().splitlines():
        stack, _, n_text = line.rpartition(" ")
        if not stack or not n_text.isdigit():
            continue
        n = int(n_text)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"{total} samples; own time:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(count)]
    out.append("inclusive:")
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(count * 2)]
    return "\n".join(out)


def _node(args: argparse.Namespace) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    work = Path(tempfile.mkdtemp(prefix="raftwright-profile-"))
    try:
        trace_dir = work / "traces" if args.trace else None
        with Cluster(
            "raftwright", work / "c", fsync=not args.no_fsync, trace_dir=trace_dir
        ) as cluster:
            leader = cluster.wait_leader(30)
            follower = next(n for n in cluster.workers if n != leader)
            cluster.load(
                kind="write", concurrency=args.concurrency, payload=args.payload, seconds=1
            )
            spies = []
            for role, node in (("leader", leader), ("follower", follower)):
                out = work / f"{role}.txt"
                cmd = [spy, "record", "-p", str(cluster.workers[node].pid), "-d"]
                cmd += [str(int(args.seconds)), "-r", "200", "-f", "raw", "-o", str(out)]
                cmd.append("--nonblocking")
                spies.append((role, out, subprocess.Popen(cmd, stdout=subprocess.DEVNULL)))
            res = cluster.load(
                kind=args.kind,
                concurrency=args.concurrency,
                payload=args.payload,
                seconds=args.seconds - 1,
            )
            res.pop("sample_ms")
            print(json.dumps(res))
            for role, out, proc in spies:
                proc.wait(60)
                print(f"--- {role}")
                print(top_frames(out, args.top))
    finally:
        kill_all()
        shutil.rmtree(work, ignore_errors=True)


def _spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cmd = [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200", "-f", "raw"]
    cmd += ["-o", str(out), "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _process_cpu_s(pid: int) -> float:
    """_process_cpu_s: user + system CPU seconds of a live process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _grpc_once(
    args: argparse.Namespace, mode: str, target: str, server_pid: int, work: Path
) -> None:
    """_grpc_once: client processes call ``target`` while py-spy samples the server."""
    clients = [
        Worker(
            "bench._grpc",
            [
                *("client", "--target", target, "--mode", mode),
                *("--concurrency", str(args.concurrency)),
                *("--seconds", str(args.seconds), "--warmup", "1.0"),
                *("--batch", str(args.batch)),
            ],
            name="grpc-client",
        )
        for _ in range(args.procs)
    ]
    time.sleep(1.0)  # the clients' imports and warm-up
    cpu0 = _process_cpu_s(server_pid)
    window = max(1.0, args.seconds - 1.0)
    watched = [("server", server_pid), ("client", clients[0].pid)] if args.top else []
    spies = [(role, _spy(pid, window, work / f"{role}-{mode}.txt")) for role, pid in watched]
    answers = [c.receive(args.seconds + 60) for c in clients]
    cpu1 = _process_cpu_s(server_pid)
    for c in clients:
        c.close()
    # a batch call carries --batch commands: "ops" counts commands, "calls" calls
    calls = sum(a.get("calls", a["ops"]) for a in answers)
    summary = {
        "mode": mode,
        "calls_per_s": round(sum(a.get("calls_per_s", a["ops_per_s"]) for a in answers), 1),
        "commands_per_s": round(sum(a["ops_per_s"] for a in answers), 1),
        "errors": sum(a["errors"] for a in answers),
        "p50_ms": [round(a["p50_ms"], 2) for a in answers],
        # the server's CPU from the end of warm-up to the last answer (window and tail)
        "server_cpu_us_per_call": round((cpu1 - cpu0) * 1e6 / max(calls, 1), 1),
        "server_cpu_us_per_command": round(
            (cpu1 - cpu0) * 1e6 / max(sum(a["ops"] for a in answers), 1), 1
        ),
        "client_cpu_us_per_call": [a.get("client_cpu_us_per_call") for a in answers],
        "load": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(summary), flush=True)
    for role, spy in spies:
        spy.wait(60)
        out = work / f"{role}-{mode}.txt"
        print(f"--- {role} ({mode})")
        print(top_frames(out, args.top) if out.exists() else "(no samples)")


def _grpc(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="raftwright-profile-"))
    modes = {"both": ["raw", "propose"], "all": ["raw", "propose", "batch"]}.get(
        args.mode, [args.mode]
    )
    try:
        if "raw" in modes:
            (port,) = free_ports(1)
            raw = Worker("bench._grpc", ["raw-server", "--port", str(port)], name="raw-server")
            raw.receive(30)
            _grpc_once(args, "raw", f"127.0.0.1:{port}", raw.pid, work)
            raw.close(2)
            raw.sigkill()
        rest = [m for m in modes if m != "raw"]
        if rest:
            with Cluster("raftwright", work / "c", fsync=not args.no_fsync) as cluster:
                leader = cluster.wait_leader(30)
                for mode in rest:
                    pid = cluster.workers[leader].pid
                    _grpc_once(args, mode, cluster.addresses[leader], pid, work)
    finally:
        kill_all()
        shutil.rmtree(work, ignore_errors=True)


def _stats(profile: cProfile.Profile, count: int) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(profile, stream=buf)
    stats.sort_stats("tottime").print_stats(count)
    stats.sort_stats("cumtime").print_stats(count)
    return buf.getvalue()


def _checkers(args: argparse.Namespace) -> None:
    from properties.conformance import check_traces
    from properties.explore import config_by_name, explore
    from tests.conformance.bench import record

    with tempfile.TemporaryDirectory() as tmp:
        record(Path(tmp), 800)
        prof = cProfile.Profile()
        result = prof.runcall(check_traces, [tmp])
        print(result.render().splitlines()[-1])
        print(_stats(prof, args.top))
    config = dataclasses.replace(config_by_name("ci"), max_depth=9, workers=1)
    prof = cProfile.Profile()
    explored = prof.runcall(explore, config)
    print(explored.summary())
    print(_stats(prof, args.top))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._profile", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    node = sub.add_parser("node")
    node.add_argument("--concurrency", type=int, default=16)
    node.add_argument("--payload", type=int, default=10)
    node.add_argument("--seconds", type=float, default=8.0)
    node.add_argument("--no-fsync", action="store_true")
    node.add_argument("--kind", choices=("write", "read"), default="write")
    node.add_argument("--trace", action="store_true", help="record traces (impl trace_dir)")
    node.add_argument("--top", type=int, default=15)
    grpc_cmd = sub.add_parser("grpc")
    grpc_cmd.add_argument("--procs", type=int, default=2)
    grpc_cmd.add_argument("--concurrency", type=int, default=16)
    grpc_cmd.add_argument("--seconds", type=float, default=6.0)
    grpc_cmd.add_argument(
        "--mode", choices=("propose", "batch", "read", "raw", "both", "all"), default="both"
    )
    grpc_cmd.add_argument("--batch", type=int, default=32, help="commands per call (batch)")
    grpc_cmd.add_argument("--no-fsync", action="store_true")
    grpc_cmd.add_argument("--top", type=int, default=15, help="0: no py-spy")
    checkers = sub.add_parser("checkers")
    checkers.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    if args.command == "node":
        _node(args)
    elif args.command == "grpc":
        _grpc(args)
    else:
        _checkers(args)


if __name__ == "__main__":
    main()
