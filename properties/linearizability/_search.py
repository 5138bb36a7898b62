"""Wing-Gong search with memoisation (Lowe's "just-in-time" variant), for one key.

The history of one key becomes a doubly linked list of call and return events
in time order. The search walks it: at a call it tries to linearize that
operation now (apply it to the model state); at the return of an operation
not yet linearized it must backtrack, since that operation's instant has
passed. Memoising the pairs (set of linearized operations, model state)
already explored is what makes the search practical (Lowe 2017, "Testing for
linearizability"; Porcupine does the same).

An operation with an unknown outcome returns at +infinity: it may be
linearized any time after its call, and reaching its return means every
operation with a known outcome has been linearized, so the rest may be
"never applied" and the search succeeds.

Calls sort before returns at equal timestamps, so operations that touch the
same instant count as concurrent (the permissive reading; it never invents a
violation from clock granularity).
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ._history import Operation, OpKind, Outcome

__all__ = ["ANY", "SearchResult", "Verdict", "search_key", "step_model"]


class _Any:
    """The "any value" state: used when a window of history starts mid-run."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()
"""ANY is a model state that stands for every possible value of the key."""


class _Reject:
    """The model's answer to an operation that cannot happen in the current state."""


State = bytes | None | _Any
_REJECT = _Reject()


class Verdict(enum.Enum):
    """Verdict of a check; ``UNKNOWN`` means the step or time bound ran out first."""

    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class SearchResult:
    """SearchResult of one key: the verdict, steps used, and a witness order when found."""

    verdict: Verdict
    steps: int
    order: tuple[int, ...] = ()


def step_model(state: State, op: Operation) -> State | _Reject:
    """step_model applies ``op`` to a key's state; returns the new state or a rejection.

    The KV model: put sets the value, get must return the current value (None
    when missing), delete removes the key and must report whether it existed.
    Unknown outcomes constrain nothing but the state change.
    """
    known = op.outcome is Outcome.OK
    match op.kind:
        case OpKind.PUT:
            return op.value
        case OpKind.GET:
            if isinstance(op.output, bool):
                return _REJECT  # a get returns a value, never a flag
            if isinstance(state, _Any):
                return op.output if known else state
            if known and op.output != state:
                return _REJECT
            return state
        case OpKind.DELETE:
            if known and not isinstance(state, _Any) and op.output != (state is not None):
                return _REJECT
            return None


def search_key(
    ops: Sequence[Operation],
    *,
    initial: State = None,
    max_steps: int = 2_000_000,
    deadline: float = math.inf,
) -> SearchResult:
    """search_key decides whether the operations on ONE key are linearizable.

    ``ops`` must not contain FAILED operations, nor reads with unknown outcome
    (they have no effect; ``check`` drops them). ``deadline`` is a
    ``time.monotonic()`` instant; past it, or past ``max_steps`` iterations,
    the verdict is UNKNOWN.
    """
    n = len(ops)
    if n == 0:
        return SearchResult(Verdict.LINEARIZABLE, 0)
    events: list[tuple[float, int, int]] = []  # (time, 0 call / 1 return, op position)
    for i, op in enumerate(ops):
        events.append((op.invoke, 0, i))
        end = math.inf if op.outcome is Outcome.UNKNOWN else op.complete
        events.append((end, 1, i))
    events.sort()
    # Linked list over event slots 1..2n; slot 0 is the head sentinel.
    size = 2 * n + 1
    nxt = list(range(1, size + 1))
    nxt[-1] = 0
    prv = list(range(-1, size - 1))
    is_call = [False] * size
    op_of = [0] * size
    ret_slot = [0] * n
    for slot, (_, kind, i) in enumerate(events, start=1):
        is_call[slot] = kind == 0
        op_of[slot] = i
        if kind == 1:
            ret_slot[i] = slot
    nxt[size - 1] = 0  # 0 = end of list

    def lift(call: int) -> None:
        ret = ret_slot[op_of[call]]
        for s in (call, ret):
            p, q = prv[s], nxt[s]
            nxt[p] = q
            if q:
                prv[q] = p

    def unlift(call: int) -> None:
        ret = ret_slot[op_of[call]]
        for s in (ret, call):
            p, q = prv[s], nxt[s]
            nxt[p] = s
            if q:
                prv[q] = s

    cache: set[tuple[int, object]] = set()
    stack: list[tuple[int, State]] = []
    linearized = 0
    state: State = initial
    entry = nxt[0]
    steps = 0
    check_every = 4096
    while entry:
        steps += 1
        if steps > max_steps or (steps % check_every == 0 and time.monotonic() > deadline):
            return SearchResult(Verdict.UNKNOWN, steps)
        i = op_of[entry]
        if is_call[entry]:
            new_state = step_model(state, ops[i])
            if not isinstance(new_state, _Reject):
                marked = linearized | (1 << i)
                key = (marked, new_state)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state = new_state
                    linearized = marked
                    lift(entry)
                    entry = nxt[0]
                    continue
            entry = nxt[entry]
            continue
        if ops[i].outcome is Outcome.UNKNOWN:
            break  # every known operation is linearized; the rest may never apply
        if not stack:
            return SearchResult(Verdict.NOT_LINEARIZABLE, steps)
        entry, state = stack.pop()
        linearized &= ~(1 << op_of[entry])
        unlift(entry)
        entry = nxt[entry]
    order = tuple(ops[op_of[slot]].op_id for slot, _ in stack)
    return SearchResult(Verdict.LINEARIZABLE, steps, order)
