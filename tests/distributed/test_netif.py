"""netif: the interface that routes to MASTER_ADDR, the variables it sets, peer probes; and a
rendezvous that fails naming every worker's address and interface.

Interface lookups are checked against `ip -o addr` (an independent reference: iproute2).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys

import pytest

from distkeras.distributed import netif
from tests.distributed.jobs import REPO, finish_workers, free_port, start_workers, worker_env


def _ip_addresses() -> list[tuple[str, str]]:
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True).stdout
    pairs = []
    for line in out.splitlines():  # "1: lo    inet 127.0.0.1/8 scope host lo ..."
        fields = line.split()
        if fields[2] in ("inet", "inet6"):
            pairs.append((fields[1], fields[3].split("/")[0]))
    return pairs


def test_every_address_maps_to_its_interface():
    pairs = _ip_addresses()
    assert pairs, "ip -o addr listed nothing"
    for name, address in pairs:
        if ipaddress.ip_address(address).is_loopback:
            assert netif.interface_of(address) is not None
            continue
        assert netif.interface_of(address) == name, (address, name)


def test_route_to_each_local_address_and_loopback():
    assert netif.route_to("127.0.0.1") == netif.Route("127.0.0.1", "127.0.0.1", "lo")
    for name, address in _ip_addresses():
        ip = ipaddress.ip_address(address)
        if ip.version == 4 and not ip.is_loopback:
            route = netif.route_to(address)  # this node is the master: its own interface
            assert (route.address, route.interface) == (address, name)


def test_unresolvable_master_says_so():
    route = netif.route_to("no-such-host.invalid")
    assert route.interface is None and "cannot resolve 'no-such-host.invalid'" in route.note


def test_configure_sets_unset_variables_and_keeps_the_users():
    environ: dict[str, str] = {}
    route, said = netif.configure("127.0.0.1", spans_nodes=False, environ=environ)
    assert environ == {"GLOO_SOCKET_IFNAME": "lo", "NCCL_SOCKET_IFNAME": "lo"}
    assert said == (
        "reaches master 127.0.0.1 from 127.0.0.1 on interface lo; "
        "set GLOO_SOCKET_IFNAME=lo, NCCL_SOCKET_IFNAME=lo"
    )
    environ = {"GLOO_SOCKET_IFNAME": "eth9"}
    _, said = netif.configure("127.0.0.1", spans_nodes=False, environ=environ)
    assert environ == {"GLOO_SOCKET_IFNAME": "eth9", "NCCL_SOCKET_IFNAME": "lo"}
    assert said.endswith("set NCCL_SOCKET_IFNAME=lo; kept GLOO_SOCKET_IFNAME=eth9 (set by you)")


def test_loopback_master_on_a_multi_node_job_uses_a_real_interface():
    others = [(n, a) for n, a in _ip_addresses() if not ipaddress.ip_address(a).is_loopback]
    route = netif.choose("127.0.0.1", spans_nodes=True)
    if not others:  # nothing better exists: keep loopback rather than invent one
        assert route.interface == "lo"
        return
    assert (route.interface, route.address) in others
    assert "reached over loopback here" in route.note


def test_verbose_flag():
    assert netif.verbose({"DISTKERAS_VERBOSE": "1"}) and netif.verbose({"DISTKERAS_VERBOSE": "yes"})
    assert not netif.verbose({}) and not netif.verbose({"DISTKERAS_VERBOSE": "0"})


def test_probe_tells_alive_from_gone():
    beacon = netif.Beacon()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        verdicts = netif.probe_all(
            {0: ("127.0.0.1", beacon.port), 1: ("127.0.0.1", closed.getsockname()[1])}
        )
    assert verdicts == {0: "alive", 1: "gone"}
    beacon.close()
    assert netif.probe("127.0.0.1", beacon.port) == "gone"


@pytest.mark.parametrize(
    "ranks, expected", [([0, 1, 2, 5, 7, 8], "0-2, 5, 7-8"), ([3], "3"), ([], "")]
)
def test_rank_ranges(ranks, expected):
    assert netif.rank_ranges(ranks) == expected


def test_failed_rendezvous_names_each_worker_address_and_interface(tmp_path):
    # Three workers expected, two started: both fail at the rendezvous, saying who came.
    port = free_port()
    script = tmp_path / "join.py"
    script.write_text("from distkeras import distributed\ndistributed.init()\n")
    envs = [
        worker_env(
            RANK=str(rank),
            WORLD_SIZE="3",
            LOCAL_RANK=str(rank),
            LOCAL_WORLD_SIZE="3",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            DISTKERAS_TIMEOUT="3",
            DISTKERAS_BACKEND="torch",
        )  # fmt: skip
        for rank in range(2)
    ]
    for environ in envs:
        environ.pop("GLOO_SOCKET_IFNAME", None)
    results = finish_workers(start_workers(script, [], envs), timeout=60)
    host = socket.gethostname()
    for rank, (code, _, stderr) in enumerate(results):
        assert code != 0, stderr
        assert f"Rank {rank}: could not join the process group at 127.0.0.1:{port} with 3 " \
            "workers within 3 s." in stderr  # fmt: skip
        assert f"Workers that reached the store: ranks 0-1 on host {host}, 127.0.0.1 on lo." \
            in stderr  # fmt: skip
        assert "Never arrived: ranks 2." in stderr


def test_netif_imports_no_torch():
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('netif', sys.argv[1])\n"
        "module = sys.modules['netif'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert 'torch' not in sys.modules, 'netif imported torch'\n"
        "print(module.route_to('127.0.0.1').interface)\n"
    )
    path = REPO / "distkeras" / "distributed" / "netif.py"
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ""})  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == "lo", out.stderr
