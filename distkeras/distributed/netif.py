"""Which network interface reaches the rendezvous master, and whether the peers answer.

gloo and NCCL pick the address they advertise to the other workers from the machine's hostname
unless ``GLOO_SOCKET_IFNAME`` / ``NCCL_SOCKET_IFNAME`` name an interface. Where the hostname
resolves to loopback (containers, cloud images, network namespaces) every node advertises
127.0.x.x and the nodes never connect: the classic multi-node pitfall. So each worker asks the
kernel which local address it would use to reach ``MASTER_ADDR`` (a UDP ``connect`` sends
nothing; it only chooses a route), maps that address to its interface, and sets both variables
when the user has not. ``DISTKERAS_VERBOSE=1`` prints the choice at start-up.

A :class:`Beacon` (a listening TCP socket that accepts and closes) lets the other workers
tell, after a collective failed, a peer whose network is gone (no answer) from a peer whose
process is gone (connection refused) from a peer that is alive but stuck (accepted).

Standard library only: the launcher may load this module without torch.

Example:
    >>> from distkeras.distributed import netif
    >>> netif.route_to("127.0.0.1").interface
    'lo'
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import ipaddress
import os
import socket
import struct
import subprocess
import threading
from collections.abc import Iterable, MutableMapping

GLOO_IFNAME = "GLOO_SOCKET_IFNAME"
NCCL_IFNAME = "NCCL_SOCKET_IFNAME"
VERBOSE_ENV = "DISTKERAS_VERBOSE"
PROBE_TIMEOUT_S = 1.5
_SIOCGIFADDR = 0x8915
_SIOCGIFFLAGS = 0x8913
_IFF_UP, _IFF_LOOPBACK = 0x1, 0x8
_DISCARD_PORT = 9  # any port: a UDP connect only looks the route up
_NO_ROUTE = ("192.0.2.1", "2001:db8::1")  # documentation addresses: follow the default route


def verbose(environ: MutableMapping[str, str] | None = None) -> bool:
    """True when ``DISTKERAS_VERBOSE`` asks for start-up messages ("1", "true", "yes")."""
    value = (os.environ if environ is None else environ).get(VERBOSE_ENV, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclasses.dataclass(frozen=True)
class Route:
    """How this node reaches the master.

    Attributes:
        master: ``MASTER_ADDR`` as given.
        address: the local address the kernel would use to reach it (None if unknown).
        interface: the interface holding that address (None if unknown).
        note: why the choice is what it is, when that is not obvious.
    """

    master: str
    address: str | None
    interface: str | None
    note: str = ""

    def describe(self) -> str:
        where = f"{self.address} on interface {self.interface}" if self.interface else (
            f"{self.address} (interface unknown)" if self.address else "no route"
        )  # fmt: skip
        return f"reaches master {self.master} from {where}" + (
            f" ({self.note})" if self.note else ""
        )


def route_to(master_addr: str) -> Route:
    """The local address and interface the kernel would use to reach ``master_addr``."""
    try:
        infos = socket.getaddrinfo(master_addr, _DISCARD_PORT, type=socket.SOCK_DGRAM)
    except socket.gaierror as error:
        return Route(master_addr, None, None, f"cannot resolve {master_addr!r}: {error}")
    for family, _, _, _, sockaddr in infos:
        local = _source_address(family, sockaddr)
        if local is not None:
            return Route(master_addr, local, interface_of(local))
    return Route(master_addr, None, None, f"no route to {master_addr}")


def _source_address(family: int, sockaddr: tuple) -> str | None:
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(sockaddr)
            return sock.getsockname()[0].split("%", 1)[0]
        except OSError:
            return None


def interface_of(address: str) -> str | None:
    """The name of the interface that holds ``address`` (IPv4 or IPv6), or None."""
    try:
        wanted = ipaddress.ip_address(address)
    except ValueError:
        return None
    for name, held in interface_addresses():
        if held == wanted or (wanted.is_loopback and held.is_loopback):
            return name
    return None


def interface_addresses() -> list[tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    """(interface, address) for every address of every interface, primary IPv4 ones first."""
    found = []
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            raw = struct.pack("256s", name.encode()[:15])
            with contextlib.suppress(OSError):
                packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, raw)[20:24]
                found.append((name, ipaddress.IPv4Address(packed)))
    # IPv6: "<32 hex digits> index prefix-length scope flags name" per line.
    with contextlib.suppress(OSError), open("/proc/net/if_inet6") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 6:
                found.append((fields[5], ipaddress.IPv6Address(int(fields[0], 16))))
    found.extend(_ip_command_addresses())  # secondary IPv4 addresses the ioctl does not show
    return found


def _ip_command_addresses() -> Iterable[tuple[str, ipaddress.IPv4Address]]:
    try:
        out = subprocess.run(
            ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    pairs = []
    for line in out.splitlines():  # "2: eth0    inet 10.0.0.2/24 brd ... scope global eth0"
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "inet":
            with contextlib.suppress(ValueError):
                pairs.append((fields[1], ipaddress.IPv4Address(fields[3].split("/")[0])))
    return pairs


def _default_route() -> Route | None:
    """The interface of the default route, else the first interface up that is not loopback."""
    for target in _NO_ROUTE:
        family = socket.AF_INET6 if ":" in target else socket.AF_INET
        local = _source_address(family, (target, _DISCARD_PORT))
        if local is not None and not ipaddress.ip_address(local).is_loopback:
            return Route(target, local, interface_of(local))
    for name, address in interface_addresses():
        if not address.is_loopback and not address.is_link_local and _is_up(name):
            return Route(name, str(address), name)
    return None


def _is_up(name: str) -> bool:
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        raw = struct.pack("256s", name.encode()[:15])
        flags = struct.unpack("H", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, raw)[16:18])[0]
        return bool(flags & _IFF_UP) and not flags & _IFF_LOOPBACK
    return False


def choose(master_addr: str, spans_nodes: bool) -> Route:
    """The route this worker's collectives should use.

    Args:
        master_addr: ``MASTER_ADDR``.
        spans_nodes: whether the job has workers on other machines. Then a master that is
            reached over loopback (``MASTER_ADDR`` names this very node through a hostname
            that resolves to 127.x) says nothing the other nodes could use, so the interface
            of the default route stands in.
    """
    route = route_to(master_addr)
    local_only = route.address is not None and ipaddress.ip_address(route.address).is_loopback
    if spans_nodes and local_only:
        fallback = _default_route()
        if fallback is not None and fallback.interface:
            note = (
                f"{master_addr} is reached over loopback here, which the other nodes cannot "
                f"use; using the default route's interface"
            )
            return Route(master_addr, fallback.address, fallback.interface, note)
    return route


def configure(
    master_addr: str, spans_nodes: bool, environ: MutableMapping[str, str] | None = None
) -> tuple[Route, str]:
    """Sets ``GLOO_SOCKET_IFNAME`` and ``NCCL_SOCKET_IFNAME`` to the route's interface.

    A variable the user set is left alone. Returns the route and a line saying what was done
    (printed by the caller at verbose start-up).
    """
    environ = os.environ if environ is None else environ
    route = choose(master_addr, spans_nodes)
    given = {name: environ[name] for name in (GLOO_IFNAME, NCCL_IFNAME) if environ.get(name)}
    chosen = []
    if route.interface:
        for name in (GLOO_IFNAME, NCCL_IFNAME):
            if name not in given:
                environ[name] = route.interface
                chosen.append(f"{name}={route.interface}")
    said = [route.describe()]
    if chosen:
        said.append("set " + ", ".join(chosen))
    if given:
        said.append("kept " + ", ".join(f"{k}={v}" for k, v in given.items()) + " (set by you)")
    if not route.interface and not given:
        said.append(f"left {GLOO_IFNAME} unset: gloo picks an address from the hostname")
    return route, "; ".join(said)


class Beacon:
    """A listening TCP socket that accepts and closes: "this process is alive" for probes."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("", 0), family=socket.AF_INET, backlog=64)
        self.port = self._sock.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._serve, daemon=True, name="distkeras-beacon").start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):  # wakes the blocked accept(); close alone does not
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()


