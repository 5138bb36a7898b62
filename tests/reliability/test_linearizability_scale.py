"""The linearizability checker at the nightly size: 100,000+ operations, 16 keys.

The histories are generated from a real sequential execution: each operation gets a
linearization point inside its [invoke, complete] interval, the KV model is applied in
the order of those points, and each operation records what the model answered. Such a
history is linearizable by construction (the points are a witness), so the checker must
say so within its bounds; changing one read's answer afterwards to a value the key
never held at any moment of that read makes it not linearizable. Some operations are
recorded as unknown (the client gave up), and half of those never take effect.

Reference: Herlihy & Wing 1990 (linearizability; locality, which is why the check can
be split per key); Raft thesis section 6.3 (an unanswered write may still take effect).
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from properties.linearizability import Operation, OpKind, Outcome, Verdict, check


def _history(n_ops: int, *, seed: int, clients: int = 8, keys: int = 16) -> list[Operation]:
    rng = random.Random(seed)
    planned = []
    for c in range(clients):
        t = rng.random()
        for i in range(n_ops // clients):
            invoke = t
            complete = invoke + rng.expovariate(1 / 0.02)
            point = rng.uniform(invoke, complete)
            r = rng.random()
            kind = OpKind.PUT if r < 0.45 else OpKind.DELETE if r < 0.55 else OpKind.GET
            unknown = rng.random() < 0.01
            applied = not unknown or rng.random() < 0.5
            if unknown and applied and rng.random() < 0.3:
                point = complete + rng.uniform(0, 5)  # took effect after the client gave up
            value = f"{c}:{i}".encode() if kind is OpKind.PUT else None
            key = f"k{rng.randrange(keys)}"
            planned.append((point, c, kind, key, value, invoke, complete, unknown, applied))
            t = complete + rng.expovariate(1 / 0.005)
    planned.sort(key=lambda p: p[0])
    state: dict[str, bytes] = {}
    ops = []
    for n, (_, c, kind, key, value, invoke, complete, unknown, applied) in enumerate(planned):
        out: bytes | bool | None = None
        if applied:
            match kind:
                case OpKind.PUT:
                    assert value is not None
                    state[key] = value
                case OpKind.DELETE:
                    out = state.pop(key, None) is not None
                case OpKind.GET:
                    out = state.get(key)
        if unknown:
            if kind is not OpKind.GET:
                ops.append(
                    Operation(n, c, kind, key, value, None, invoke, complete, Outcome.UNKNOWN)
                )
            continue
        ops.append(Operation(n, c, kind, key, value, out, invoke, complete, Outcome.OK))
    return ops


@pytest.mark.slow
def test_a_nightly_size_linearizable_history_is_decided_linearizable() -> None:
    ops = _history(120_000, seed=3)
    assert len(ops) > 100_000
    result = check(ops, seconds=600)
    assert result.verdict is Verdict.LINEARIZABLE, result.render()
    assert len(result.keys) == 16


@pytest.mark.slow
def test_one_impossible_read_in_a_large_history_is_found_with_a_short_window() -> None:
    ops = _history(40_000, seed=4)
    # A read answering a value no put ever wrote cannot be linearized anywhere.
    half = len(ops) // 2
    victim = next(i for i in range(half, len(ops)) if ops[i].kind is OpKind.GET)
    ops[victim] = dataclasses.replace(ops[victim], output=b"never-written")
    result = check(ops, seconds=600)
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    (failure,) = result.failures
    assert failure.key == ops[victim].key
    assert ops[victim] in failure.window
    assert len(failure.window) < 20, result.render()
