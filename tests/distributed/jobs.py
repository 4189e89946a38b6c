"""Launching multi-process jobs from tests, each job once per test session.

Starting a worker costs seconds (importing torch); the checks themselves take milliseconds.
So the tests group their checks into a few jobs (``JOBS``), and ``job()`` runs each at most
once per session, even under pytest-xdist: the first test process that needs a job runs it
under a file lock, the others wait on the lock and read its recorded outcome.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"

# A bug that makes workers wait on each other fails a test in seconds, not after 300 s.
JOB_TIMEOUT_S = 120
COLLECTIVE_TIMEOUT_S = 60


@dataclass(frozen=True)
class Job:
    """``python -m launcher -n workers --backend backend scripts/script OUTDIR *args``."""

    workers: int
    backend: str
    script: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


_SHARED = (
    "comm_checks",
    "equivalence",
    "bn_checks",
    "reducer_checks",
    "inference_sync",
    "py_dataset_checks",
)
JOBS = {
    "single": Job(1, "torch", "suite.py", ("equivalence", "py_dataset_checks")),
    "torch2": Job(2, "torch", "suite.py", _SHARED),
    "torch3": Job(3, "torch", "suite.py", ("equivalence", "bn_checks")),
    "mpi2": Job(2, "mpi", "suite.py", _SHARED),
    "mpi3": Job(3, "mpi", "suite.py", ("equivalence", "bn_checks")),
    "failures_torch": Job(2, "torch", "failures.py", env=(("DISTKERAS_TIMEOUT", "2"),)),
    "failures_mpi": Job(2, "mpi", "failures.py", env=(("DISTKERAS_TIMEOUT", "2"),)),
}


@dataclass
class Outcome:
    """What a finished job left: exit code, output, timing, and its output folder."""

    returncode: int
    stdout: str
    stderr: str
    started: float
    ended: float
    outdir: Path

    def check(self) -> Outcome:
        assert self.returncode == 0, (
            f"job failed with exit code {self.returncode}\n--- stdout\n{self.stdout[-4000:]}"
            f"\n--- stderr\n{self.stderr[-6000:]}"
        )
        return self


def worker_env(**extra: str) -> dict[str, str]:
    """The environment for launched workers: CPU, one thread each, this checkout first."""
    env = dict(os.environ)
    for name in (
        "RANK",
        "WORLD_SIZE",
        "LOCAL_RANK",
        "LOCAL_WORLD_SIZE",
        "MASTER_ADDR",
        "MASTER_PORT",
        "DISTKERAS_LAUNCHER",
        "DISTKERAS_BACKEND",
        "PMI_RANK",
        "PMI_SIZE",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
    ):
        env.pop(name, None)
    for name in [n for n in env if n.startswith("SLURM_")]:
        env.pop(name)
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        DISTKERAS_DEVICE="cpu",
        OMP_NUM_THREADS="1",
        DISTKERAS_TIMEOUT=str(COLLECTIVE_TIMEOUT_S),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run(
    command: list[str],
    outdir: Path,
    env: dict[str, str] | None = None,
    timeout: float = JOB_TIMEOUT_S,
) -> Outcome:
    """Runs ``command`` in the repository root and returns its outcome."""
    outdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    proc = subprocess.run(
        command, cwd=REPO, env=env or worker_env(), capture_output=True, text=True, timeout=timeout
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr, started, time.time(), outdir)


def launch_command(workers: int, backend: str, script: Path, *args: str) -> list[str]:
    """``python -m launcher -n N --backend B script args``."""
    return [
        sys.executable,
        "-m",
        "launcher",
        "-n",
        str(workers),
        "--backend",
        backend,
        str(script),
        *args,
    ]


def _shared_root(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    # Under xdist every test process has its own basetemp below one shared parent.
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(tmp_path_factory, name: str, run_in) -> Outcome:
    """``run_in(outdir) -> Outcome`` once per session (across xdist workers); its outcome."""
    root = _shared_root(tmp_path_factory) / "distkeras_jobs"
    root.mkdir(exist_ok=True)
    record = root / f"{name}.json"
    with _locked(root / f"{name}.lock"):
        if record.exists():
            fields = json.loads(record.read_text())
            return Outcome(**{**fields, "outdir": Path(fields["outdir"])})
        outcome = run_in(root / name)
        fields = {**outcome.__dict__, "outdir": str(outcome.outdir)}
        record.write_text(json.dumps(fields))
        return outcome


def job(tmp_path_factory, name: str) -> Outcome:
    """Runs job ``name`` of ``JOBS`` once per session and returns its (unchecked) outcome."""
    spec = JOBS[name]

    def run_in(outdir: Path) -> Outcome:
        command = launch_command(spec.workers, spec.backend, SCRIPTS / spec.script,
                                 str(outdir), *spec.args)  # fmt: skip
        return run(command, outdir, worker_env(**dict(spec.env)))

    return once(tmp_path_factory, name, run_in)


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_workers(script: Path, args: list[str], envs: list[dict[str, str]]) -> list:
    """Starts one process per environment without any launcher (as srun or a cluster would)."""
    return [
        subprocess.Popen([sys.executable, str(script), *args], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for env in envs
    ]  # fmt: skip


def finish_workers(procs: list, timeout: float = JOB_TIMEOUT_S) -> list[tuple[int, str, str]]:
    """Waits for every process (killing them all if one overruns): (code, stdout, stderr)."""
    deadline = time.time() + timeout
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.time()))
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