def probe(address: str, port: int, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """Knocks on a peer's beacon.

    Returns:
        "alive" (accepted), "gone" (refused: the host answers but the process is not there)
        or "unreachable" (no answer in time, or no route: the network between us is down).
    """
    try:
        with socket.create_connection((address, port), timeout=timeout_s):
            return "alive"
    except ConnectionRefusedError:
        return "gone"
    except OSError as error:
        if error.errno == errno.ECONNREFUSED:
            return "gone"
        return "unreachable"


def probe_all(targets: dict[int, tuple[str, int]], timeout_s: float = PROBE_TIMEOUT_S) -> dict:
    """``probe`` for each rank's (address, port), all at once; {rank: verdict}."""
    verdicts: dict[int, str] = {}

    def one(rank: int, address: str, port: int) -> None:
        verdicts[rank] = probe(address, port, timeout_s)

    threads = [
        threading.Thread(target=one, args=(rank, *target), daemon=True)
        for rank, target in targets.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s + 1.0)
    return {rank: verdicts.get(rank, "unreachable") for rank in targets}


def rank_ranges(ranks: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    spans: list[list[int]] = []
    for rank in sorted(set(ranks)):
        if spans and rank == spans[-1][1] + 1:
            spans[-1][1] = rank
        else:
            spans.append([rank, rank])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
