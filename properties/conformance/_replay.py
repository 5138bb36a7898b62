"""Per-node replay: feed one node's recorded inputs to `spec.step` and demand what it recorded.

Each event's input becomes zero or more spec inputs; after them the spec node's state must
equal the recorded one (term, vote, role, leader, commit, last log index and term, log and
commit digests) and the spec's outputs the recorded outputs. In brief: ``timeout``,
``checkquorum``, ``recv``, ``propose`` (one ClientRequest per command), ``read``,
``transfer`` and ``member`` are their spec inputs; a received ``tnow`` is the spec's
TimeoutNow append; every append the impl sent is a SendAppend(peer, prev_index, count), so
batching, pipelining and heartbeats are explicit spec steps. The rest (``ready``,
``persisted``, ``advance``, ``applied``, ``snapshot``, ``heartbeat``) has no spec input but
its effect on the recorded state is checked. The leader's commit follows its durable index
(``_leader``); every relaxation is counted in the result. The whole mapping and every
relaxation are in docs/trace-format.md.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from properties._report import describe_message
from properties.conformance._contract import ReadyContract
from properties.conformance._divergence import (
    Diverged,
    Divergence,
    describe_event,
    plain,
    render_state,
)
from properties.conformance._leader import (
    check_timeout_now,
    describe,
    is_append,
    leader_commit,
    lost_election,
)
from properties.conformance._mapping import (
    IdMap,
    LogDigest,
    MappingError,
    b64decode,
    spec_entries,
    spec_message,
)
from properties.conformance._members import ConfigError, with_config_payload
from spec import (
    AddLearner,
    AppendRequest,
    AppendResponse,
    AppendSentinel,
    CheckQuorum,
    ClientRequest,
    Config,
    Durable,
    ElectionTimeout,
    Input,
    Message,
    NodeState,
    PromoteLearner,
    ReadAnswer,
    ReadRequest,
    Receive,
    RemoveServer,
    Restart,
    Role,
    SendAppend,
    TransferLeadership,
    initial_node,
    step,
    term_at,
)

__all__ = ["Divergence", "NodeReplay"]

Json = dict[str, Any]

_ROLE = {Role.FOLLOWER: "F", Role.PRECANDIDATE: "P", Role.CANDIDATE: "C", Role.LEADER: "L"}
# inputs with no spec counterpart: only their effect on the recorded state is checked
_NO_SPEC_INPUT = frozenset(("ready", "advance", "persisted", "heartbeat", "snapshot"))
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


@dataclass(slots=True)
class ReplayStats:
    """ReplayStats counts what was checked, and how often each relaxation was used."""

    events: int = 0
    spec_steps: int = 0
    relaxations: Counter[str] = field(default_factory=Counter)


class NodeReplay:
    """NodeReplay checks one node's events in order; see the module doc for the mapping."""

    def __init__(
        self,
        name: str,
        universe: Iterable[str],
        path: str,
        addresses: Mapping[str, str] | None = None,
    ) -> None:
        self.ids = IdMap.of([*universe, name])
        self.name = name
        self.me = self.ids.to_spec(name)
        self.voters = tuple(range(len(self.ids.names)))
        self.addresses = dict(addresses or {})
        self.initial_config: Config | None = None
        self.path = path
        self.state: NodeState | None = None
        self.active = True
        self.global_only: str | None = None  # why per-node replay stopped, if it did
        self.digests = LogDigest()
        self.digest_comparable = True
        self.history: deque[Json] = deque(maxlen=6)
        self.stats = ReplayStats()
        self.contract = ReadyContract()
        self.leader_checks = 0
        self.recorded: list[Any] | None = None
        self.segment = 0
        self.tnow_sent = False  # the impl sent TimeoutNow in the current transfer
        self.tnow_from: int | None = None  # sender of the TimeoutNow being replayed

    # -- driver ------------------------------------------------------------------------
    def process(self, e: Json, line: int) -> Divergence | None:
        """process checks one event; a Divergence stops this node's replay."""
        self.stats.events += 1
        try:
            if e["i"] == "start":
                # A start is a new process: its loaded state is checked against the disk
                # model in _start, which then resets the contract. Checking the start against
                # the previous run's Ready bookkeeping would flag a node killed after storage
                # finished a write but before its ``persisted`` event was recorded.
                self._start(e)
            else:
                self.contract.check(e, self.stats.relaxations)
                if self.active:
                    self._dispatch(e)
        except Diverged as div:
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

    def begin_segment(self, header: Json) -> None:
        """begin_segment takes a segment header: the node's initial configuration.

        The header's voters and learners are the configuration the node uses until its log
        holds one (thesis 4.1). A node started with ``join`` knows none: it is given one in
        which it does not vote, which is all the spec asks of it (it never campaigns; it
        answers votes and appends without consulting its configuration). When the header's
        voters are the whole universe the spec's default (every id votes) is that config.
        """
        ids = self.ids
        voters = tuple(sorted(ids.to_spec(v) for v in header["voters"]))
        learners = tuple(sorted(ids.to_spec(v) for v in header.get("learners", ())))
        if header.get("join"):
            others = tuple(i for i in self.voters if i != self.me)
            if not others:
                raise MappingError("a joining node alone in its run")
            self.initial_config = Config(others, (self.me,))
        elif voters == self.voters and not learners:
            self.initial_config = None
        else:
            try:
                self.initial_config = Config(voters, learners)
            except ValueError as exc:
                raise MappingError(f"header configuration: {exc}") from None

    def _context(self) -> tuple[str, ...]:
        return tuple(
            f"#{e.get('n')}: {describe_event(e)} -> {render_state(e['s'])}" for e in self.history
        )

    def relax(self, reason: str) -> None:
        """relax stops per-node replay here: the rest of this segment is checked globally."""
        self.active = False
        self.global_only = reason
        self.stats.relaxations["global only: " + reason] += 1

    def _dispatch(self, e: Json) -> None:
        kind = e["i"]
        if kind in _NO_SPEC_INPUT:
            if not ("out" in e or "reads" in e or "abort" in e):
                s, recorded = e["s"], self.recorded
                if s == recorded:
                    return  # nothing consumed or produced, state as recorded before: verified
                state = self.state
                if (
                    recorded is not None
                    and state is not None
                    and state.role is not Role.LEADER
                    and s[:9] == recorded[:9]
                ):
                    # only the durable index moved (the Ready contract bounds it): off a
                    # leader it counts for nothing in the spec, so the state is as verified
                    return
            self._spec_step(e, [])
            return
        match kind:
            case "timeout":
                # a learner's, a joining node's or a leader's timeout changes nothing in either
                self._spec_step(e, [ElectionTimeout()])
            case "checkquorum":
                self._check_quorum(e)
            case "recv":
                self._recv(e)
            case "propose":
                inputs: list[Input] = [ClientRequest(b64decode(d)) for d in e["data"]]
                # thesis 3.10: during a transfer both refuse client requests
                self._spec_step(e, inputs, refusable=True)
            case "read":
                self._spec_step(e, [ReadRequest(e["id"])], refusable=True)
            case "transfer":
                self._transfer(e)
            case "member":
                self._member(e)
            case "sentinel":
                # a no-op of the leader's term, asked so a change held by the 2015 rule can go
                self._spec_step(e, [AppendSentinel()], refusable=True)
            case "applied":
                if e["index"] > e["s"][4]:
                    raise Diverged(
                        f"applied index <= commit index {e['s'][4]}", f"applied {e['index']}"
                    )
                self._spec_step(e, [])
            case _:
                raise MappingError(f"unknown event kind {kind!r}")

    # -- start / restart -----------------------------------------------------------------
    def _start(self, e: Json) -> None:
        term, vote, commit = e["hs"]
        base_index, base_term = e["base"]
        if self.segment > 0:
            loaded_last = base_index + len(e["ents"])
            self.contract.check_restart(
                (term, vote, commit), loaded_last, base_index, self.stats.relaxations
            )
        self.segment += 1
        entries = spec_entries(e["ents"], base_index + 1, self.ids)
        loaded = base_index + len(entries)
        # storage holds exactly what this run loaded, whatever replay does with it below
        self.contract.start(e, (term, vote, commit), loaded, base_index)
        self.leader_checks = 0
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
                    raise Diverged(
                        f"restart loads committed entry {index} unchanged",
                        f"loaded a different entry at index {index}",
                    )
        self.active = True
        self.global_only = None
        self.digest_comparable = base_index == 0  # the impl chain restarts at a base
        # a snapshot holds only applied, so committed, entries: a node restarting from one
        # knows its base is committed even when its hard state's commit is older (the
        # commit-only hard state rides with the next write, relaxation 8)
        durable = Durable(
            term, self.ids.opt_to_spec(vote), prefix + entries, max(commit, base_index)
        )
        node = previous or initial_node(self.me, self.voters)
        node = replace(node, initial_config=self.initial_config)
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
            self._timeout_now(e, m)
            return
        self._spec_step(e, [Receive(spec_message(m, self.ids))])

    def _member(self, e: Json) -> None:
        """_member: ``member`` -> AddLearner / PromoteLearner / RemoveServer (thesis 4.1).

        A change the impl refused must be refused by the spec, and one it made must be
        allowed by the spec's rules (leader only, one at a time, after an entry of its own
        term committed, none during a transfer, a learner promoted only once caught up). The
        spec's new CONFIG entry gets the payload the impl writes (see ``_members``).
        """
        op = e["op"]
        name = e["node"]
        if name not in self.ids.index:
            if "err" not in e:
                raise Diverged(f"membership change of unknown node {name!r} refused", "accepted")
            self._spec_step(e, [])
            return
        node = self.ids.to_spec(name)
        change: Input
        match op:
            case "add":
                change = AddLearner(node)
            case "promote":
                change = PromoteLearner(node)
            case "remove":
                change = RemoveServer(node)
            case _:
                raise MappingError(f"unknown membership op {op!r}")
        self._spec_step(e, [change], refusable=True, member=e)

    def _transfer(self, e: Json) -> None:
        """_transfer: ``transfer`` -> TransferLeadership(target) (thesis 3.10).

        The impl sends TimeoutNow once per transfer (the spec repeats it on every reply of a
        caught-up target: see ``_compare_timeout_now``), treats a transfer to itself as a
        no-op (the spec refuses it) and restarts a transfer asked during one, as etcd does
        (the spec refuses it); both are counted relaxations.
        """
        pre = self.state
        assert pre is not None
        name = e["to"]
        if name not in self.ids.names:
            if "err" not in e:
                raise Diverged(f"transfer to {name!r} refused (not a member)", "accepted")
            self._spec_step(e, [])
            return
        target = self.ids.to_spec(name)
        if pre.role is Role.LEADER and "err" not in e:
            if target == pre.id:
                self.stats.relaxations[
                    "transfer to the leader itself: impl no-op, spec refuses"
                ] += 1
                self._spec_step(e, [])
                return
            if pre.transfer_target is not None:
                self.stats.relaxations[
                    "transfer during a transfer: impl restarts it, spec refuses"
                ] += 1
                self.state = replace(pre, transfer_target=None)
            self.tnow_sent = False
        self._spec_step(e, [TransferLeadership(target)], refusable=True)

    def _timeout_now(self, e: Json, m: Json) -> None:
        """_timeout_now: a received ``tnow`` -> the spec's TimeoutNow (thesis 3.10).

        The spec's TimeoutNow is an append ending at the leader's last index with
        ``timeout_now`` set; the impl's carries no log position, because its leader sends it
        only once the target matched its whole log. So the checker gives it the receiver's
        own last (index, term), no entries, the receiver's commit index and no read ctx: the
        consistency check then holds, as the leader's match index vouches, and the spec decides
        the rest (term adoption, a stale term, who campaigns). The impl sends no reply to the
        append part: the spec's AppendResponse to the sender is not compared.
        """
        pre = self.state
        assert pre is not None
        src = self.ids.to_spec(m["from"])
        last = len(pre.log)
        message = AppendRequest(
            src,
            self.ids.to_spec(m["to"]),
            m["term"],
            last,
            pre.log[-1].term if pre.log else 0,
            (),
            pre.commit,
            0,
            True,
        )
        self.tnow_from = src
        try:
            self._spec_step(e, [Receive(message)])
        finally:
            self.tnow_from = None

    def _spec_step(
        self,
        e: Json,
        inputs: list[Input],
        refusable: bool = False,
        member: Json | None = None,
    ) -> None:
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
                if isinstance(event, Receive | ElectionTimeout):
                    # a disabled receive changes nothing, like a drop; a disabled timeout
                    # (a node that does not campaign) changes nothing either
                    continue
                raise Diverged(f"input refused ({result.rejected})", "input accepted")
            if refused and refusable:
                raise Diverged("input accepted", f"input refused ({e['err']})")
            state = result.state
            messages.extend(result.messages)
            reads.extend(result.reads)
        if member is not None and not refused:
            try:
                state = with_config_payload(state, member, self.ids.names, self.addresses)
            except ConfigError as exc:
                raise Diverged("a configuration entry appended by the change", str(exc)) from None
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
            post, spec_reads = leader_commit(
                pre, post, s[9], spec_reads, kind=e["i"], relaxations=self.stats.relaxations
            )
        # (pre)candidate that gave up a lost election
        if s[2] == "F" and post.role in (Role.PRECANDIDATE, Role.CANDIDATE) and lost_election(post):
            self.stats.relaxations["lost (pre)election: impl becomes follower at once"] += 1
            post = replace(
                post,
                role=Role.FOLLOWER,
                leader=None,
                prevotes=frozenset(),
                votes=frozenset(),
                rejections=frozenset(),
            )
        # aborted reads: exactly the spec reads dropped by stepping down (not those the same
        # step answered first: the reply that commits a leader's own removal, thesis 4.2.2)
        if pre.role is Role.LEADER and post.role is not Role.LEADER:
            answered = {r.read_id for r in spec_reads}
            dropped = sorted(r.read_id for r in pre.pending_reads if r.read_id not in answered)
            if sorted(e.get("abort", [])) != dropped:
                raise Diverged(
                    f"pending reads {dropped} aborted on stepping down",
                    f"aborted {sorted(e.get('abort', []))}",
                )
        elif e.get("abort"):
            raise Diverged("no read aborted", f"aborted {e['abort']}")
        post = self._compare_messages(e, post, spec_msgs)
        impl_reads = sorted((r[0], r[1]) for r in e.get("reads", []))
        spec_answered = sorted((r.read_id, r.read_index) for r in spec_reads)
        if impl_reads != spec_answered:
            raise Diverged(f"reads released {spec_answered}", f"released {impl_reads}")
        self._compare_state(e, post)
        self.state = post

    def _compare_messages(
        self, e: Json, state: NodeState, spec_msgs: tuple[Message, ...]
    ) -> NodeState:
        impl_other: list[Json] = []
        impl_replies: list[Json] = []
        impl_tnow: list[Json] = []
        for record in e.get("out", ()):
            kind = record["k"]
            if kind == "app":
                state = self._send_append(state, record)
            elif kind == "snap":
                self.stats.relaxations["snap sent: not in the spec, not compared"] += 1
            elif kind == "tnow":
                impl_tnow.append(record)
            elif kind == "appr":
                impl_replies.append(record)
            elif kind == "snapr":
                self.relax("answered InstallSnapshot, which is not in the spec")
            else:
                impl_other.append(record)
        if not spec_msgs and not impl_other and not impl_replies and not impl_tnow:
            return state
        if self.tnow_from is not None:
            # the spec's answer to the append part of TimeoutNow, which the impl has not
            spec_msgs = tuple(
                m
                for m in spec_msgs
                if not (isinstance(m, AppendResponse) and m.dst == self.tnow_from)
            )
        spec_appends = [m for m in spec_msgs if isinstance(m, AppendRequest)]
        if spec_appends or impl_tnow:
            self.tnow_sent = check_timeout_now(
                state,
                spec_appends,
                impl_tnow,
                self.ids,
                sent_before=self.tnow_sent,
                relaxations=self.stats.relaxations,
            )
            spec_msgs = tuple(m for m in spec_msgs if not isinstance(m, AppendRequest))
        spec_replies = [m for m in spec_msgs if isinstance(m, AppendResponse)]
        spec_other = Counter[Message](m for m in spec_msgs if not isinstance(m, AppendResponse))
        transfer = self.tnow_from is not None
        got = Counter(spec_message(r, self.ids, transfer=transfer) for r in impl_other)
        if got != spec_other:
            raise Diverged(describe(spec_other), describe(got))
        if len(spec_replies) != len(impl_replies):
            raise Diverged(
                describe(Counter[Message](spec_replies)),
                "; ".join(plain(r) for r in impl_replies) or "no append reply",
            )
        for expected, record in zip(spec_replies, impl_replies, strict=True):
            self._compare_reply(e, state, expected, record)
        return state

    def _send_append(self, state: NodeState, record: Json) -> NodeState:
        ids = self.ids
        event = SendAppend(ids.to_spec(record["to"]), record["pi"], len(record["ents"]))
        result = step(state, event)
        self.stats.spec_steps += 1
        if result.rejected is None and is_append(result.messages, record, self.me, ids):
            return result.state
        spec_message(record, ids)  # a malformed record is reported as such (MappingError)
        if result.rejected is not None:
            raise Diverged(f"no such append ({result.rejected})", f"sent {plain(record)}")
        raise Diverged(describe(Counter(result.messages)), f"sent {plain(record)}")

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
                or (
                    hint <= request["pi"]
                    and hint_term <= request["pt"]
                    and term_at(state.log, hint) == hint_term
                )
                or (hint == len(state.log) and hint_term == term_at(state.log, hint))
            )
        if not same:
            raise Diverged(describe_message(expected), plain(record))

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
            raise Diverged("state " + ", ".join(diff), "state " + ", ".join(got))
