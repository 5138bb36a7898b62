"""The benchmark run: every section in order, one flat figure per name, then the report.

Sections (issue 6): the write matrix (raftwright fsync on / off, PySyncObj defaults; 1, 16,
256, 1,000 in flight; 10 B and 1 KiB), ReadIndex reads, the gRPC client path against raw
grpc.aio, failover by SIGKILL, recovery on a long log, the checkers' rates and the cost of
trace recording. Every process is bounded in time and killed by pid at the end.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._checkers import conformance_rate, run_checkers
from bench._cluster import Cluster
from bench._proc import Worker, free_ports, kill_all
from bench._recovery import build
from bench._stats import percentile

__all__ = ["Mode", "run"]

CONCURRENCY = (1, 16, 256, 1000)
PAYLOADS = (10, 1024)


@dataclass(frozen=True, slots=True)
class Mode:
    """Mode fixes how long and how often each section runs (quick or full)."""

    name: str
    cell_seconds: float
    failovers: int
    recovery_entries: int
    grpc_seconds: float
    budget_s: int
    headline_rounds: int


QUICK = Mode("quick", 1.5, 5, 100_000, 2.0, 1200, 2)
FULL = Mode("full", 4.0, 20, 1_000_000, 4.0, 3600, 5)
HEADLINE_INFLIGHT = 1000
GRPC_BATCH = 32  # commands per ProposeBatch call in the gRPC section


def _log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def machine() -> dict[str, Any]:
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count() or 0,
        "cpu_model": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def disk_probe(directory: Path, count: int = 200) -> dict[str, float]:
    """disk_probe times fsync and a SQLite WAL synchronous=FULL commit where the stores live."""
    import sqlite3

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "probe.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        t0 = time.perf_counter()
        for _ in range(count):
            os.write(fd, b"x")
            os.fsync(fd)
        fsync_ms = (time.perf_counter() - t0) / count * 1000
    finally:
        os.close(fd)
    conn = sqlite3.connect(directory / "probe.sqlite3", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS t(v BLOB)")
        t0 = time.perf_counter()
        for _ in range(count):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?)", (b"x" * 10,))
            conn.execute("COMMIT")
        commit_ms = (time.perf_counter() - t0) / count * 1000
    finally:
        conn.close()
    return {"fsync_ms": round(fsync_ms, 3), "sqlite_commit_ms": round(commit_ms, 3)}


def _cell(prefix: str, conc: int, payload: int) -> str:
    return f"{prefix}_c{conc}_p{payload}"


def _write_matrix(
    cluster: Cluster, prefix: str, mode: Mode, figures: dict[str, Any], detail: dict[str, Any]
) -> None:
    for payload in PAYLOADS:
        for conc in CONCURRENCY:
            res = cluster.load(
                kind="write", concurrency=conc, payload=payload, seconds=mode.cell_seconds
            )
            key = _cell(prefix, conc, payload)
            detail[key] = res
            figures[f"{key}_ops_per_s"] = round(res["ops_per_s"], 1)
            figures[f"{key}_p50_ms"] = round(res["p50_ms"], 3)
            figures[f"{key}_p99_ms"] = round(res["p99_ms"], 3)
            figures[f"{key}_errors"] = res["errors"]
            figures[f"{key}_hung"] = res.get("error_kinds", {}).get("hung", 0)
            figures[f"{key}_leader_changed"] = bool(res.get("term_changed", False))
            figures[f"{key}_leader_cpu_us_per_op"] = res["leader_cpu_us_per_op"]
            figures[f"{key}_follower_cpu_us_per_op"] = res["follower_cpu_us_per_op"]
            _log(
                f"{key}: {res['ops_per_s']:.0f} ops/s,"
                f" p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms"
            )


def _failovers(cluster: Cluster, count: int) -> list[float]:
    times = []
    for i in range(count):
        ms = cluster.failover_once()
        times.append(ms)
        _log(f"{cluster.kind} failover {i + 1}/{count}: {ms:.0f} ms")
    return times


def _grpc_section(
    leader_address: str, mode: Mode, work: Path, figures: dict[str, Any], detail: dict[str, Any]
) -> None:
    (raw_port,) = free_ports(1)
    raw = Worker("bench._grpc", ["raw-server", "--port", str(raw_port)], name="grpc-raw-server")
    try:
        raw.receive(30)
        for procs, conc in ((1, 1), (2, 16)):
            for target_mode, target in (
                ("raw", f"127.0.0.1:{raw_port}"),
                ("stream", f"127.0.0.1:{raw_port}"),
                ("propose", leader_address),
                ("batch", leader_address),
            ):
                clients = [
                    Worker(
                        "bench._grpc",
                        [
                            "client",
                            "--target",
                            target,
                            "--mode",
                            target_mode,
                            "--concurrency",
                            str(conc),
                            "--seconds",
                            str(mode.grpc_seconds),
                            "--batch",
                            str(GRPC_BATCH),
                        ],
                        name=f"grpc-client-{target_mode}",
                    )
                    for _ in range(procs)
                ]
                answers = [c.receive(mode.grpc_seconds + 60) for c in clients]
                for c in clients:
                    c.close()
                total = sum(a["ops_per_s"] for a in answers)
                inflight = procs * conc
                key = f"grpc_{target_mode}_inflight{inflight}"
                detail[key] = answers
                figures[f"{key}_ops_per_s"] = round(total, 1)
                figures[f"{key}_p50_ms"] = round(statistics.median(a["p50_ms"] for a in answers), 3)
                if target_mode == "batch":
                    # ops_per_s above counts commands; the calls that carried them:
                    calls = sum(a["calls_per_s"] for a in answers)
                    figures[f"{key}_calls_per_s"] = round(calls, 1)
                    _log(f"{key}: {total:.0f} commands/s in {calls:.0f} calls/s")
                else:
                    _log(f"{key}: {total:.0f} calls/s from {procs} process(es)")
    finally:
        raw.close(2)
        raw.sigkill()
    for inflight in (1, 32):
        raw_rate = figures[f"grpc_raw_inflight{inflight}_ops_per_s"]
        prop = figures[f"grpc_propose_inflight{inflight}_ops_per_s"]
        figures[f"grpc_propose_vs_raw_inflight{inflight}"] = (
            round(prop / raw_rate, 3) if raw_rate else 0.0
        )
        # commands/s with GRPC_BATCH commands per ProposeBatch call over raw unary calls/s
        batched = figures[f"grpc_batch_inflight{inflight}_ops_per_s"]
        figures[f"grpc_batch_vs_raw_inflight{inflight}"] = (
            round(batched / raw_rate, 3) if raw_rate else 0.0
        )


def _best(figures: dict[str, Any], prefix: str, payload: int) -> tuple[float, int]:
    rates = [(figures[f"{_cell(prefix, c, payload)}_ops_per_s"], c) for c in CONCURRENCY]
    return max(rates)


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"bench exceeded its {seconds}s budget")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run(mode: Mode) -> tuple[dict[str, Any], dict[str, Any]]:
    """run returns (figures, detail): the flat results.json object and the raw samples."""
    figures: dict[str, Any] = {"mode": mode.name}
    detail: dict[str, Any] = {}
    figures.update({f"machine_{k}": v for k, v in machine().items()})
    figures["load_avg_start"] = [round(x, 2) for x in os.getloadavg()]
    started = time.time()
    figures["started_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started))
    work = Path(tempfile.mkdtemp(prefix="raftwright-bench-"))
    try:
        figures.update({f"disk_start_{k}": v for k, v in disk_probe(work / "probe").items()})
        with _deadline(mode.budget_s):
            _sections(mode, work, figures, detail)
        figures.update({f"disk_end_{k}": v for k, v in disk_probe(work / "probe").items()})
    finally:
        kill_all()
        shutil.rmtree(work, ignore_errors=True)
    figures["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["wall_s"] = round(time.time() - started, 1)
    return figures, detail


def _sections(mode: Mode, work: Path, figures: dict[str, Any], detail: dict[str, Any]) -> None:
    # 1, 3, 2, 4 on raftwright with fsync on
    _log("raftwright, fsync on: write matrix")
    with Cluster("raftwright", work / "rw-fsync") as cluster:
        _write_matrix(cluster, "rw_fsync", mode, figures, detail)
        for conc in CONCURRENCY:
            res = cluster.load(kind="read", concurrency=conc, payload=0, seconds=mode.cell_seconds)
            detail[f"rw_read_c{conc}"] = res
            figures[f"rw_read_c{conc}_ops_per_s"] = round(res["ops_per_s"], 1)
            figures[f"rw_read_c{conc}_p50_ms"] = round(res["p50_ms"], 3)
            _log(f"read c{conc}: {res['ops_per_s']:.0f} ops/s p50 {res['p50_ms']:.2f} ms")
        leader = cluster.wait_leader(30)
        _grpc_section(cluster.addresses[leader], mode, work, figures, detail)
        rw_fail = _failovers(cluster, mode.failovers)
    _log("raftwright, fsync off: write matrix")
    with Cluster("raftwright", work / "rw-nofsync", fsync=False) as cluster:
        _write_matrix(cluster, "rw_nofsync", mode, figures, detail)
    _log("PySyncObj, defaults: write matrix")
    with Cluster("pysyncobj", work / "pso") as cluster:
        _write_matrix(cluster, "pso", mode, figures, detail)
        pso_fail = _failovers(cluster, mode.failovers)

    # the headline: the three set-ups up at once, runs interleaved round by round, so a
    # change in the shared machine's load hits every system alike
    _log(f"headline: {mode.headline_rounds} interleaved rounds, {HEADLINE_INFLIGHT} in flight")
    rounds: dict[str, list[float]] = {"rw_fsync": [], "rw_nofsync": [], "pso": []}
    with (
        Cluster("raftwright", work / "h-rw-fsync") as h_fsync,
        Cluster("raftwright", work / "h-rw-nofsync", fsync=False) as h_nofsync,
        Cluster("pysyncobj", work / "h-pso") as h_pso,
    ):
        for i in range(mode.headline_rounds):
            for name, cluster in (("rw_fsync", h_fsync), ("rw_nofsync", h_nofsync), ("pso", h_pso)):
                res = cluster.load(
                    kind="write",
                    concurrency=HEADLINE_INFLIGHT,
                    payload=10,
                    seconds=mode.cell_seconds,
                )
                rounds[name].append(round(res["ops_per_s"], 1))
                _log(f"headline round {i + 1} {name}: {res['ops_per_s']:.0f} ops/s")
    detail["headline_rounds"] = rounds
    figures.update({f"headline_{k}_rounds": v for k, v in rounds.items()})

    # 6b: the cost of trace recording, and conformance on the traces it made
    _log("raftwright, fsync on, traced")
    trace_dir = work / "traces"
    with Cluster("raftwright", work / "rw-traced", trace_dir=trace_dir) as cluster:
        res = cluster.load(kind="write", concurrency=256, payload=10, seconds=mode.cell_seconds)
        detail["rw_traced_c256_p10"] = res
    figures["rw_traced_c256_p10_ops_per_s"] = round(res["ops_per_s"], 1)
    untraced = figures["rw_fsync_c256_p10_ops_per_s"]
    figures["trace_overhead_pct"] = (
        round((1 - res["ops_per_s"] / untraced) * 100, 1) if untraced else 0.0
    )
    _log("conformance on the recorded traces")
    conf = conformance_rate(trace_dir)
    detail["conformance_real"] = conf
    figures["conformance_ok"] = conf["ok"]
    figures["conformance_events"] = conf["events"]
    figures["conformance_events_per_s"] = round(conf["events_per_s"], 1)

    # 5: recovery
    _log(f"recovery: building a log of {mode.recovery_entries} entries")
    store = work / "recovery" / "a"
    figures["recovery_build_s"] = round(build(store, mode.recovery_entries), 2)
    restart = Worker(
        "bench._restart",
        ["restart", "--data-dir", str(store), "--entries", str(mode.recovery_entries)],
        name="recovery",
    )
    rec = restart.receive(900)
    restart.close()
    detail["recovery"] = rec
    figures["recovery_entries"] = rec["entries"]
    figures["recovery_start_s"] = round(rec["start_s"], 3)
    figures["recovery_applied_s"] = round(rec["applied_s"], 3)
    figures["memory_mib_per_million_entries"] = round(rec["bytes_per_million"] / 2**20, 1)
    _log(f"recovery: {rec}")

    # 6: checkers
    _log("checkers")
    checks = run_checkers(full=mode.name == "full")
    detail["checkers"] = checks
    figures["stateful_ok"] = checks["stateful"]["ok"]
    figures["stateful_steps_per_s"] = round(checks["stateful"]["steps_per_s"], 1)
    figures["explore_ok"] = checks["explore"]["ok"]
    figures["explore_distinct_states"] = checks["explore"]["distinct_states"]
    figures["explore_states_per_s"] = round(checks["explore"]["states_per_s"], 1)
    figures["z3_ok"] = checks["z3"]["ok"]
    figures["z3_proof_s"] = round(checks["z3"]["seconds"], 2)
    figures["conformance_sansio_events_per_s"] = round(
        checks["conformance_sansio"]["events_per_s"], 1
    )
    _log(f"checkers: {checks}")

    # headline figures
    for name, times in (("failover", rw_fail), ("pysyncobj_failover", pso_fail)):
        ordered = sorted(times)
        figures[f"{name}_ms_median"] = round(statistics.median(ordered), 1)
        figures[f"{name}_ms_p90"] = round(percentile(ordered, 90), 1)
        figures[f"{name}_count"] = len(ordered)
        detail[f"{name}_ms"] = ordered
    rw_best, rw_c = _best(figures, "rw_fsync", 10)
    nofs_best, nofs_c = _best(figures, "rw_nofsync", 10)
    pso_best, pso_c = _best(figures, "pso", 10)
    figures["matrix_best_rw_fsync_ops_per_s"] = rw_best
    figures["matrix_best_rw_fsync_at_inflight"] = rw_c
    figures["matrix_best_rw_nofsync_ops_per_s"] = nofs_best
    figures["matrix_best_rw_nofsync_at_inflight"] = nofs_c
    figures["matrix_best_pso_ops_per_s"] = pso_best
    figures["matrix_best_pso_at_inflight"] = pso_c

    def ratio_median(a: list[float], b: list[float]) -> float:
        pairs = [x / y for x, y in zip(a, b, strict=True) if y > 0]
        return round(statistics.median(pairs), 3) if pairs else 0.0

    figures["headline_inflight"] = HEADLINE_INFLIGHT
    figures["raftwright_ops_per_s"] = round(statistics.median(rounds["rw_fsync"]), 1)
    figures["raftwright_nofsync_ops_per_s"] = round(statistics.median(rounds["rw_nofsync"]), 1)
    figures["pysyncobj_ops_per_s"] = round(statistics.median(rounds["pso"]), 1)
    figures["ratio_vs_pysyncobj"] = ratio_median(rounds["rw_fsync"], rounds["pso"])
    figures["ratio_nofsync_vs_pysyncobj"] = ratio_median(rounds["rw_nofsync"], rounds["pso"])
    figures["commit_latency_p50_ms"] = figures["rw_fsync_c1_p10_p50_ms"]
    figures["commit_latency_p99_ms"] = figures["rw_fsync_c1_p10_p99_ms"]
    reads = [(figures[f"rw_read_c{c}_ops_per_s"], c) for c in CONCURRENCY]
    figures["read_ops_per_s"], figures["read_ops_per_s_at_inflight"] = max(reads)
    # reads were measured on the matrix's cluster right after its writes: compare with those
    figures["read_vs_write_ratio"] = (
        round(figures["read_ops_per_s"] / rw_best, 3) if rw_best else 0.0
    )
    figures["grpc_propose_ops_per_s"] = figures["grpc_propose_inflight32_ops_per_s"]
    figures["grpc_raw_ops_per_s"] = figures["grpc_raw_inflight32_ops_per_s"]
    figures["grpc_propose_vs_raw"] = figures["grpc_propose_vs_raw_inflight32"]
    # the target's figure ("with batching"): commands/s over ProposeBatch calls of
    # GRPC_BATCH commands against raw unary calls/s, same processes and calls in flight
    figures["grpc_batch_commands_per_call"] = GRPC_BATCH
    figures["grpc_batch_ops_per_s"] = figures["grpc_batch_inflight32_ops_per_s"]
    figures["grpc_propose_batched_vs_raw"] = figures["grpc_batch_vs_raw_inflight32"]
