"""Per-node replay: feed one node's recorded inputs to `spec.step` and demand what it recorded.

Each event's input becomes zero or more spec inputs (the mapping below and in
docs/trace-format.md); after them the spec node's state must equal the recorded one (term,
vote, role, leader, commit, last log index and term, log and commit digests) and the spec's
outputs must equal the recorded outputs.

The mapping, in brief:

* ``timeout`` -> ElectionTimeout; ``checkquorum`` -> CheckQuorum; ``recv`` -> Receive;
  ``propose`` -> one ClientRequest per command; ``read`` -> ReadRequest.
* Every AppendRequest the implementation sent (from any input: a heartbeat, a proposal, an
  append reply, an election won, a read round) -> SendAppend(peer, prev_index, count), so
  batching, pipelining and heartbeats are explicit spec steps; the spec's message must equal
  the recorded one. ``heartbeat`` has no spec input of its own.
* ``persisted``/``advance``/``ready``/``applied``/``snapshot`` (local compaction) and
  ``transfer`` have no spec input; their effect on recorded state is still checked.
* Leader durability: the spec leader's appends are durable within the step; the impl leader
  counts itself only up to its durable index (``persisted``). So on a leader the commit
  index is recomputed with the spec's rule (quorum of match indexes, entry of the current
  term, never backwards) but with the leader's own match = its recorded durable index, and
  reads are released with the spec's rule against that commit index.
* Relaxations (each counted in the result): an impl append rejection's hint is checked for
  being a real (index, term) of the spec follower's log, not for equality with the spec's
  hint; an impl (pre)candidate whose rejections rule out a quorum becomes follower at once
  (the spec stays in its role, inert, until the next timeout); the impl leader's first
  check-quorum after its election counts every follower as active (a grace period the
  spec lacks); a node that installs a snapshot, starts from one the checker never saw, or
  obeys TimeoutNow is checked globally only from there on.
"""

from __future__ import annotations

import base64
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Any

from properties._report import describe_message
from properties.conformance._mapping import (
    IdMap,
    LogDigest,
    MappingError,
    spec_entries,
    spec_message,
)
from spec import (
    AppendResponse,
    CheckQuorum,
    ClientRequest,
    Durable,
    ElectionTimeout,
    Input,
    Message,
    NodeState,
    PendingRead,
    ReadAnswer,
    ReadRequest,
    Receive,
    Restart,
    Role,
    SendAppend,
    confirmed_ctx,
    initial_node,
    quorum_match,
    quorum_size,
    step,
    term_at,
)

__all__ = ["Divergence", "NodeReplay"]

Json = dict[str, Any]

_ROLE = {Role.FOLLOWER: "F", Role.PRECANDIDATE: "P", Role.CANDIDATE: "C", Role.LEADER: "L"}
_FIELDS = (
    "term",
    "vote",
    "role",
    "leader",
    "commit",
    "commit_digest",
    "last_index",
    "last_term",
    "log_digest",
)


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


class _Diverged(Exception):  # noqa: N818 (internal signal, not an API error)
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(expected)
        self.expected = expected
        self.actual = actual


def describe_event(e: Json) -> str:
    """describe_event is a one-line rendering of a trace event's input."""
    kind = e.get("i", "?")
    if kind == "recv":
        m = e["m"]
        return f"recv {_plain(m)}"
    if kind == "propose":
        return f"propose {len(e.get('data', []))} command(s)"
    if kind == "read":
        return f"read #{e.get('id')}"
    if kind in ("persisted", "applied", "snapshot"):
        return f"{kind} index={e.get('index')}"
    if kind == "start":
        hs = e.get("hs")
        return f"start (loaded hs={hs}, base={e.get('base')}, {len(e.get('ents', []))} entries)"
    return str(kind)


def _plain(m: Json) -> str:
    ents = m.get("ents")
    rest = {k: v for k, v in m.items() if k not in ("k", "from", "to", "term", "ents")}
    body = " ".join(f"{k}={v}" for k, v in rest.items())
    if ents is not None:
        body += f" ents=[{','.join(str(e[1]) for e in ents)}]"
    return f"{m.get('k')} {m.get('from')}->{m.get('to')} t{m.get('term')} {body}".rstrip()


