"""The linearizability checker on known-linearizable and known-non-linearizable histories.

Reference: Herlihy & Wing 1990 (linearizability, locality); Raft thesis section 6.4
(linearizable reads; a deposed leader must not serve stale reads) and section 6.3
(at-most-once client semantics: an unanswered write may still take effect).
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from properties.linearizability import (
    ANY,
    Operation,
    OpKind,
    Outcome,
    Verdict,
    check,
    relevant,
    search_key,
    step_model,
)
from properties.linearizability._history import Output

_ids = itertools.count()


def op(
    kind: str,
    key: str,
    t0: float,
    t1: float,
    *,
    value: bytes | None = None,
    out: Output = None,
    outcome: Outcome = Outcome.OK,
    client: int = 0,
) -> Operation:
    return Operation(next(_ids), client, OpKind(kind), key, value, out, t0, t1, outcome)


def put(key: str, value: bytes, t0: float, t1: float, **kw: object) -> Operation:
    return op("put", key, t0, t1, value=value, **kw)  # type: ignore[arg-type]


def get(key: str, out: bytes | None, t0: float, t1: float, **kw: object) -> Operation:
    return op("get", key, t0, t1, out=out, **kw)  # type: ignore[arg-type]


def delete(key: str, existed: bool, t0: float, t1: float, **kw: object) -> Operation:
    return op("delete", key, t0, t1, out=existed, **kw)  # type: ignore[arg-type]


def test_sequential_history_is_linearizable_and_witness_respects_order() -> None:
    h = [
        put("x", b"1", 0, 1),
        get("x", b"1", 2, 3),
        delete("x", True, 4, 5),
        get("x", None, 6, 7),
        delete("x", False, 8, 9),
    ]
    res = check(h)
    assert res.verdict is Verdict.LINEARIZABLE
    assert res.keys[0].result.order == tuple(o.op_id for o in h)


def test_concurrent_read_may_see_either_value() -> None:
    for seen in (b"1", b"2"):
        h = [put("x", b"1", 0, 1), put("x", b"2", 2, 5), get("x", seen, 3, 4)]
        assert check(h).verdict is Verdict.LINEARIZABLE


def test_read_after_acknowledged_write_must_see_it() -> None:
    h = [put("x", b"1", 0, 1), get("x", None, 2, 3)]
    res = check(h)
    assert res.verdict is Verdict.NOT_LINEARIZABLE
    assert "NOT linearizable" in res.render()


def test_stale_read_from_partitioned_old_leader_is_caught_with_a_short_window() -> None:
    """An old leader cut off from the majority answers a read from its local state.

    Client 0 writes x=1 through the old leader; the majority elects a new leader
    and client 1 writes x=2 there (acknowledged); then client 2 reads x from the
    old leader, which still says 1. Reference: thesis section 6.4.
    """
    noise = [put(f"k{i}", b"v", 0.1 * i, 0.1 * i + 0.05, client=3) for i in range(20)]
    older = [put("x", b"0", 0.0, 0.2, client=0), get("x", b"0", 0.3, 0.4, client=0)]
    h = [
        *noise,
        *older,
        put("x", b"1", 1.0, 1.1, client=0),
        get("x", b"1", 1.2, 1.3, client=1),
        put("x", b"2", 2.0, 2.5, client=1),
        get("x", b"1", 3.0, 3.1, client=2),  # served by the deposed leader
    ]
    res = check(h)
    assert res.verdict is Verdict.NOT_LINEARIZABLE
    [failure] = res.failures
    assert failure.key == "x"
    window = failure.window
    kinds = [(o.kind, o.value or o.output) for o in window]
    assert (OpKind.PUT, b"2") in kinds and (OpKind.GET, b"1") in kinds
    assert len(window) <= 3, window
    table = res.render()
    assert "get(x) -> '1'" in table and "put(x, '2') -> ok" in table


def test_unknown_write_may_take_effect_late() -> None:
    h = [
        put("x", b"1", 0, 1, outcome=Outcome.UNKNOWN),
        get("x", None, 2, 3),
        get("x", b"1", 10, 11),
    ]
    assert check(h).verdict is Verdict.LINEARIZABLE


def test_unknown_write_may_never_take_effect() -> None:
    h = [put("x", b"1", 0, 1, outcome=Outcome.UNKNOWN), get("x", None, 2, 3)]
    assert check(h).verdict is Verdict.LINEARIZABLE


def test_unknown_write_takes_effect_at_most_once() -> None:
    h = [
        put("x", b"1", 0, 1, outcome=Outcome.UNKNOWN),
        get("x", b"1", 2, 3),
        put("x", b"2", 4, 5),
        get("x", b"1", 6, 7),
    ]
    assert check(h).verdict is Verdict.NOT_LINEARIZABLE


def test_unknown_write_cannot_take_effect_before_it_was_invoked() -> None:
    h = [get("x", b"1", 0, 1), put("x", b"1", 2, 3, outcome=Outcome.UNKNOWN)]
    assert check(h).verdict is Verdict.NOT_LINEARIZABLE


def test_failed_write_never_takes_effect() -> None:
    h = [put("x", b"1", 0, 1, outcome=Outcome.FAILED), get("x", b"1", 2, 3)]
    assert check(h).verdict is Verdict.NOT_LINEARIZABLE
    assert relevant(h) == [h[1]]


def test_delete_reports_whether_the_key_existed() -> None:
    assert check([delete("x", True, 0, 1)]).verdict is Verdict.NOT_LINEARIZABLE
    ok = [put("x", b"1", 0, 1), delete("x", True, 2, 3), delete("x", False, 4, 5)]
    assert check(ok).verdict is Verdict.LINEARIZABLE


def test_keys_are_checked_independently() -> None:
    h = [put("a", b"1", 0, 1), put("b", b"1", 0, 1), get("b", b"1", 2, 3), get("a", None, 2, 3)]
    res = check(h)
    assert res.verdict is Verdict.NOT_LINEARIZABLE
    assert [k.key for k in res.failures] == ["a"]


def test_step_bound_gives_unknown_not_a_guess() -> None:
    # Many fully concurrent writes and one impossible read: the search must explore a lot.
    h = [put("x", str(i).encode(), 0, 100) for i in range(14)]
    h.append(get("x", b"nope", 50, 60))
    res = check(h, max_steps_per_key=50)
    assert res.verdict is Verdict.UNKNOWN
    assert check(h).verdict is Verdict.NOT_LINEARIZABLE


def test_any_start_state_accepts_first_read() -> None:
    assert step_model(ANY, get("x", b"7", 0, 1)) == b"7"
    h = [get("x", b"7", 0, 1), get("x", b"7", 2, 3)]
    assert search_key(h, initial=ANY).verdict is Verdict.LINEARIZABLE
    h2 = [get("x", b"7", 0, 1), get("x", b"8", 2, 3)]
    assert search_key(h2, initial=ANY).verdict is Verdict.NOT_LINEARIZABLE


# ---------------------------------------------------------------- against a brute-force oracle


def _brute_force(ops: list[Operation]) -> bool:
    """Try every order of every subset that contains all known operations."""
    known = [o for o in ops if o.outcome is Outcome.OK]
    optional = [o for o in ops if o.outcome is Outcome.UNKNOWN]
    for r in range(len(optional) + 1):
        for chosen in itertools.combinations(optional, r):
            members = known + list(chosen)
            for perm in itertools.permutations(members):
                if _legal(perm):
                    return True
    return False


def _legal(order: tuple[Operation, ...]) -> bool:
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            # b is placed after a: illegal if b completed (known) before a was invoked
            if b.outcome is Outcome.OK and b.complete < a.invoke:
                return False
    state: object = None
    for o in order:
        new = step_model(state, o)  # type: ignore[arg-type]
        if type(new).__name__ == "_Reject":
            return False
        state = new
    return True


_values = st.sampled_from([b"a", b"b", None])


@st.composite
def _histories(draw: st.DrawFn) -> list[Operation]:
    n = draw(st.integers(1, 5))
    out = []
    for _ in range(n):
        t0 = draw(st.integers(0, 8))
        t1 = t0 + draw(st.integers(0, 4))
        kind = draw(st.sampled_from(["put", "get", "delete"]))
        outcome = draw(st.sampled_from([Outcome.OK, Outcome.OK, Outcome.UNKNOWN]))
        if kind == "put":
            value = draw(st.sampled_from([b"a", b"b"]))
            out.append(put("x", value, t0, t1, outcome=outcome))
        elif kind == "get":
            out.append(get("x", draw(_values), t0, t1))
        else:
            out.append(delete("x", draw(st.booleans()), t0, t1, outcome=outcome))
    return out


@settings(max_examples=400, deadline=None)
@given(_histories())
def test_search_agrees_with_brute_force(ops: list[Operation]) -> None:
    expected = _brute_force(relevant(ops))
    got = check(ops).verdict
    assert got is (Verdict.LINEARIZABLE if expected else Verdict.NOT_LINEARIZABLE), ops
