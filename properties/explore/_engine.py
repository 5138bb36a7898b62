"""The explorer's fast model: interned values, memoised node steps, int-keyed hashes.

A BFS over the cluster model repeats the same small pieces endlessly: the same node state
meets the same input in thousands of cluster states, and a successor shares all but one node
and a message or two with its parent. So every node state, disk, message and node input is
interned once as a small int, and a cluster state becomes a tuple of ints
(`nodes`, `disks`, `network`, crashed mask, partition number, ghost reads). Then

* a node step is `spec.step` memoised on (node, input): pure and deterministic, so a dict
  lookup after the first call;
* the fingerprint is the one `Fingerprinter` computes (the same per-node, per-message and
  combining hashes from `_canon`, the same signatures and candidate relabellings), with the
  per-part hashes kept in tables keyed by the interned ints;
* the actions offered are `Menu`'s, in `Menu`'s order (node inputs come from `Menu` itself),
  so an action's index means the same here and in a replay through `spec.cluster_step`.

`successor` composes one step exactly as `spec.cluster_step` does (persist, then send; ghost
reads; refusals; an invalid delivered message is consumed). `materialise` turns an int state
back into the `ClusterState`, and `_fast` cross-checks `successor` against
`spec.cluster_step` at the start of every run, so a change in the spec's composition shows
up as an error, not as a silently different model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from properties.explore._actions import Budget, Menu, charge_slot, splits
from properties.explore._canon import (
    candidates,
    combine,
    extra_hash,
    message_hash,
    node_hash,
    relabellings,
    signature,
    with_disk,
)
from properties.explore._config import ExploreConfig
from spec import (
    Action,
    ClusterState,
    Crash,
    Deliver,
    Drop,
    Duplicate,
    Durable,
    Heal,
    Input,
    Message,
    NodeInput,
    NodeState,
    Partition,
    ReadRecord,
    ReadRequest,
    Receive,
    Recover,
    Restart,
    StepResult,
)
from spec._messages import message_sort_key

__all__ = ["Engine", "IntAction", "IntState", "Layout", "NodeStepFn", "Outcome"]

NodeStepFn = Callable[[NodeState, Input], StepResult]

# An int state: (nodes, disks, network, crashed bit mask, partition number, ghost reads).
IntState = tuple[
    tuple[int, ...], tuple[int, ...], tuple[int, ...], int, int, tuple[ReadRecord, ...]
]
# An int action: (kind, argument, input number, budget slot charged or -1, the spec Action).
IntAction = tuple[int, int, int, int, Action]
# A node step: (new node, persisted disk or -1, messages sent, reads answered), None if refused.
Outcome = tuple[int, int, tuple[int, ...], tuple[tuple[int, int], ...]] | None

# Per candidate relabelling: its number, the relabelled node hashes, its message-hash table.
Layout = list[tuple[int, tuple[int, ...], dict[int, int]]]

NODE, DELIVER, DROP, DUPLICATE, CRASH, RECOVER, PARTITION, HEAL = range(8)
_SHIFT = 32  # step memo key: node << _SHIFT | input


class Engine:
    """Engine interns one run's values and steps, hashes and bounds int states.

    `node_step` is the spec's node step as the search found it (a mutant's, when one is
    patched in), so the memo is per run and never outlives a patch.
    """

    def __init__(self, config: ExploreConfig, node_step: NodeStepFn) -> None:
        self.config = config
        self.node_step = node_step
        self.menu = Menu(config)
        n = config.nodes
        self.size = n
        # interned values and what the search asks of them
        self.node_objs: list[NodeState] = []
        self._node_ix: dict[NodeState, int] = {}
        self.node_commit: list[int] = []
        self.node_durable: list[int] = []
        self.node_ok: list[bool] = []  # within the term and log bounds
        self.node_sig: list[int] = []
        self.disk_objs: list[Durable] = []
        self._disk_ix: dict[Durable, int] = {}
        self.msg_objs: list[Message] = []
        self._msg_ix: dict[Message, int] = {}
        self.msg_key: list[tuple[object, ...]] = []
        self.msg_dst: list[int] = []
        self.msg_src: list[int] = []
        self._msg_actions: list[tuple[IntAction, IntAction, IntAction]] = []
        self.input_objs: list[Input] = []
        self._input_ix: dict[Input, int] = {}
        self._restart: dict[int, int] = {}  # disk -> its Restart input
        self._steps: dict[int, Outcome] = {}
        self._added: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[int, ...]] = {}
        self._node_menu: dict[tuple[int, Budget], tuple[IntAction, ...]] = {}
        # faults
        self._crash = tuple((CRASH, i, -1, 2, Crash(i)) for i in range(n))
        self._recover = tuple((RECOVER, i, -1, -1, Recover(i)) for i in range(n))
        self._partitions: list[tuple[frozenset[int], ...]] = [()]
        self._links: list[tuple[int, ...]] = [tuple((1 << n) - 1 for _ in range(n))]
        split_actions: list[IntAction] = []
        for groups in splits(n):
            self._partitions.append(tuple(sorted(groups, key=sorted)))
            self._links.append(
                tuple(sum(1 << b for g in groups if a in g for b in g) for a in range(n))
            )
            split_actions.append((PARTITION, len(self._partitions) - 1, -1, -1, Partition(groups)))
        self._splits = tuple(split_actions)
        self._heal: IntAction = (HEAL, 0, -1, -1, Heal())
        # fingerprints
        self._relabellings = relabellings(n, config.symmetry)
        self._by_inv = {r.inv: r for r in self._relabellings}
        self._node_hashes: list[dict[int, int]] = [{} for _ in self._relabellings]
        self._msg_hashes: list[dict[int, int]] = [{} for _ in self._relabellings]
        self._cands: dict[tuple[int, ...], list[tuple[int, tuple[int, ...]]]] = {}
        self._layouts: dict[tuple[tuple[int, ...], tuple[int, ...], int], Layout] = {}
        self._extras: dict[tuple[int, int, tuple[ReadRecord, ...], int], tuple[object, ...]] = {}

    # --- interning -----------------------------------------------------------------------

    def node(self, state: NodeState) -> int:
        """node is the number of `state`, interning it on first sight."""
        found = self._node_ix.get(state)
        if found is not None:
            return found
        number = len(self.node_objs)
        self._node_ix[state] = number
        self.node_objs.append(state)
        self.node_commit.append(state.commit)
        self.node_durable.append(self.disk(state.durable()))
        config = self.config
        self.node_ok.append(state.term <= config.max_term and len(state.log) <= config.max_log)
        self.node_sig.append(signature(state))
        return number

    def disk(self, durable: Durable) -> int:
        found = self._disk_ix.get(durable)
        if found is not None:
            return found
        number = len(self.disk_objs)
        self._disk_ix[durable] = number
        self.disk_objs.append(durable)
        return number

    def message(self, message: Message) -> int:
        found = self._msg_ix.get(message)
        if found is not None:
            return found
        number = len(self.msg_objs)
        self._msg_ix[message] = number
        self.msg_objs.append(message)
        self.msg_key.append(message_sort_key(message))
        self.msg_dst.append(message.dst)
        self.msg_src.append(message.src)
        lose = Drop(message)
        drop: IntAction = (DROP, number, -1, charge_slot(lose, self.config), lose)
        receive = self.input(Receive(message))
        self._msg_actions.append(
            (
                (DELIVER, number, receive, -1, Deliver(message)),
                drop,
                (DUPLICATE, number, -1, 3, Duplicate(message)),
            )
        )
        return number

    def input(self, event: Input) -> int:
        found = self._input_ix.get(event)
        if found is not None:
            return found
        number = len(self.input_objs)
        self._input_ix[event] = number
        self.input_objs.append(event)
        return number

    def receive_input(self, message: int) -> int:
        return self._msg_actions[message][0][2]

    def restart_input(self, disk: int) -> int:
        found = self._restart.get(disk)
        if found is None:
            found = self._restart[disk] = self.input(Restart(self.disk_objs[disk]))
        return found

    def state(self, cluster: ClusterState) -> IntState:
        """state interns a whole cluster state."""
        crashed = 0
        for i in cluster.crashed:
            crashed |= 1 << i
        partition = self._partitions.index(cluster.partition)
        return (
            tuple(self.node(x) for x in cluster.nodes),
            tuple(self.disk(d) for d in cluster.disks),
            tuple(self.message(m) for m in cluster.network),
            crashed,
            partition,
            cluster.reads,
        )

    def materialise(self, state: IntState) -> ClusterState:
        """materialise is the spec's `ClusterState` for an int state."""
        nodes, disks, network, crashed, partition, reads = state
        node_objs, disk_objs, msg_objs = self.node_objs, self.disk_objs, self.msg_objs
        return ClusterState(
            nodes=tuple([node_objs[a] for a in nodes]),
            disks=tuple([disk_objs[d] for d in disks]),
            network=tuple([msg_objs[m] for m in network]),
            crashed=frozenset(i for i in range(len(nodes)) if crashed >> i & 1),
            partition=self._partitions[partition],
            reads=reads,
        )

    # --- node steps ----------------------------------------------------------------------

    def step_node(self, node: int, event: int) -> Outcome:
        """step_node is the memoised node step; None when the node refuses the input."""
        key = node << _SHIFT | event
        steps = self._steps
        if key in steps:
            return steps[key]
        result = self.node_step(self.node_objs[node], self.input_objs[event])
        outcome: Outcome = None
        if result.enabled:
            outcome = (
                self.node(result.state),
                -1 if result.persist is None else self.disk(result.persist),
                tuple(self.message(m) for m in result.messages),
                tuple((a.read_id, a.read_index) for a in result.reads),
            )
        steps[key] = outcome
        return outcome

    # --- actions -------------------------------------------------------------------------

    def actions(self, state: IntState, budget: Budget) -> list[IntAction]:
        """actions is `Menu(config)(materialise(state), budget)`, as int actions."""
        nodes, _, network, crashed, partition, _ = state
        config = self.config
        out: list[IntAction] = []
        node_menu = self._node_menu
        for i, a in enumerate(nodes):
            if crashed >> i & 1:
                continue
            key = (a, budget)
            offered = node_menu.get(key)
            if offered is None:
                offered = node_menu[key] = self._node_actions(a, budget)
            out.extend(offered)
        previous = -1
        duplicate = budget[3] < config.max_duplicates
        lose = config.max_drops is None or budget[7] < config.max_drops
        links = self._links[partition]
        msg_dst, msg_src, msg_actions = self.msg_dst, self.msg_src, self._msg_actions
        for m in network:  # sorted: equal copies are adjacent
            if m == previous:
                continue
            previous = m
            deliver, drop, dup = msg_actions[m]
            dst = msg_dst[m]
            if not crashed >> dst & 1 and links[msg_src[m]] >> dst & 1:
                out.append(deliver)
            if lose:
                out.append(drop)
            if duplicate:
                out.append(dup)
        crash = budget[2] < config.max_crashes
        for i in range(self.size):
            if crashed >> i & 1:
                out.append(self._recover[i])
            elif crash:
                out.append(self._crash[i])
        if config.partitions:
            if partition:
                out.append(self._heal)
            else:
                out.extend(self._splits)
        return out

    def _node_actions(self, node: int, budget: Budget) -> tuple[IntAction, ...]:
        found: list[IntAction] = []
        for action in self.menu._node_inputs(self.node_objs[node], budget):
            assert isinstance(action, NodeInput)
            charge = charge_slot(action, self.config)
            found.append((NODE, action.node, self.input(action.input), charge, action))
        return tuple(found)

    # --- successors ----------------------------------------------------------------------

    def successor(
        self, state: IntState, action: IntAction, bounded: bool = False
    ) -> tuple[IntState, int, int] | None:
        """successor is `spec.cluster_step` for an offered action, or None when refused.

        Also returns the node that took a step and the number of its input (-1, -1 when no
        node stepped), for the per-node transition checks. Bounds are not applied unless
        `bounded`: then a successor outside them (of a state inside them) is None as well,
        found before it is built (the search skips both kinds alike).
        """
        kind = action[0]
        nodes, disks, network, crashed, partition, reads = state
        if kind == NODE:
            i = action[1]
            event = action[2]
            rest = network
        elif kind == DELIVER:
            m = action[1]
            at = network.index(m)
            rest = network[:at] + network[at + 1 :]
            i = self.msg_dst[m]
            event = action[2]  # Receive(message)
        elif kind == DROP:
            at = network.index(action[1])
            return (
                (nodes, disks, network[:at] + network[at + 1 :], crashed, partition, reads),
                -1,
                -1,
            )
        elif kind == DUPLICATE:
            if bounded and len(network) >= self.config.max_messages:
                return None
            return (
                (nodes, disks, self._add(network, (action[1],)), crashed, partition, reads),
                -1,
                -1,
            )
        elif kind == CRASH:
            return (nodes, disks, network, crashed | 1 << action[1], partition, reads), -1, -1
        elif kind == RECOVER:
            i = action[1]
            crashed &= ~(1 << i)
            event = self.restart_input(disks[i])
            rest = network
        elif kind == PARTITION:
            return (nodes, disks, network, crashed, action[1], reads), -1, -1
        else:
            return (nodes, disks, network, crashed, 0, reads), -1, -1
        before = nodes[i]
        outcome = self.step_node(before, event)
        if outcome is None:
            if kind == DELIVER:  # an invalid message is still consumed
                return (nodes, disks, rest, crashed, partition, reads), -1, -1
            return None
        after, persist, sent, answers = outcome
        if bounded and (
            len(rest) + len(sent) > self.config.max_messages or not self.node_ok[after]
        ):
            return None
        if after != before:
            nodes = (*nodes[:i], after, *nodes[i + 1 :])
        if persist >= 0:
            disks = (*disks[:i], persist, *disks[i + 1 :])
        if sent:
            rest = self._add(rest, sent)
        if action[3] == 1 or answers:
            reads = self._record_reads(state, i, action, answers)
        return (nodes, disks, rest, crashed, partition, reads), i, event

    def _add(self, network: tuple[int, ...], sent: tuple[int, ...]) -> tuple[int, ...]:
        key = (network, sent)
        found = self._added.get(key)
        if found is None:
            found = self._added[key] = tuple(sorted(network + sent, key=self.msg_key.__getitem__))
        return found

    def _record_reads(
        self, state: IntState, node: int, action: IntAction, answers: tuple[tuple[int, int], ...]
    ) -> tuple[ReadRecord, ...]:
        """The ghost read records after a step, as `spec._cluster._record_reads` keeps them."""
        reads = list(state[5])
        event = action[4]
        if isinstance(event, NodeInput) and isinstance(event.input, ReadRequest):
            must_cover = max(self.node_commit[a] for a in state[0])
            reads.append(ReadRecord(node, event.input.read_id, must_cover))
        for read_id, read_index in answers:
            for k, record in enumerate(reads):
                if record.node == node and record.read_id == read_id and record.answered is None:
                    reads[k] = replace(record, answered=read_index)
                    break
        return tuple(sorted(reads))

    def within_bounds(self, state: IntState, changed: int) -> bool:
        """within_bounds is `_actions.within_bounds` given that only node `changed` moved."""
        if len(state[2]) > self.config.max_messages:
            return False
        return changed < 0 or self.node_ok[state[0][changed]]

    # --- fingerprints --------------------------------------------------------------------

    def fingerprint(self, state: IntState, budget: Budget) -> int:
        """fingerprint equals `Fingerprinter(...)(materialise(state), budget)`.

        The candidate relabellings and the relabelled node hashes depend only on the nodes,
        disks and crashed set, which many states share; they are kept per such triple.
        """
        return self.fingerprint_in(self.layout(state), state, budget)

    def layout(self, state: IntState) -> Layout:
        """layout is what the fingerprint needs of the nodes, disks and crashed set."""
        key = (state[0], state[1], state[3])
        layouts = self._layouts.get(key)
        if layouts is None:
            layouts = self._layouts[key] = self._layout(state[0], state[1], state[3])
        return layouts

    def fingerprint_in(self, layouts: Layout, state: IntState, budget: Budget) -> int:
        """fingerprint_in is `fingerprint` given `layout(state)` (a parent's, if it is the same)."""
        nodes, _, network, crashed, partition, reads = state
        best = -1
        for k, parts, msg_hashes in layouts:
            net = []
            for m in network:
                h = msg_hashes.get(m)
                if h is None:
                    h = msg_hashes[m] = message_hash(self.msg_objs[m], self._relabellings[k])
                net.append(h)
            net.sort()
            extra: tuple[object, ...] = ()
            if crashed or partition or reads:
                extra_key = (crashed, partition, reads, k)
                found = self._extras.get(extra_key)
                if found is None:
                    found = self._extras[extra_key] = extra_hash(
                        [i for i in range(len(nodes)) if crashed >> i & 1],
                        self._partitions[partition],
                        reads,
                        self._relabellings[k],
                    )
                extra = found
            value = combine(budget, parts, tuple(net), extra)
            if best < 0 or value < best:
                best = value
        return best

    def _layout(self, nodes: tuple[int, ...], disks: tuple[int, ...], crashed: int) -> Layout:
        """_layout: for each candidate relabelling, its number, node hashes, message hashes."""
        node_sig = self.node_sig
        sigs = tuple([node_sig[a] | (crashed >> i & 1) for i, a in enumerate(nodes)])
        cands = self._cands.get(sigs)
        if cands is None:
            if self.config.symmetry:
                chosen = candidates(sigs, self._by_inv)
            else:
                chosen = self._relabellings[:1]
            cands = self._cands[sigs] = [(r.index, r.inv) for r in chosen]
        out = []
        for k, inv in cands:
            node_hashes = self._node_hashes[k]
            parts = []
            for old in inv:
                h = node_hashes.get(nodes[old] << _SHIFT | disks[old])
                if h is None:
                    h = self._node_part(nodes[old], disks[old], k)
                parts.append(h)
            out.append((k, tuple(parts), self._msg_hashes[k]))
        return out

    def _node_part(self, node: int, disk: int, k: int) -> int:
        r = self._relabellings[k]
        obj = self.node_objs[node]
        h = node_hash(obj, r)
        if disk != self.node_durable[node]:
            h = with_disk(h, obj, self.disk_objs[disk], r)
        self._node_hashes[k][node << _SHIFT | disk] = h
        return h