def _render_state(s: list[Any]) -> str:
    return (
        f"{s[2]} t{s[0]} v{s[1] if s[1] is not None else '-'} lead={s[3]} c{s[4]} "
        f"last=({s[6]},{s[7]}) dur={s[9] if len(s) > 9 else '?'}"
    )


@dataclass(slots=True)
class _Disk:
    """_Disk tracks what the impl made durable, from its ready/persisted/advance events."""

    hs: tuple[int, str | None, int] = (0, None, 0)
    last: int = 0
    handed_hs: tuple[int, str | None, int] = (0, None, 0)
    handed_last: int = 0
    persisted: bool = True  # the handed-out batch was reported durable


@dataclass(slots=True)
class ReplayStats:
    """ReplayStats counts what was checked, and how often each relaxation was used."""

    events: int = 0
    spec_steps: int = 0
    relaxations: Counter[str] = field(default_factory=Counter)


class NodeReplay:
    """NodeReplay checks one node's events in order; see the module doc for the mapping."""

    def __init__(self, name: str, voters: list[str], path: str) -> None:
        self.ids = IdMap.of(voters)
        self.name = name
        self.me = self.ids.to_spec(name)
        self.voters = tuple(range(len(self.ids.names)))
        self.path = path
        self.state: NodeState | None = None
        self.active = True
        self.global_only: str | None = None  # why per-node replay stopped, if it did
        self.digests = LogDigest()
        self.digest_comparable = True
        self.history: deque[Json] = deque(maxlen=6)
        self.stats = ReplayStats()
        self.disk = _Disk()
        self.batch: list[Json] = []
        self.leader_checks = 0
        self.recorded: list[Any] | None = None
        self.segment = 0

    # -- driver ------------------------------------------------------------------------
    def process(self, e: Json, line: int) -> Divergence | None:
        """process checks one event; a Divergence stops this node's replay."""
        self.stats.events += 1
        try:
            self._impl_contract(e)
            if e["i"] == "start":
                self._start(e)
            elif self.active:
                self._dispatch(e)
        except _Diverged as div:
            return Divergence(
                self.name,
                self.path,
                line,
                int(e.get("n", 0)),
                describe_event(e),
                div.expected,
                div.actual,
                self._context(),
            )
        except (MappingError, KeyError, TypeError, ValueError) as exc:
            return Divergence(
                self.name,
                self.path,
                line,
                int(e.get("n", 0)),
                describe_event(e),
                "a well-formed event",
                f"malformed event: {type(exc).__name__}: {exc}",
                self._context(),
            )
        finally:
            self.recorded = e.get("s", self.recorded)
        self.history.append(e)
        return None

    def _context(self) -> tuple[str, ...]:
        return tuple(
            f"#{e.get('n')}: {describe_event(e)} -> {_render_state(e['s'])}" for e in self.history
        )

    def relax(self, reason: str) -> None:
        """relax stops per-node replay here: the rest of this segment is checked globally."""
        self.active = False
        self.global_only = reason
        self.stats.relaxations["global only: " + reason] += 1

    def _dispatch(self, e: Json) -> None:
        kind = e["i"]
        match kind:
            case "timeout":
                self._spec_step(e, [ElectionTimeout()])
            case "checkquorum":
                self._check_quorum(e)
            case "recv":
                self._recv(e)
            case "propose":
                inputs: list[Input] = [ClientRequest(_b64(d)) for d in e["data"]]
                self._spec_step(e, inputs, refusable=True)
            case "read":
                self._spec_step(e, [ReadRequest(e["id"])], refusable=True)
            case "heartbeat" | "transfer" | "persisted" | "advance" | "ready" | "snapshot":
                self._spec_step(e, [])
            case "applied":
                if e["index"] > e["s"][4]:
                    raise _Diverged(
                        f"applied index <= commit index {e['s'][4]}", f"applied {e['index']}"
                    )
                self._spec_step(e, [])
            case _:
                raise MappingError(f"unknown event kind {kind!r}")

    # -- the impl's own contract (checked even when replay is off) -----------------------
    def _impl_contract(self, e: Json) -> None:
        """_impl_contract checks the Ready discipline: persist before the messages leave."""
        kind = e["i"]
        disk = self.disk
        if kind == "ready":
            batch, self.batch = self.batch, []
            if len(batch) != e["msgs"]:
                raise _Diverged(
                    f"a Ready carrying the {len(batch)} messages recorded since the last one",
                    f"a Ready with {e['msgs']} messages",
                )
            hs = e.get("hs")
            new_hs = (hs[0], hs[1], hs[2]) if hs is not None else disk.handed_hs
            ents = e.get("ents")
            new_last = ents[1] if ents is not None else disk.handed_last
            if "snap" in e:
                new_last = max(new_last, e["snap"][0])
            disk.handed_hs, disk.handed_last = new_hs, new_last
            disk.persisted = "snap" in e  # see the snapshot install relaxation below
            for m in batch:
                self._durable_for(m, new_hs, new_last)
        elif kind == "persisted":
            if e["index"] > disk.handed_last:
                raise _Diverged(
                    f"persisted index <= {disk.handed_last} (the last entry handed to storage)",
                    f"persisted({e['index']})",
                )
            disk.persisted = True
        elif kind == "advance":
            disk.hs, disk.last, disk.persisted = disk.handed_hs, disk.handed_last, True
        elif kind == "recv" and e["m"]["k"] == "snap" and "err" not in e:
            # the impl counts an installed snapshot durable at once; its next Ready writes it
            self.stats.relaxations["snapshot install counts as durable before its Ready"] += 1
            disk.handed_last = max(disk.handed_last, e["m"]["si"])
            disk.persisted = True
        if "out" in e:
            self.batch.extend(e["out"])
        durable = e["s"][9]
        bound = disk.handed_last if disk.persisted else disk.last
        if durable > max(bound, disk.last):
            raise _Diverged(
                f"durable index <= {max(bound, disk.last)} (what storage was given)",
                f"durable index {durable}",
            )

    def _durable_for(self, m: Json, hs: tuple[int, str | None, int], last: int) -> None:
        """_durable_for: the persist-before-send rule of properties.persist_before_send."""
        kind = m["k"]
        need: tuple[int, str] | None = None
        if kind == "vreq" and not m["pre"]:
            need = (m["term"], m["from"])
        elif kind == "vresp" and m["ok"] and not m["pre"]:
            need = (m["rt"], m["to"])
        elif (kind == "appr" and m["ok"]) and (
            hs[0] < m["term"] or (hs[0] == m["term"] and last < m["mi"])
        ):
            raise _Diverged(
                f"index {m['mi']} durable before acknowledging it",
                f"acknowledged {_plain(m)} with storage at term {hs[0]}, last index {last}",
            )
        if need is not None and (hs[0] < need[0] or (hs[0] == need[0] and hs[1] != need[1])):
            raise _Diverged(
                f"term {need[0]} and vote {need[1]} durable before {_plain(m)} leaves",
                f"storage holds term {hs[0]}, vote {hs[1]}",
            )

    # -- start / restart -----------------------------------------------------------------
    def _start(self, e: Json) -> None:
        term, vote, commit = e["hs"]
        base_index, base_term = e["base"]
        disk = self.disk
        if self.segment > 0:
            loaded_hs = (term, vote, commit)
            if loaded_hs not in (disk.hs, disk.handed_hs):
                raise _Diverged(
                    f"restart loads the hard state last made durable {list(disk.hs)}"
                    + (f" (or {list(disk.handed_hs)})" if disk.handed_hs != disk.hs else ""),
                    f"loaded {list(loaded_hs)}",
                )
            loaded_last = base_index + len(e["ents"])
            if loaded_last not in (disk.last, disk.handed_last) and base_index == 0:
                raise _Diverged(
                    f"restart loads the log durable up to {disk.last}",
                    f"loaded a log up to {loaded_last}",
                )
        self.segment += 1
        entries = spec_entries(e["ents"], base_index + 1)
        prefix: tuple[Any, ...] = ()
        previous = self.state
        if base_index > 0:
            if (
                previous is not None
                and self.active
                and len(previous.log) >= base_index
                and term_at(previous.log, base_index) == base_term
            ):
                prefix = previous.log[:base_index]
            else:
                self.relax("restart from a snapshot the checker never saw built")
                return
        if previous is not None and self.active:
            # committed entries never change, across a restart too (State Machine Safety)
            for index, entry in enumerate(entries, start=base_index + 1):
                if index > min(previous.commit, len(previous.log)):
                    break
                if previous.log[index - 1] != entry:
                    raise _Diverged(
                        f"restart loads committed entry {index} unchanged",
                        f"loaded a different entry at index {index}",
                    )
        self.active = True
        self.global_only = None
        self.digest_comparable = base_index == 0  # the impl chain restarts at a base
        disk.hs = disk.handed_hs = (term, vote, commit)
        disk.last = disk.handed_last = base_index + len(entries)
        disk.persisted = True
        self.batch = []
        self.leader_checks = 0
        durable = Durable(term, self.ids.opt_to_spec(vote), prefix + entries, commit)
        node = previous or initial_node(self.me, self.voters)
        self.state = step(node, Restart(durable)).state
        self.stats.spec_steps += 1
        self._compare_state(e, self.state)

    # -- inputs ----------------------------------------------------------------------------
    def _check_quorum(self, e: Json) -> None:
        pre = self.state
        assert pre is not None
        result = step(pre, CheckQuorum())
        post = result.state
        if (
            pre.role is Role.LEADER
            and post.role is not Role.LEADER
            and e["s"][2] == "L"
            and self.leader_checks == 0
        ):
            # impl grace period: a new leader counts every follower active at its first check
            self.stats.relaxations["first check-quorum after election: grace period"] += 1
            post = replace(pre, recent_active=frozenset({pre.id}))
        if post.role is Role.LEADER:
            self.leader_checks += 1
        self._finish(e, pre, post, (), ())

    def _recv(self, e: Json) -> None:
        m = e["m"]
        kind = m["k"]
        if "err" in e or "cl" in m:
            # refused by the impl's validation: checked for "nothing changed" only
            self.stats.relaxations["refused message: not stepped, must change nothing"] += 1
            self._spec_step(e, [])
            return
        if kind == "snap":
            self.relax("InstallSnapshot is not in the spec")
            return
        if kind == "tnow":
            if e.get("out") or e["s"] != self.recorded:
                self.relax("TimeoutNow (leadership transfer) is not in the spec")
                return
            self._spec_step(e, [])
            return
        self._spec_step(e, [Receive(spec_message(m, self.ids))])

    def _spec_step(self, e: Json, inputs: list[Input], refusable: bool = False) -> None:
        pre = self.state
        assert pre is not None
        quiet = not ("out" in e or "reads" in e or "abort" in e)
        if not inputs and quiet and e["s"] == self.recorded:
            return  # nothing consumed, nothing produced, state as recorded before: verified
        state = pre
        messages: list[Message] = []
        reads: list[ReadAnswer] = []
        refused = "err" in e
        for event in inputs:
            result = step(state, event)
            self.stats.spec_steps += 1
            if result.rejected is not None:
                if refusable and refused:
                    continue
                if isinstance(event, Receive):
                    state = result.state  # a disabled receive changes nothing, like a drop
                    continue
                raise _Diverged(f"input refused ({result.rejected})", "input accepted")
            if refused and refusable:
                raise _Diverged("input accepted", f"input refused ({e['err']})")
            state = result.state
            messages.extend(result.messages)
            reads.extend(result.reads)
        self._finish(e, pre, state, tuple(messages), tuple(reads))

    # -- after the spec steps: leader commit, appends, outputs, state --------------------
    def _finish(
        self,
        e: Json,
        pre: NodeState,
        post: NodeState,
        spec_msgs: tuple[Message, ...],
        spec_reads: tuple[ReadAnswer, ...],
    ) -> None:
        s = e["s"]
        if post.role is Role.LEADER and pre.role is not Role.LEADER:
            self.leader_checks = 0
        if post.role is Role.LEADER:
            post, spec_reads = self._leader_commit(pre, post, s[9], spec_reads, e)
        # (pre)candidate that gave up a lost election
        if (
            s[2] == "F"
            and post.role in (Role.PRECANDIDATE, Role.CANDIDATE)
            and len(post.voters) - len(post.rejections) < quorum_size(len(post.voters))
        ):
            self.stats.relaxations["lost (pre)election: impl becomes follower at once"] += 1
            post = replace(
                post,
                role=Role.FOLLOWER,
                leader=None,
                prevotes=frozenset(),
                votes=frozenset(),
                rejections=frozenset(),
            )
        # aborted reads: exactly the spec reads dropped by stepping down
        if pre.role is Role.LEADER and post.role is not Role.LEADER:
            dropped = sorted(r.read_id for r in pre.pending_reads)
            if sorted(e.get("abort", [])) != dropped:
                raise _Diverged(
                    f"pending reads {dropped} aborted on stepping down",
                    f"aborted {sorted(e.get('abort', []))}",
                )
        elif e.get("abort"):
            raise _Diverged("no read aborted", f"aborted {e['abort']}")
        post = self._compare_messages(e, post, spec_msgs)
        impl_reads = sorted((r[0], r[1]) for r in e.get("reads", []))
        spec_answered = sorted((r.read_id, r.read_index) for r in spec_reads)
        if impl_reads != spec_answered:
            raise _Diverged(f"reads released {spec_answered}", f"released {impl_reads}")
        self._compare_state(e, post)
        self.state = post

    def _leader_commit(
        self,
        pre: NodeState,
        post: NodeState,
        durable: int,
        spec_reads: tuple[ReadAnswer, ...],
        e: Json,
    ) -> tuple[NodeState, tuple[ReadAnswer, ...]]:
        """_leader_commit: the spec's commit rule with the leader's match = durable index."""
        matches = sorted(durable if p == post.id else post.match_index[p] for p in post.voters)
        candidate = matches[len(matches) - quorum_size(len(matches))]
        floor = pre.commit if pre.commit <= post.commit else post.commit
        commit = floor
        if candidate > floor and term_at(post.log, candidate) == post.term:
            commit = candidate
        if commit == post.commit and e["i"] not in ("persisted", "advance"):
            return post, spec_reads
        whole = quorum_match(post)  # the spec's own rule: the leader's whole log counts
        most = whole if whole > post.commit and term_at(post.log, whole) == post.term else floor
        most = max(most, post.commit)
        if commit > most:
            raise _Diverged(
                f"leader commit at most {most} (spec, counting the whole leader log)",
                f"commit {commit} from durable index {durable}",
            )
        if commit < most:
            self.stats.relaxations["leader commit waits for its own durability"] += 1
        # put back reads the spec released against its (earlier) commit, release by the rule
        pending = list(post.pending_reads)
        known = {r.read_id: r for r in pre.pending_reads}
        for answer in spec_reads:
            read = known.get(answer.read_id)
            if read is None:
                read = PendingRead(answer.read_id, pre.commit, post.read_seq)
            pending.append(read)
        post = replace(post, commit=commit, pending_reads=tuple(sorted(pending, key=_ctx)))
        if not post.pending_reads or post.commit < post.sentinel:
            return post, ()
        confirmed = confirmed_ctx(post)
        ready = tuple(r for r in post.pending_reads if r.ctx <= confirmed)
        waiting = tuple(r for r in post.pending_reads if r.ctx > confirmed)
        answers = tuple(ReadAnswer(r.read_id, max(r.read_index, post.sentinel)) for r in ready)
        return replace(post, pending_reads=waiting), answers

    def _compare_messages(
        self, e: Json, state: NodeState, spec_msgs: tuple[Message, ...]
    ) -> NodeState:
        impl_other: list[Json] = []
        impl_replies: list[Json] = []
        for record in e.get("out", ()):
            kind = record["k"]
            if kind == "app":
                state = self._send_append(state, record)
            elif kind in ("snap", "tnow"):
                self.stats.relaxations[f"{kind} sent: not in the spec, not compared"] += 1
            elif kind == "appr":
                impl_replies.append(record)
            elif kind == "snapr":
                self.relax("answered InstallSnapshot, which is not in the spec")
            else:
                impl_other.append(record)
        if not spec_msgs and not impl_other and not impl_replies:
            return state
        spec_replies = [m for m in spec_msgs if isinstance(m, AppendResponse)]
        spec_other = Counter[Message](m for m in spec_msgs if not isinstance(m, AppendResponse))
        got = Counter(spec_message(r, self.ids) for r in impl_other)
        if got != spec_other:
            raise _Diverged(_describe(spec_other), _describe(got))
        if len(spec_replies) != len(impl_replies):
            raise _Diverged(
                _describe(Counter[Message](spec_replies)),
                "; ".join(_plain(r) for r in impl_replies) or "no append reply",
            )
        for expected, record in zip(spec_replies, impl_replies, strict=True):
            self._compare_reply(e, state, expected, record)
        return state

    def _send_append(self, state: NodeState, record: Json) -> NodeState:
        message = spec_message(record, self.ids)
        event = SendAppend(message.dst, record["pi"], len(record["ents"]))
        result = step(state, event)
        self.stats.spec_steps += 1
        if result.rejected is not None:
            raise _Diverged(f"no such append ({result.rejected})", f"sent {_plain(record)}")
        if result.messages != (message,):
            raise _Diverged(_describe(Counter(result.messages)), f"sent {_plain(record)}")
        return result.state

    def _compare_reply(
        self, e: Json, state: NodeState, expected: AppendResponse, record: Json
    ) -> None:
        actual = spec_message(record, self.ids)
        assert isinstance(actual, AppendResponse)
        same = (
            actual.src == expected.src
            and actual.dst == expected.dst
            and actual.term == expected.term
            and actual.success == expected.success
            and actual.read_ctx == expected.read_ctx
        )
        if same and expected.success:
            same = actual.match_index == expected.match_index
        elif same:
            request = e["m"]
            hint, hint_term = record["hi"], record["ht"]
            self.stats.relaxations["append rejection hint: checked against the log"] += 1
            same = record["mi"] == request["pi"] and (
                (hint == 0 and hint_term == 0)
                or (hint < request["pi"] and term_at(state.log, hint) == hint_term)
                or (hint == len(state.log) and hint_term == term_at(state.log, hint))
            )
        if not same:
            raise _Diverged(describe_message(expected), _plain(record))

    def _compare_state(self, e: Json, state: NodeState) -> None:
        s = e["s"]
        digests = self.digests
        digests.update(state.log)
        mine = [
            state.term,
            self.ids.to_impl(state.voted_for),
            _ROLE[state.role],
            self.ids.to_impl(state.leader),
            state.commit,
            digests.at(state.commit) if self.digest_comparable else s[5],
            len(state.log),
            state.log[-1].term if state.log else 0,
            digests.at(len(state.log)) if self.digest_comparable else s[8],
        ]
        if mine != s[:9]:
            diff = [
                f"{name}={want!r}"
                for name, want, got in zip(_FIELDS, mine, s, strict=False)
                if want != got
            ]
            got = [
                f"{name}={have!r}"
                for name, want, have in zip(_FIELDS, mine, s, strict=False)
                if want != have
            ]
            raise _Diverged("state " + ", ".join(diff), "state " + ", ".join(got))


def _ctx(read: PendingRead) -> int:
    return read.ctx


def _describe(messages: Counter[Message]) -> str:
    if not messages:
        return "no message"
    return "; ".join(describe_message(m) for m in sorted(messages.elements(), key=repr))


def _b64(text: str) -> bytes:
    return base64.b64decode(text)
