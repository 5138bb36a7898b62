"""A narrow write bench for development (run by hand; not part of ``make bench``).

``python -m bench._quick [--fsync on|off|both] [--concurrency 1,16,256]``: one 3-process
raftwright cluster per fsync setting, embedded writes of 10 B at each concurrency;
prints ops/s, p50/p99 and CPU per op, one JSON line per cell, with the load average.
``--kind read`` measures linearizable reads instead, ``--kind both`` reads and then writes
at each concurrency on the same cluster, with their ratio (one more JSON line per cell).
``python -m bench._quick --grpc``: only the gRPC section (raw unary, raw stream, Propose).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from bench._cluster import Cluster
from bench._proc import kill_all

__all__ = ["main"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._quick", description=__doc__)
    parser.add_argument("--fsync", choices=("on", "off", "both"), default="both")
    parser.add_argument("--concurrency", default="1,16,256")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--payload", type=int, default=10)
    parser.add_argument("--kind", choices=("write", "read", "both"), default="write")
    parser.add_argument("--grpc", action="store_true", help="the gRPC Propose/raw section only")
    args = parser.parse_args()
    if args.grpc:
        _grpc_only()
        return
    settings = {"on": [True], "off": [False], "both": [True, False]}[args.fsync]
    work = Path(tempfile.mkdtemp(prefix="raftwright-quick-"))
    try:
        for fsync in settings:
            with Cluster("raftwright", work / f"c{int(fsync)}", fsync=fsync) as cluster:
                kinds = ["read", "write"] if args.kind == "both" else [args.kind]
                for conc in (int(c) for c in args.concurrency.split(",")):
                    rates: dict[str, float] = {}
                    for kind in kinds:
                        res = cluster.load(
                            kind=kind,
                            concurrency=conc,
                            payload=args.payload,
                            seconds=args.seconds,
                        )
                        res.pop("sample_ms", None)
                        keep = {k: v for k, v in res.items() if not isinstance(v, list)}
                        keep.update(kind=kind, fsync=fsync, concurrency=conc)
                        keep.update(load=os.getloadavg()[0])
                        rates[kind] = float(res["ops_per_s"])
                        print(json.dumps(keep), flush=True)
                    if len(rates) == 2 and rates["write"]:
                        ratio = round(rates["read"] / rates["write"], 2)
                        print(json.dumps({"concurrency": conc, "reads_per_write": ratio}))
    finally:
        kill_all()
        shutil.rmtree(work, ignore_errors=True)


def _grpc_only() -> None:
    from bench._run import QUICK, _grpc_section

    work = Path(tempfile.mkdtemp(prefix="raftwright-quick-"))
    try:
        with Cluster("raftwright", work / "c") as cluster:
            leader = cluster.wait_leader(30)
            figures: dict[str, object] = {}
            _grpc_section(cluster.addresses[leader], QUICK, work, figures, {})
            figures["load"] = os.getloadavg()[0]
            print(json.dumps(figures), flush=True)
    finally:
        kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
