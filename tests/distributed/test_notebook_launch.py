"""distkeras.distributed.launch: N workers from a Python session, fail-fast, on both backends.

Each backend runs one session (tests/distributed/scripts/notebook_session.py) that imports
torch first, defines its functions in __main__, and calls launch() four times: a 2-worker fit
(compared with the same fit in the session's own process), then a worker that raises, one
that SIGKILLs itself and (default backend) one that calls sys.exit(3), each while the other
waits in a collective. The default backend is what launch() picks here (MPI on CPU when
installed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.distributed.jobs import REPO, SCRIPTS, worker_env

# Both sessions start from the first test that asks: keep its tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("notebook_launch")

FAIL_FAST_S = 10  # from the failure to launch() raising: seconds, not the collective timeout


BACKENDS = ("default", "torch")
_RUNNING: dict[str, tuple[subprocess.Popen, tempfile.TemporaryDirectory]] = {}
_SESSIONS: dict[str, dict] = {}


def _start_sessions() -> None:
    # Both sessions at once: much of their time is spent waiting on worker start-up.
    for backend in BACKENDS:
        # Not under pytest's basetemp: concurrent pytest runs prune each other's.
        outdir = tempfile.TemporaryDirectory(prefix="distkeras-notebook-")
        command = [sys.executable, str(SCRIPTS / "notebook_session.py"), backend, outdir.name]
        # The collective timeout is long: a fast failure can only come from launch().
        with open(Path(outdir.name) / "out.txt", "w") as out:  # files: no pipe fills up
            proc = subprocess.Popen(command, cwd=REPO, env=worker_env(DISTKERAS_TIMEOUT="120"),
                                    stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        _RUNNING[backend] = (proc, outdir)


def _session(backend: str) -> dict:
    """The report of the session for ``backend`` (both run once per test run)."""
    if backend not in _SESSIONS:
        if not _RUNNING:
            _start_sessions()
        proc, outdir = _RUNNING[backend]
        try:
            proc.wait(timeout=300)
            output = (Path(outdir.name) / "out.txt").read_text()
        finally:
            proc.kill()
            outdir.cleanup()
        lines = [line for line in output.splitlines() if line.startswith("REPORT ")]
        assert proc.returncode == 0 and lines, output[-6000:]
        _SESSIONS[backend] = json.loads(lines[-1].removeprefix("REPORT "))
    return _SESSIONS[backend]


@pytest.fixture(scope="module", params=BACKENDS)
def report(request):
    return request.param, _session(request.param)


def test_returns_rank_0_result_equal_to_one_process(report):
    backend, got = report
    trained, alone = got["trained"], got["one_process"]
    assert (trained["rank"], trained["world_size"]) == (0, 2)
    assert trained["backend"] == ("gloo" if backend == "torch" else "mpi")
    np.testing.assert_allclose(trained["loss"], alone["loss"], rtol=1e-5)
    for ours, reference in zip(trained["weights"], alone["weights"], strict=True):
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)


def _failed_fast(record: dict) -> None:
    assert record.get("error_type") == "WorkerError", record
    assert record["rank"] == 1, record["message"]
    assert record["message"].startswith("Worker rank 1 "), record["message"]
    assert record["after_failure_s"] < FAIL_FAST_S, record
    assert record["workers_seen"] == 2 and record["left_behind"] == [], record


def test_worker_error_is_raised_with_its_traceback(report):
    record = report[1]["raises"]
    _failed_fast(record)
    assert "raised ValueError: bad value on rank 1" in record["message"]
    # The worker's own traceback: the function and line that raised.
    assert "Traceback of rank 1" in record["message"]
    assert 'notebook_session.py", line ' in record["message"]
    assert ', in raises\n    raise ValueError("bad value on rank 1")\n' in record["message"]
    assert record["cause"] == "ValueError('bad value on rank 1')"
    assert record["exitcode"] == 1


def test_killed_worker_is_named(report):
    backend, got = report
    record = got["killed"]
    _failed_fast(record)
    if backend == "torch":  # our own child: its exit status is known exactly
        assert "was killed by SIGKILL" in record["message"]
        assert record["exitcode"] == -9
    else:  # under mpiexec: it vanished without a report
        assert "ended without reporting an error" in record["message"]


def test_sys_exit_in_a_worker_is_a_failure():
    # On the default backend only: sys.exit is where MPI used to hang (in MPI_Finalize).
    record = _session("default")["exits"]
    _failed_fast(record)
    assert "exited with code 3 (sys.exit)" in record["message"]
    assert record["exitcode"] == 3


def test_arguments_are_validated():
    from distkeras.distributed import launch

    with pytest.raises(ValueError, match="num_workers must be an integer >= 1. Received: 0"):
        launch(print, num_workers=0)
    with pytest.raises(ValueError, match="Received: backend='nccl2'"):
        launch(print, num_workers=1, backend="nccl2")
    with pytest.raises(TypeError, match="function must be callable"):
        launch(3)


SLEEPER = """
import os, sys, time
from pathlib import Path
from distkeras import distributed

def sleeper(outdir):
    Path(outdir, f"pid{distributed.rank()}").write_text(str(os.getpid()))
    time.sleep(120)

distributed.launch(sleeper, sys.argv[1], num_workers=2)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_end_when_the_calling_process_is_killed():
    with tempfile.TemporaryDirectory(prefix="distkeras-orphans-") as outdir:
        _caller_killed(Path(outdir))


def _caller_killed(tmp_path: Path) -> None:
    # The default backend: under mpiexec the workers are not even the caller's children.
    session = subprocess.Popen([sys.executable, "-c", SLEEPER, str(tmp_path)], cwd=REPO,
                               env=worker_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    pid_files = [tmp_path / "pid0", tmp_path / "pid1"]
    deadline = time.monotonic() + 90
    while not all(path.exists() for path in pid_files):
        assert session.poll() is None and time.monotonic() < deadline, "workers never started"
        time.sleep(0.05)
    pids = [int(path.read_text()) for path in pid_files]
    session.kill()  # SIGKILL: no finally, no atexit in the caller
    session.wait()
    deadline = time.monotonic() + FAIL_FAST_S
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if _running(pid)], "workers outlived the calling process"
