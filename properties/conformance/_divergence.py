"""Divergence reports: where a trace left the spec, and one-line renderings of trace records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Diverged", "Divergence", "describe_event", "plain", "render_state"]

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Divergence:
    """Divergence is the first point where a node's trace leaves what the spec allows."""

    node: str
    path: str
    line: int
    event: int
    input: str
    expected: str
    actual: str
    context: tuple[str, ...] = ()

    def render(self) -> str:
        """render is the report block: where, the input, expected vs actual, context."""
        lines = [
            f"DIVERGENCE on node {self.node}, event #{self.event} ({self.path}:{self.line})",
            f"  input:           {self.input}",
            f"  spec expected:   {self.expected}",
            f"  implementation:  {self.actual}",
        ]
        if self.context:
            lines.append("  events before it:")
            lines.extend(f"    {row}" for row in self.context)
        return "\n".join(lines)


class Diverged(Exception):  # noqa: N818 (internal signal, not an API error)
    """Diverged is raised inside replay with what the spec expected and what the impl did."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(expected)
        self.expected = expected
        self.actual = actual


def describe_event(e: Json) -> str:
    """describe_event is a one-line rendering of a trace event's input."""
    kind = e.get("i", "?")
    if kind == "recv":
        m = e["m"]
        return f"recv {plain(m)}"
    if kind == "propose":
        return f"propose {len(e.get('data', []))} command(s)"
    if kind == "read":
        return f"read #{e.get('id')}"
    if kind == "member":
        addr = f" at {e['addr']}" if e.get("addr") else ""
        return f"member {e.get('op')} {e.get('node')}{addr}"
    if kind == "transfer":
        return f"transfer to {e.get('to')}"
    if kind in ("persisted", "applied", "snapshot"):
        return f"{kind} index={e.get('index')}"
    if kind == "start":
        hs = e.get("hs")
        return f"start (loaded hs={hs}, base={e.get('base')}, {len(e.get('ents', []))} entries)"
    return str(kind)


def plain(m: Json) -> str:
    """plain renders a message record in one line, entries by their terms."""
    ents = m.get("ents")
    rest = {k: v for k, v in m.items() if k not in ("k", "from", "to", "term", "ents")}
    body = " ".join(f"{k}={v}" for k, v in rest.items())
    if ents is not None:
        body += f" ents=[{','.join(str(e[1]) for e in ents)}]"
    return f"{m.get('k')} {m.get('from')}->{m.get('to')} t{m.get('term')} {body}".rstrip()


def render_state(s: list[Any]) -> str:
    """render_state renders a recorded state like properties.describe_node does."""
    return (
        f"{s[2]} t{s[0]} v{s[1] if s[1] is not None else '-'} lead={s[3]} c{s[4]} "
        f"last=({s[6]},{s[7]}) dur={s[9] if len(s) > 9 else '?'}"
    )
