"""Two hosts whose hostnames resolve to loopback train together without interface variables.

Two network namespaces joined by a veth pair stand in for two machines (tests/distributed/
netns.py). One `distkeras-launch -n 2 --nnodes 2` per namespace, with no GLOO_SOCKET_IFNAME or
NCCL_SOCKET_IFNAME set: each worker finds the interface that routes to MASTER_ADDR and pins gloo
to it, so the four workers train to the weights of one process. Then, while they all-reduce,
the link is cut: both nodes end within DISTKERAS_TIMEOUT + 10 s, naming the unreachable peer.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.distributed import netns
from tests.distributed.jobs import REPO, SCRIPTS, worker_env

# One module fixture runs the two-host job: keep its tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("multihost")

JOB = SCRIPTS / "multihost_job.py"
TIMEOUT_S = 10  # DISTKERAS_TIMEOUT: rendezvous and collectives
PORT = 29531


def _launcher(node: netns.Node, node_rank: int, master: str, outdir, log) -> subprocess.Popen:
    command = node.command(
        [sys.executable, "-m", "launcher", "-n", "2", "--nnodes", "2",
         "--node-rank", str(node_rank), "--master-addr", master, "--master-port", str(PORT),
         "--backend", "torch", str(JOB), str(outdir), "--hold"]
    )  # fmt: skip
    environ = worker_env(DISTKERAS_TIMEOUT=str(TIMEOUT_S), DISTKERAS_VERBOSE="1")
    for name in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME", "TP_SOCKET_IFNAME"):
        environ.pop(name, None)
    return subprocess.Popen(command, cwd=REPO, env=environ, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def _wait_for(paths, procs, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not all(p.exists() for p in paths):
        ended = [p.returncode for p in procs if p.poll() is not None]
        assert not ended and time.monotonic() < deadline, f"job ended early or stalled: {ended}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def two_hosts():
    # Not under pytest's basetemp: concurrent pytest runs prune each other's.
    with tempfile.TemporaryDirectory(prefix="distkeras-multihost-") as root:
        yield _run_two_hosts(Path(root) / "job", Path(root) / "reference")


def _run_two_hosts(outdir: Path, reference_dir: Path) -> dict:
    outdir.mkdir()
    reference_dir.mkdir()
    reference = subprocess.Popen([sys.executable, str(JOB), str(reference_dir)], cwd=REPO,
                                 env=worker_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)  # fmt: skip
    logs = [outdir / "node0.log", outdir / "node1.log"]
    ends: dict[int, float] = {}
    with netns.two_nodes() as (a, b), open(logs[0], "w") as log0, open(logs[1], "w") as log1:
        procs = [_launcher(a, 0, a.address, outdir, log0), _launcher(b, 1, a.address, outdir, log1)]
        try:
            holding = [outdir / f"holding_rank{r}" for r in range(4)]
            _wait_for([outdir / "weights.npz", *holding], procs, limit_s=90)
            netns.cut(a)
            cut_at = time.monotonic()
            while len(ends) < 2 and time.monotonic() < cut_at + TIMEOUT_S + 30:
                for i, proc in enumerate(procs):
                    if i not in ends and proc.poll() is not None:
                        ends[i] = time.monotonic() - cut_at
                time.sleep(0.05)
        finally:
            for proc in procs:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    reference_output = reference.communicate(timeout=120)[0]
    assert reference.returncode == 0, reference_output[-3000:]
    return {
        "nodes": (a, b),
        "codes": [proc.returncode for proc in procs],
        "ends": ends,
        "logs": [log.read_text() for log in logs],
        "outdir": outdir,
        "reference_dir": reference_dir,
    }


def test_two_hosts_train_equal_to_one_process(two_hosts):
    with np.load(two_hosts["outdir"] / "weights.npz") as got, \
         np.load(two_hosts["reference_dir"] / "weights.npz") as want:  # fmt: skip
        assert len(got.files) == len(want.files) == 4
        for key in want.files:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)
    history = json.loads((two_hosts["outdir"] / "history.json").read_text())
    reference = json.loads((two_hosts["reference_dir"] / "history.json").read_text())
    np.testing.assert_allclose(history["loss"], reference["loss"], rtol=1e-5)


def test_each_worker_says_which_interface_it_chose(two_hosts):
    a, b = two_hosts["nodes"]
    for log, node, ranks in zip(two_hosts["logs"], (a, b), ((0, 1), (2, 3))):
        for rank in ranks:
            said = (
                f"distkeras: rank {rank} on {os.uname().nodename}: reaches master {a.address} "
                f"from {node.address} on interface {node.interface}; "
                f"set GLOO_SOCKET_IFNAME={node.interface}, NCCL_SOCKET_IFNAME={node.interface}"
            )
            assert said in log, log[-3000:]


def test_cut_link_ends_both_nodes_naming_the_unreachable_peer(two_hosts):
    a, b = two_hosts["nodes"]
    ends, logs = two_hosts["ends"], two_hosts["logs"]
    assert sorted(ends) == [0, 1], (
        f"a node did not end: {ends}\n{logs[0][-2000:]}\n{logs[1][-2000:]}"
    )
    assert max(ends.values()) <= TIMEOUT_S + 10, ends
    assert all(code != 0 for code in two_hosts["codes"]), two_hosts["codes"]
    # Each side names the other node's ranks, address and interface as unreachable.
    for log, peer, ranks in ((logs[0], b, "2-3"), (logs[1], a, "0-1")):
        where = f"host {os.uname().nodename}, {peer.address} on {peer.interface}"
        named = f"Unreachable peer: ranks {ranks} ({where})"
        assert named in log, log[-4000:]
