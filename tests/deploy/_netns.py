"""A private network of Linux network namespaces for the multi-host rehearsal.

Every "machine" is a network namespace with one veth interface and its own
address; the other ends of the veths are enslaved to a bridge that lives in a
namespace of its own (the "hub"), so the test touches no interface, address or
route of the host: deleting the namespaces removes every veth and the bridge
with them. Cutting a machine's link is ``ip link set DEV down`` on its hub-side
veth, which is what a pulled cable or a dead switch port looks like to Raft:
packets vanish, connections hang until their deadlines.

Needs root and a kernel with network namespaces, veth and bridge support;
``NetnsUnavailable`` says which step failed so the caller can skip with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Machine", "NetnsUnavailable", "PrivateNetwork"]


class NetnsUnavailable(RuntimeError):  # noqa: N818 (reads as the reason to skip)
    """NetnsUnavailable: this host cannot build the private network (the message says why)."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], check=False, capture_output=True, text=True, timeout=20)
    if result.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")


@dataclass(frozen=True, slots=True)
class Machine:
    """Machine is one namespace: its name, its address and the hub-side end of its link."""

    name: str
    namespace: str
    address: str
    hub_dev: str

    def exec_prefix(self) -> list[str]:
        """exec_prefix runs a command inside this machine's namespace."""
        return ["ip", "netns", "exec", self.namespace]


@dataclass
class PrivateNetwork:
    """PrivateNetwork builds a bridge and one namespace per machine on a /24 subnet.

    subnet is the first three octets (e.g. "10.213.7"); machine i gets .(i+1)
    unless its host number is given. Use as a context manager, or call build()
    and then destroy() in a finally block; destroy() is safe to call twice and
    after a failed build().
    """

    subnet: str
    names: Sequence[str]
    host_numbers: Sequence[int] = ()
    tag: str = field(default_factory=lambda: f"rw{os.getpid() % 100000}")
    machines: dict[str, Machine] = field(default_factory=dict)
    _created: list[str] = field(default_factory=list)

    @property
    def hub(self) -> str:
        return f"{self.tag}-hub"

    @staticmethod
    def check_available() -> None:
        """check_available raises NetnsUnavailable unless we are root with ``ip`` on PATH."""
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root (running as uid != 0)")
        if shutil.which("ip") is None:
            raise NetnsUnavailable("the `ip` command (iproute2) is not installed")

    def _add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self._created.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def build(self) -> PrivateNetwork:
        """build creates the hub with its bridge, then each machine and its link."""
        self.check_available()
        numbers = list(self.host_numbers) or [i + 1 for i in range(len(self.names))]
        if len(numbers) != len(self.names) or len(set(numbers)) != len(numbers):
            raise ValueError("host_numbers must give one distinct number per machine")
        self._add_namespace(self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for index, (name, number) in enumerate(zip(self.names, numbers, strict=True)):
            namespace = f"{self.tag}-{name}"
            hub_dev = f"v{index}-{name}"[:15]
            address = f"{self.subnet}.{number}"
            self._add_namespace(namespace)
            # The veth is created in the hub and its peer placed straight into the machine.
            _ip("-n", self.hub, "link", "add", hub_dev, "type", "veth", "peer", "name", "eth0",
                "netns", namespace)  # fmt: skip
            _ip("-n", self.hub, "link", "set", hub_dev, "master", "br0")
            _ip("-n", self.hub, "link", "set", hub_dev, "up")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            self.machines[name] = Machine(name, namespace, address, hub_dev)
        return self

    def cut(self, name: str) -> None:
        """cut takes machine name's link down: it can reach nobody and nobody reaches it."""
        _ip("-n", self.hub, "link", "set", self.machines[name].hub_dev, "down")

    def heal(self, name: str) -> None:
        """heal brings machine name's link back up."""
        _ip("-n", self.hub, "link", "set", self.machines[name].hub_dev, "up")

    def destroy(self) -> list[str]:
        """destroy deletes every namespace built (machines first); returns what failed."""
        failures: list[str] = []
        for namespace in reversed(self._created):
            result = subprocess.run(
                ["ip", "netns", "del", namespace],
                check=False,
                capture_output=True,
                text=True,
                timeout=20,
            )
            if result.returncode != 0:
                failures.append(f"{namespace}: {result.stderr.strip()}")
        self._created.clear()
        self.machines.clear()
        return failures

    def __enter__(self) -> PrivateNetwork:
        try:
            return self.build()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc: object) -> None:
        self.destroy()
