# ruff: noqa: E501  (markdown table rows read best on one line each)
"""The report: results.json (flat figures), results-detail.json, PNG plots and BENCHMARKS.md.

Every number in BENCHMARKS.md is read from the figures of the run that writes it, and the
command that produced them is printed beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench._run import CONCURRENCY, PAYLOADS

__all__ = ["TARGETS", "targets", "write_all"]

# (name, figure, how it is judged, description)
TARGETS: tuple[tuple[str, str, str], ...] = (
    (
        "write throughput >= 3x PySyncObj (fsync on; interleaved rounds)",
        "ratio_vs_pysyncobj",
        ">=3",
    ),
    ("p50 commit latency < 2 ms at one client", "commit_latency_p50_ms", "<2"),
    (
        "gRPC Propose >= 80% of raw grpc.aio with batching (32 in flight, 32 commands per"
        " ProposeBatch call: commands/s over raw unary calls/s)",
        "grpc_propose_batched_vs_raw",
        ">=0.8",
    ),
    ("linearizable reads >= 3x writes", "read_vs_write_ratio", ">=3"),
    ("failover median < 500 ms", "failover_ms_median", "<500"),
    ("failover median below PySyncObj's", "failover_ms_median", "<pysyncobj_failover_ms_median"),
    ("explorer >= 50,000 distinct states/s", "explore_states_per_s", ">=50000"),
    ("conformance >= 50,000 events/s", "conformance_events_per_s", ">=50000"),
)


def targets(figures: dict[str, Any]) -> list[tuple[str, Any, str, bool]]:
    """targets judges each target: (description, value, threshold text, met)."""
    out = []
    for text, key, rule in TARGETS:
        value = figures[key]
        op = rule[:2] if rule[:2] in (">=", "<=") else rule[:1]
        rhs_text = rule[len(op) :]
        rhs = figures[rhs_text] if rhs_text in figures else float(rhs_text)
        met = value >= rhs if op == ">=" else value < rhs
        shown = f"{op} {rhs}" + (f" ({rhs_text})" if rhs_text in figures else "")
        out.append((text, value, shown, bool(met)))
    return out


_SYSTEMS = (
    ("rw_fsync", "raftwright, fsync on"),
    ("rw_nofsync", "raftwright, fsync off"),
    ("pso", "PySyncObj 0.3.17, defaults"),
)


def _plots(figures: dict[str, Any], detail: dict[str, Any], plot_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    names = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, payload in zip(axes, PAYLOADS, strict=True):
        for prefix, label in _SYSTEMS:
            ys = [figures[f"{prefix}_c{c}_p{payload}_ops_per_s"] for c in CONCURRENCY]
            ax.plot(CONCURRENCY, ys, marker="o", label=label)
        if payload == PAYLOADS[0]:
            ys = [figures[f"rw_read_c{c}_ops_per_s"] for c in CONCURRENCY]
            ax.plot(
                CONCURRENCY, ys, marker="s", linestyle="--", label="raftwright reads (ReadIndex)"
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("operations in flight")
        ax.set_title(f"payload {payload} B")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("operations / s (3 nodes, loopback)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Throughput against concurrency ({figures['mode']} run)")
    fig.tight_layout()
    fig.savefig(plot_dir / "throughput.png", dpi=110)
    plt.close(fig)
    names.append("throughput.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, conc in zip(axes, (1, 256), strict=True):
        for prefix, label in _SYSTEMS:
            sample = sorted(detail[f"{prefix}_c{conc}_p10"]["sample_ms"])
            if sample:
                ys = [(i + 1) / len(sample) for i in range(len(sample))]
                ax.plot(sample, ys, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("commit latency, ms (log)")
        ax.set_ylabel("fraction of writes")
        ax.set_title(f"{conc} in flight, 10 B")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Write latency distributions (CDF)")
    fig.tight_layout()
    fig.savefig(plot_dir / "latency.png", dpi=110)
    plt.close(fig)
    names.append("latency.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    data = [detail["failover_ms"], detail["pysyncobj_failover_ms"]]
    ax.boxplot(data)
    ax.set_xticks([1, 2], ["raftwright", "PySyncObj"])
    ax.set_ylabel("ms from SIGKILL of the leader to a committed write")
    ax.set_title(f"Failover ({len(data[0])} and {len(data[1])} kills)")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(plot_dir / "failover.png", dpi=110)
    plt.close(fig)
    names.append("failover.png")
    return names


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _markdown(
    figures: dict[str, Any], detail: dict[str, Any], command: str, plots: list[str]
) -> str:
    f = figures
    lines = [
        "# raftwright benchmarks",
        "",
        "Generated by the bench from one run; every figure below comes from that run of the",
        "command shown. Regenerate with `make bench` (quick, a few minutes) or `make bench-full`",
        "(the published numbers). Raw figures: `bench/results.json`; samples:",
        "`bench/results-detail.json`; `python -m bench --render` redraws this page and the",
        "plots from them without running anything.",
        "",
        f"- Command: `{command}` ({f['mode']} mode), started {f['started_utc']} UTC, {f['wall_s']:.0f} s wall.",
        f"- Machine: {f['machine_cores']} cores ({f['machine_cpu_model'] or 'unknown CPU'}),"
        f" {f['machine_memory_gib']} GiB, Python {f['machine_python']}, {f['machine_platform']}.",
        f"- Disk where the stores live: fsync {f['disk_start_fsync_ms']} ms and a SQLite WAL"
        f" synchronous=FULL commit {f['disk_start_sqlite_commit_ms']} ms at start;"
        f" {f['disk_end_fsync_ms']} ms and {f['disk_end_sqlite_commit_ms']} ms at end.",
        f"- Load average (1, 5, 15 min) at start {f['load_avg_start']}, at end {f['load_avg_end']}."
        " The machine is shared with other work, so figures move between runs; compare the",
        "  systems within one run, not across runs.",
        "- Set-up: 3 nodes on 127.0.0.1, one OS process per node. raftwright nodes are",
        "  `impl.Node` with its SQLite store (WAL, synchronous=FULL with fsync on, OFF with fsync",
        "  off); PySyncObj 0.3.17 (from PyPI) with its default `SyncObjConf` (no journal, so no",
        "  fsync). *Embedded proposals*: the benchmark drives one driver process per node over a",
        "  pipe; the leader's process generates the load itself (N tasks awaiting",
        "  `Node.propose` / N callbacks of a `@replicated` method in flight), so no client RPC is",
        "  in the write path while replication crosses real process boundaries. Both sides",
        "  replicate a trivial state machine (store the payload, count).",
        "",
        "## Targets",
        "",
        "| target | figure | threshold | met |",
        "| --- | ---: | --- | --- |",
    ]
    for text, value, shown, met in targets(figures):
        lines.append(f"| {text} | {_fmt(value)} | {shown} | {'met' if met else '**missed**'} |")
    lines += [
        "",
        "## Writes: throughput and latency",
        "",
        "Headline: the three set-ups run at the same time (idle between their turns), and",
        f"{len(f['headline_pso_rounds'])} rounds of {f['headline_inflight']:,} writes of 10 B in flight"
        " alternate between them, so load changes on the shared machine hit all alike; the",
        "figures are medians of the rounds, the ratios medians of the per-round ratios.",
        "",
        "| | raftwright fsync on | raftwright fsync off | PySyncObj |",
        "| --- | ---: | ---: | ---: |",
        f"| median ops/s | {_fmt(f['raftwright_ops_per_s'])} | {_fmt(f['raftwright_nofsync_ops_per_s'])} | {_fmt(f['pysyncobj_ops_per_s'])} |",
        f"| rounds | {', '.join(_fmt(x) for x in f['headline_rw_fsync_rounds'])} | {', '.join(_fmt(x) for x in f['headline_rw_nofsync_rounds'])} | {', '.join(_fmt(x) for x in f['headline_pso_rounds'])} |",
        f"| ratio to PySyncObj | {f['ratio_vs_pysyncobj']:.2f}x | {f['ratio_nofsync_vs_pysyncobj']:.2f}x | 1 |",
        "",
        "The full matrix below runs one system after the other (minutes apart), so its ratios",
        "carry the machine's load changes too. Best over concurrency at 10 B there:"
        f" {_fmt(f['matrix_best_rw_fsync_ops_per_s'])} (fsync on, at {f['matrix_best_rw_fsync_at_inflight']}),"
        f" {_fmt(f['matrix_best_rw_nofsync_ops_per_s'])} (fsync off, at {f['matrix_best_rw_nofsync_at_inflight']}),"
        f" {_fmt(f['matrix_best_pso_ops_per_s'])} (PySyncObj, at {f['matrix_best_pso_at_inflight']}).",
        "",
        "| payload | in flight | raftwright fsync on: ops/s, p50, p99 ms | raftwright fsync off | PySyncObj | ratio fsync on / PySyncObj | ratio fsync off / PySyncObj |",
        "| ---: | ---: | --- | --- | --- | ---: | ---: |",
    ]
    for payload in PAYLOADS:
        for conc in CONCURRENCY:
            cells = []
            for prefix, _ in _SYSTEMS:
                k = f"{prefix}_c{conc}_p{payload}"
                mark = " †" if f.get(k + "_leader_changed") else ""
                if f[k + "_ops_per_s"] > 0:
                    cells.append(
                        f"{_fmt(f[k + '_ops_per_s'])}, {f[k + '_p50_ms']:.2f}, {f[k + '_p99_ms']:.2f}{mark}"
                    )
                else:
                    cells.append(f"0, -, -{mark}")
            pso = f[f"pso_c{conc}_p{payload}_ops_per_s"]
            r1 = f[f"rw_fsync_c{conc}_p{payload}_ops_per_s"] / pso if pso else 0.0
            r2 = f[f"rw_nofsync_c{conc}_p{payload}_ops_per_s"] / pso if pso else 0.0
            lines.append(f"| {payload} B | {conc} | {' | '.join(cells)} | {r1:.2f}x | {r2:.2f}x |")
    lines += [
        "",
        "† the leader's term changed during the cell (an election under load: see the analysis",
        "below). Proposals that failed, or were still pending 5 s after the window closed",
        "(`hung`: neither committed nor failed by the node), are counted in the next table.",
        "",
        "CPU time per committed write (µs, process CPU of the leader and the mean follower,",
        "warm-up included) is a figure the shared machine's load does not inflate the way it",
        "inflates wall-clock rates; failed proposals (leadership changes during the run) are",
        "counted, not timed.",
        "",
        "| payload | in flight | raftwright fsync on: leader, follower µs/op | fsync off | PySyncObj | failed proposals (fsync on / off / PySyncObj) |",
        "| ---: | ---: | --- | --- | --- | --- |",
    ]
    for payload in PAYLOADS:
        for conc in CONCURRENCY:
            cells = []
            errs = []
            for prefix, _ in _SYSTEMS:
                k = f"{prefix}_c{conc}_p{payload}"
                cells.append(
                    f"{_fmt(f[k + '_leader_cpu_us_per_op'])}, {_fmt(f[k + '_follower_cpu_us_per_op'])}"
                )
                hung = f.get(k + "_hung", 0)
                errs.append(f"{f[k + '_errors']}" + (f" ({hung} hung)" if hung else ""))
            lines.append(f"| {payload} B | {conc} | {' | '.join(cells)} | {' / '.join(errs)} |")
    lines += [
        "",
        f"![throughput against concurrency](bench/plots/{plots[0]})",
        "",
        f"![latency distributions](bench/plots/{plots[1]})",
        "",
        "## Linearizable reads (ReadIndex) against writes",
        "",
        "| in flight | reads ops/s | read p50 ms | writes ops/s (fsync on, 10 B) | reads / writes |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for conc in CONCURRENCY:
        r = f[f"rw_read_c{conc}_ops_per_s"]
        w = f[f"rw_fsync_c{conc}_p10_ops_per_s"]
        lines.append(
            f"| {conc} | {_fmt(r)} | {f[f'rw_read_c{conc}_p50_ms']:.2f} | {_fmt(w)} | {r / w if w else 0:.2f}x |"
        )
    lines += [
        "",
        f"Best read rate {_fmt(f['read_ops_per_s'])} ops/s against the best write rate of the same"
        f" cluster, {_fmt(f['matrix_best_rw_fsync_ops_per_s'])} (fsync on): {f['read_vs_write_ratio']:.2f}x.",
        "",
        "## The gRPC client path",
        "",
        "`impl.RaftClient.propose` from separate client processes to the leader, against a",
        "grpc.aio server in its own process whose unary method returns its request, measured",
        "in the same run with the same number of client processes and calls in flight.",
        "",
        "The third column keeps the same number of messages in flight on one bidirectional",
        "stream per client process to the same server: what a per-message exchange costs",
        "when the call set-up is paid once (see the analysis; not a target).",
        "",
        "Batched: `impl.RaftClient.propose_many` (the `ProposeBatch` RPC) with"
        f" {f['grpc_batch_commands_per_call']} commands per call,",
        "from the same client processes with the same calls in flight. Its rate is in",
        "commands/s (the calls/s that carried them are in the next column), and",
        "`batched / raw` divides commands/s by the raw unary",
        "calls/s: the target's figure. `Propose / raw` is one command per call, calls/s over",
        "calls/s. The p50 columns are per call.",
        "",
        "| in flight (processes x calls) | raw grpc.aio unary calls/s | raw stream messages/s | Propose/s | Propose / raw | batched commands/s | batched calls/s | batched / raw | raw p50 ms | Propose p50 ms | batched p50 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for inflight, shape in ((1, "1 x 1"), (32, "2 x 16")):
        lines.append(
            f"| {shape} | {_fmt(f[f'grpc_raw_inflight{inflight}_ops_per_s'])}"
            f" | {_fmt(f[f'grpc_stream_inflight{inflight}_ops_per_s'])}"
            f" | {_fmt(f[f'grpc_propose_inflight{inflight}_ops_per_s'])}"
            f" | {f[f'grpc_propose_vs_raw_inflight{inflight}']:.2f}"
            f" | {_fmt(f[f'grpc_batch_inflight{inflight}_ops_per_s'])}"
            f" | {_fmt(f[f'grpc_batch_inflight{inflight}_calls_per_s'])}"
            f" | {f[f'grpc_batch_vs_raw_inflight{inflight}']:.2f}"
            f" | {f[f'grpc_raw_inflight{inflight}_p50_ms']:.2f}"
            f" | {f[f'grpc_propose_inflight{inflight}_p50_ms']:.2f}"
            f" | {f[f'grpc_batch_inflight{inflight}_p50_ms']:.2f} |"
        )
    lines += [
        "",
        "At 32 in flight: with batching"
        f" {f['grpc_propose_batched_vs_raw']:.2f}x the raw unary call rate (commands/s over"
        " calls/s, the target's figure); one command per call"
        f" {f['grpc_propose_vs_raw']:.2f} (calls/s over calls/s).",
    ]
    lines += [
        "",
        "## Failover",
        "",
        "The two followers start writing in a loop (each tries only while it leads), the leader",
        "gets SIGKILL, and the time is from the kill to the first write a new leader commits",
        "(both instants on CLOCK_MONOTONIC). The victim then restarts on its data and rejoins.",
        "",
        "| system | kills | median ms | p90 ms |",
        "| --- | ---: | ---: | ---: |",
        f"| raftwright (election timeout 200-400 ms, prevote) | {f['failover_count']} | {_fmt(f['failover_ms_median'])} | {_fmt(f['failover_ms_p90'])} |",
        f"| PySyncObj (defaults, timeout 0.4-1.4 s) | {f['pysyncobj_failover_count']} | {_fmt(f['pysyncobj_failover_ms_median'])} | {_fmt(f['pysyncobj_failover_ms_p90'])} |",
        "",
        f"![failover](bench/plots/{plots[2]})",
        "",
        "## Recovery",
        "",
        f"A single-voter node restarted on a store of {f['recovery_entries']:,} committed 10-byte",
        "entries (written directly with the node's SQLite storage class in"
        f" {f['recovery_build_s']} s), snapshots disabled so the whole log is loaded.",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| `Node.start()` (open and load the log) | {f['recovery_start_s']:.2f} s |",
        f"| until it leads and has applied every entry | {f['recovery_applied_s']:.2f} s |",
        f"| resident memory per million entries | {f['memory_mib_per_million_entries']} MiB |",
        "",
        "## Checkers",
        "",
        "| engine | figure | setting |",
        "| --- | ---: | --- |",
    ]
    ck = detail["checkers"]
    lines += [
        f"| Hypothesis stateful | {_fmt(f['stateful_steps_per_s'])} steps/s ({ck['stateful']['steps']:,} steps, ok: {_fmt(ck['stateful']['ok'])}) | {ck['stateful']['setting']} |",
        f"| exhaustive explorer | {_fmt(f['explore_states_per_s'])} distinct states/s ({f['explore_distinct_states']:,} states, ok: {_fmt(f['explore_ok'])}) | {ck['explore']['setting']} |",
        f"| trace conformance, traces of this run's traced cluster | {_fmt(f['conformance_events_per_s'])} events/s ({f['conformance_events']:,} events, ok: {_fmt(f['conformance_ok'])}) | `check_traces` on the traced cluster's trace directory |",
        f"| trace conformance, sans-IO trace | {_fmt(f['conformance_sansio_events_per_s'])} events/s | `tests.conformance.bench.record` |",
        f"| Z3 inductive proof of Election Safety | {f['z3_proof_s']} s ({ck['z3']['obligations']} obligations, ok: {_fmt(f['z3_ok'])}) | `prove_election_safety()` |",
        "",
        f"Trace recording cost: 256 in flight, 10 B, fsync on: {_fmt(f['rw_traced_c256_p10_ops_per_s'])} ops/s"
        f" traced against {_fmt(f['rw_fsync_c256_p10_ops_per_s'])} untraced"
        f" ({f['trace_overhead_pct']}% lower; separate clusters, so noise of a few percent either way)."
        f" CPU per write traced: {_fmt(detail['rw_traced_c256_p10']['leader_cpu_us_per_op'])} µs on the leader,"
        f" {_fmt(detail['rw_traced_c256_p10']['follower_cpu_us_per_op'])} µs per follower; untraced"
        f" {_fmt(f['rw_fsync_c256_p10_leader_cpu_us_per_op'])} and {_fmt(f['rw_fsync_c256_p10_follower_cpu_us_per_op'])}.",
        "",
    ]
    return "\n".join(lines)


def write_all(
    figures: dict[str, Any], detail: dict[str, Any], root: Path, command: str, notes: str = ""
) -> None:
    """write_all writes results.json, results-detail.json, the plots and BENCHMARKS.md."""
    bench_dir = root / "bench"
    (bench_dir / "results.json").write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
    (bench_dir / "results-detail.json").write_text(json.dumps(detail, sort_keys=True) + "\n")
    plots = _plots(figures, detail, bench_dir / "plots")
    text = _markdown(figures, detail, command, plots)
    if notes:
        text += "\n" + notes.strip() + "\n"
    (root / "BENCHMARKS.md").write_text(text)
