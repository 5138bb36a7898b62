"""Operation records of a KV history, and a recorder that timestamps them.

A history is what clients saw: for every operation its invocation time, its
completion time and what it returned. Three outcomes matter to the checker
(Herlihy & Wing 1990; Porcupine's treatment of timeouts):

- ``OK``: the operation took effect exactly once, at some instant between
  invocation and completion, and returned ``output``;
- ``FAILED``: the operation certainly took no effect (the cluster refused it
  before accepting it); the checker drops it;
- ``UNKNOWN``: the client gave up (timeout, lost leadership, a crash). A write
  may take effect at any instant after its invocation, or never; its output is
  unknown. An unknown read has no effect on state, so it constrains nothing.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = ["History", "OpKind", "Operation", "Outcome", "Output"]

Output = bytes | bool | None
"""Output: a get's value (None = missing), a delete's "existed" flag, a put's None."""


class OpKind(enum.Enum):
    """OpKind is the KV operation: put(key, value), get(key) or delete(key)."""

    PUT = "put"
    GET = "get"
    DELETE = "delete"


class Outcome(enum.Enum):
    """Outcome is what the client learned about the operation (module docstring)."""

    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Operation:
    """Operation is one client operation as observed from outside the cluster.

    ``complete`` is the time the answer (or the give-up) arrived; for an
    ``UNKNOWN`` outcome the checker ignores it, since the effect may land later.
    """

    op_id: int
    client: int
    kind: OpKind
    key: str
    value: bytes | None
    output: Output
    invoke: float
    complete: float
    outcome: Outcome

    def describe(self) -> str:
        """describe renders the call and its result, e.g. ``put(k, 'v') -> ok``."""
        match self.kind:
            case OpKind.PUT:
                call = f"put({self.key}, {_show(self.value)})"
            case OpKind.GET:
                call = f"get({self.key})"
            case OpKind.DELETE:
                call = f"delete({self.key})"
        match self.outcome:
            case Outcome.OK:
                result = "ok" if self.kind is OpKind.PUT else _show(self.output)
            case Outcome.FAILED:
                result = "failed"
            case Outcome.UNKNOWN:
                result = "unknown"
        return f"{call} -> {result}"


def _show(value: Output) -> str:
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "existed" if value else "absent"
    text = value.decode("utf-8", "backslashreplace")
    return repr(text if len(text) <= 24 else text[:21] + "...")


@dataclass
class History:
    """History collects operations; ``clock`` defaults to ``time.monotonic``.

    Use ``begin`` just before sending and one of ``ok``/``failed``/``unknown``
    when the client returns, so the recorded interval contains the real one.
    """

    clock: Callable[[], float] = time.monotonic
    operations: list[Operation] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def begin(self, client: int, kind: OpKind, key: str, value: bytes | None = None) -> _Pending:
        """begin stamps the invocation time of an operation about to be sent."""
        return _Pending(self, next(self._ids), client, kind, key, value, self.clock())

    def add(self, op: Operation) -> None:
        """add records a finished operation."""
        self.operations.append(op)

    def __len__(self) -> int:
        return len(self.operations)


@dataclass(frozen=True, slots=True)
class _Pending:
    history: History
    op_id: int
    client: int
    kind: OpKind
    key: str
    value: bytes | None
    invoke: float

    def _finish(self, outcome: Outcome, output: Output) -> Operation:
        op = Operation(
            self.op_id,
            self.client,
            self.kind,
            self.key,
            self.value,
            output,
            self.invoke,
            self.history.clock(),
            outcome,
        )
        self.history.add(op)
        return op

    def ok(self, output: Output = None) -> Operation:
        """ok: the operation took effect and returned ``output``."""
        return self._finish(Outcome.OK, output)

    def failed(self) -> Operation:
        """failed: the operation certainly took no effect."""
        return self._finish(Outcome.FAILED, None)

    def unknown(self) -> Operation:
        """unknown: the operation may or may not take effect, now or later."""
        return self._finish(Outcome.UNKNOWN, None)
