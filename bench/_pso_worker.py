"""One PySyncObj node in its own process, driven over a pipe exactly like ``_rw_worker``.

PySyncObj runs with its default ``SyncObjConf`` (no journal file, so no fsync; election
timeout 0.4-1.4 s). Load is generated in this process: ``concurrency`` calls of a
replicated method kept in flight with callbacks, the asynchronous style its README shows.

``python -m bench._pso_worker --self 127.0.0.1:P --partners 127.0.0.1:Q,127.0.0.1:R``
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, replicated

from bench._proc import serve
from bench._stats import summarise

__all__ = ["BenchObj", "main"]


class BenchObj(SyncObj):  # type: ignore[misc]
    """BenchObj stores the last payload and counts commands, like BenchStateMachine."""

    def __init__(self, self_addr: str, partners: list[str]) -> None:
        super().__init__(self_addr, partners)
        self.count = 0
        self.last = b""

    @replicated  # type: ignore[untyped-decorator]
    def put(self, value: bytes) -> int:
        self.count += 1
        self.last = value
        return self.count


def _load(obj: BenchObj, req: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(req["concurrency"])
    payload = b"x" * int(req["payload"])
    seconds = float(req["seconds"])
    warmup = float(req.get("warmup", 0.3))
    slots = threading.Semaphore(concurrency)
    lock = threading.Lock()
    latencies: list[float] = []
    counted = [0, 0, 0]  # ops measured, errors, ops including warm-up
    term_before = obj.raftCurrentTerm
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    def issue() -> None:
        t0 = time.perf_counter()

        def done(result: Any, error: int) -> None:
            t1 = time.perf_counter()
            with lock:
                if error == FAIL_REASON.SUCCESS:
                    counted[2] += 1
                    if t0 >= measure_from:
                        latencies.append((t1 - t0) * 1000)
                        counted[0] += 1
                else:
                    counted[1] += 1
            slots.release()

        obj.put(payload, callback=done)

    while time.perf_counter() < stop_at:
        if slots.acquire(timeout=0.5):
            if time.perf_counter() >= stop_at:
                slots.release()
                break
            issue()
    # let the calls in flight finish (bounded), so the next run starts clean
    for _ in range(concurrency):
        slots.acquire(timeout=5)
    with lock:
        return {
            **summarise(list(latencies), counted[0], seconds, counted[1]),
            "ops_all": counted[2],
            "term_changed": obj.raftCurrentTerm != term_before,
        }


def _probe(obj: BenchObj, req: dict[str, Any]) -> dict[str, Any]:
    dead = req.get("dead")
    deadline = time.monotonic() + float(req.get("timeout_s", 15))
    while time.monotonic() < deadline:
        if obj._isLeader():
            done = threading.Event()
            outcome: list[int] = []

            def callback(
                result: Any, error: int, done: threading.Event = done, outcome: list[int] = outcome
            ) -> None:
                outcome.append(error)
                done.set()

            obj.put(b"probe", callback=callback)
            if done.wait(1.0) and outcome[0] == FAIL_REASON.SUCCESS:
                return {"ok": True, "t": time.monotonic(), "id": obj.selfNode.address}
            continue
        leader = obj._getLeader()
        if leader is not None and leader.address not in (dead, obj.selfNode.address):
            return {"ok": False, "leader": leader.address}
        time.sleep(0.002)
    return {"ok": False, "leader": None}


def _status(obj: BenchObj) -> dict[str, Any]:
    st = obj.getStatus()
    leader = st["leader"]
    return {
        "id": obj.selfNode.address,
        "role": "leader" if obj._isLeader() else "follower",
        "term": st["raft_term"],
        "leader": leader.address if leader is not None else None,
        "commit": st["commit_idx"],
        "applied": st["last_applied"],
        "cpu_s": time.process_time(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--self", dest="self_addr", required=True)
    parser.add_argument("--partners", required=True)
    args = parser.parse_args()
    obj = BenchObj(args.self_addr, args.partners.split(","))

    def handle(req: dict[str, Any]) -> dict[str, Any]:
        match req.get("op"):
            case "status":
                return _status(obj)
            case "load":
                return _load(obj, req)
            case "probe":
                return _probe(obj, req)
            case other:
                return {"error": f"unknown op {other!r}"}

    print(json.dumps({"ready": True, **_status(obj)}), flush=True)
    try:
        serve(handle)
    finally:
        obj.destroy()
    sys.exit(0)


if __name__ == "__main__":
    main()
