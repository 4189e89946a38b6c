"""Elastic membership through torchrun: a node leaves, the survivors resume exactly.

Two torchrun agents on loopback form one c10d rendezvous (`--nnodes 1:2`): node 0 with two
workers, node 1 with one. In epoch 2 node 1's agent and worker are SIGKILLed (the node is gone).
The survivors' collectives fail, their agent restarts them (TORCHELASTIC_RESTART_COUNT=1), the
rendezvous closes without node 1, and the two remaining workers resume from BackupAndRestore's
end-of-epoch backup, written by three workers, to the weights of an uninterrupted one-process
run. Membership is torchrun's job; ours is that `restart_count()` sees the restart and that the
resumed training is exact.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from distkeras.distributed import env
from tests.faults import (
    EPOCHS,
    REPO,
    SCRIPTS,
    STEPS_PER_EPOCH,
    Job,
    assert_same_history,
    assert_same_weights,
    outputs,
    worker_env,
)

ELASTIC_JOB = SCRIPTS / "elastic_job.py"
# Small rendezvous timeouts keep the test short: a dead node is dropped after two missed
# one-second heartbeats, and a round closes 5 s after its minimum of one node has joined
# (long enough for the other agent, importing torch on a loaded machine, to join the first).
RDZV_CONF = ",".join(
    [
        "join_timeout=60",
        "last_call_timeout=5",
        "close_timeout=5",
        "keep_alive_interval=1",
        "keep_alive_max_attempt=2",
    ]
)


def test_restart_count_reads_torchelastic():
    torchrun = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}
    assert env.detect(torchrun).restart_count == 0
    assert env.detect({**torchrun, "TORCHELASTIC_RESTART_COUNT": "2"}).restart_count == 2
    # A count inherited from a requeued batch job adds to torchrun's.
    both = {**torchrun, "TORCHELASTIC_RESTART_COUNT": "2", "DISTKERAS_RESTART_COUNT": "3"}
    assert env.detect(both).restart_count == 5
    # Our launcher's count is the only one under our launcher.
    ours = {**both, "DISTKERAS_LAUNCHER": "1"}
    assert env.detect(ours).restart_count == 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _agent(outdir: Path, port: int, nproc: int, is_host: bool) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", "1:2", "--nproc-per-node", str(nproc), "--max-restarts", "2",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "elastic",
        "--rdzv-conf", f"{RDZV_CONF},is_host={str(is_host).lower()}",
        "--monitor-interval", "0.2",
        str(ELASTIC_JOB), str(outdir),
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=REPO,
        env={**worker_env(), "ELASTIC_DOOMED": "0" if is_host else "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _attempts(outdir: Path) -> dict[tuple[int, int], dict]:
    found = {}
    for path in outdir.glob("attempt*_rank*.json"):
        attempt, rank = path.stem.removeprefix("attempt").split("_rank")
        found[(int(attempt), int(rank))] = json.loads(path.read_text())
    return found


def _kill_leftovers(agents: list[subprocess.Popen], outdir: Path) -> None:
    for agent in agents:
        with contextlib.suppress(OSError):
            os.killpg(agent.pid, signal.SIGKILL)
    for info in _attempts(outdir).values():  # workers run in sessions of their own
        with contextlib.suppress(OSError):
            os.kill(info["pid"], signal.SIGKILL)


def test_a_node_leaves_and_the_survivors_resume_exactly():
    # Not under pytest's basetemp: concurrent pytest runs prune each other's.
    with tempfile.TemporaryDirectory(prefix="distkeras-elastic-") as root:
        _node_leaves(Path(root) / "job", Path(root) / "reference")


def _node_leaves(outdir: Path, reference_dir: Path) -> None:
    outdir.mkdir()
    reference = Job([sys.executable, str(ELASTIC_JOB), str(reference_dir)])
    port = _free_port()
    # Node 1 starts first and retries until node 0's store is up, so both join one round.
    node_1 = _agent(outdir, port, nproc=1, is_host=False)
    node_0 = _agent(outdir, port, nproc=2, is_host=True)
    agents = [node_0, node_1]
    try:
        try:
            output, _ = node_0.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            _kill_leftovers(agents, outdir)
            output = node_0.communicate()[0]
            raise AssertionError(f"torchrun timed out:\n{output[-5000:]}") from None
        assert node_0.returncode == 0, output[-5000:]
        node_1_output = node_1.communicate(timeout=10)[0]
        assert node_1.returncode == -signal.SIGKILL, node_1_output[-3000:]
    finally:
        _kill_leftovers(agents, outdir)

    worlds = {key: info["world_size"] for key, info in _attempts(outdir).items()}
    counts = {key: info["restart_count"] for key, info in _attempts(outdir).items()}
    # Three workers on two nodes, then the two survivors at the smaller world size.
    assert worlds == {(0, 0): 3, (0, 1): 3, (0, 2): 3, (1, 0): 2, (1, 1): 2}, worlds
    assert counts == {key: key[0] for key in worlds}

    reference.check()
    expected, got = outputs(reference_dir), outputs(outdir)
    assert_same_weights(got["weights"], expected["weights"])
    # The survivors resumed from the backup written at the end of epoch 1.
    assert got["batches"] == (EPOCHS - 1) * STEPS_PER_EPOCH
    assert_same_history(got["history"], expected["history"], last_epochs=EPOCHS - 1)
