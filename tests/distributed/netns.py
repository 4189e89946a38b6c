"""Two "hosts" on one machine: network namespaces joined by a veth pair (needs root and `ip`).

Each namespace has its own loopback and one end of the pair; `/etc/netns/<name>/hosts` (which
`ip netns exec` mounts over /etc/hosts) makes the machine's hostname resolve to 127.0.1.1 there,
as in containers and cloud images: the setting where gloo, left alone, advertises loopback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

SUBNET = "10.213.0"


@dataclasses.dataclass(frozen=True)
class Node:
    namespace: str
    interface: str
    address: str

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this node's namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")


def require_netns() -> None:
    """Fails (never skips) with what is missing: CI runs as root with iproute2 installed."""
    assert shutil.which("ip"), "the multi-host tests need `ip` (apt-get install iproute2)"
    assert os.geteuid() == 0, "the multi-host tests create network namespaces: run as root"


@contextlib.contextmanager
def two_nodes() -> Iterator[tuple[Node, Node]]:
    """Creates the two namespaces and the link; removes everything afterwards, always."""
    require_netns()
    tag = f"{os.getpid() % 100000}"
    a = Node(f"dkA{tag}", f"dka{tag}", f"{SUBNET}.1")
    b = Node(f"dkB{tag}", f"dkb{tag}", f"{SUBNET}.2")
    made: list[Path] = []
    try:
        for node in (a, b):
            _ip("netns", "add", node.namespace)
        _ip("link", "add", a.interface, "type", "veth", "peer", "name", b.interface)
        for node in (a, b):
            _ip("link", "set", node.interface, "netns", node.namespace)
            _ip("-n", node.namespace, "addr", "add", f"{node.address}/24", "dev", node.interface)
            _ip("-n", node.namespace, "link", "set", node.interface, "up")
            _ip("-n", node.namespace, "link", "set", "lo", "up")
            folder = Path("/etc/netns") / node.namespace
            with contextlib.suppress(OSError):
                folder.mkdir(parents=True)
                made.append(folder)
                hosts = f"127.0.0.1 localhost\n127.0.1.1 {socket.gethostname()}\n"
                (folder / "hosts").write_text(hosts)
        yield a, b
    finally:
        for node in (a, b):  # deleting a namespace deletes its end of the pair, and the pair
            with contextlib.suppress(RuntimeError):
                _ip("netns", "del", node.namespace)
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)


def cut(node: Node) -> None:
    """Takes the node's end of the link down: the two hosts can no longer reach each other."""
    _ip("-n", node.namespace, "link", "set", node.interface, "down")
