"""Fault tests: real launcher and worker processes, tiny models, restarts and preemption.

Helpers shared by the test files. Starting a worker costs seconds (importing torch), so the
uninterrupted reference runs are started once per test session, in the background, and
shared by every test that compares against them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
TINY_JOB = SCRIPTS / "tiny_job.py"
LIGHT_WORKER = SCRIPTS / "light_worker.py"
TIMEOUT_S = 120
EPOCHS, STEPS_PER_EPOCH = 3, 20  # tiny_job.py: 320 samples, global batch 16


def worker_env() -> dict[str, str]:
    """CPU, one thread per worker, this checkout first, no outer launcher or SLURM job."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    for name in (
        "RANK",
        "WORLD_SIZE",
        "LOCAL_RANK",
        "LOCAL_WORLD_SIZE",
        "MASTER_ADDR",
        "MASTER_PORT",
        "DISTKERAS_LAUNCHER",
        "DISTKERAS_BACKEND",
        "DISTKERAS_RESTART_COUNT",
        "PMI_RANK",
        "PMI_SIZE",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
    ):
        env.pop(name, None)
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        DISTKERAS_DEVICE="cpu",
        OMP_NUM_THREADS="1",
        DISTKERAS_TIMEOUT="60",
        PYTHONUNBUFFERED="1",
    )
    return env


def launcher(*args) -> list[str]:
    """`python -m launcher ARGS` (the distkeras-launch command)."""
    return [sys.executable, "-m", "launcher", *map(str, args)]


class Job:
    """A started process; `result()` waits for it and returns (returncode, stdout, stderr)."""

    def __init__(self, command: list[str], **extra_env: str):
        self.command = command
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            env={**worker_env(), **extra_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._result = None

    def result(self, timeout: float = TIMEOUT_S) -> tuple[int, str, str]:
        if self._result is None:
            try:
                stdout, stderr = self.proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                stdout, stderr = self.proc.communicate()
                raise AssertionError(f"{self.command} timed out:\n{stdout}\n{stderr}") from None
            self._result = (self.proc.returncode, stdout, stderr)
        return self._result

    def check(self, expected: int = 0) -> tuple[str, str]:
        code, stdout, stderr = self.result()
        assert code == expected, (
            f"{self.command} exited {code}, expected {expected}\n--- stdout\n{stdout[-3000:]}"
            f"\n--- stderr\n{stderr[-5000:]}"
        )
        return stdout, stderr

    def wait_for(self, path: Path) -> None:
        """Waits until the job creates `path` (fails, showing its output, if it ends first)."""
        deadline = time.monotonic() + TIMEOUT_S
        while not path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                code, _, stderr = self.result()
                raise AssertionError(f"{path.name} never appeared (exit {code}):\n{stderr}")
            time.sleep(0.02)

    def signal_when(self, ready: Path, sig: int, to_writer: bool = False) -> None:
        """Sends `sig` once the file `ready` exists: to the job, or to the pid written there."""
        self.wait_for(ready)
        os.kill(int(ready.read_text()) if to_writer else self.proc.pid, sig)


def tiny_job(outdir: Path, *options, workers: int | None = None, launcher_args=()) -> Job:
    """Starts tiny_job.py writing to `outdir`: plain python, or under the launcher."""
    script = [str(TINY_JOB), str(outdir), *map(str, options)]
    if workers is None:
        return Job([sys.executable, *script])
    return Job(launcher("-n", workers, "--backend", "torch", *launcher_args, *script))


_REFERENCES: dict[tuple, tuple[Job, Path]] = {}


def start_reference(workers: int | None, *options) -> None:
    """Starts (once per session) the uninterrupted run: plain python, or N launched workers.

    ``options``: tiny_job.py options that change what is trained (``--custom-step KIND``).
    """
    key = (workers, *map(str, options))
    if key not in _REFERENCES:
        outdir = Path(tempfile.mkdtemp(prefix="distkeras-fault-reference-"))
        _REFERENCES[key] = (tiny_job(outdir, *options, workers=workers), outdir)


def reference(workers: int | None, *options) -> dict:
    """The uninterrupted run's final weights and history (waits for it)."""
    start_reference(workers, *options)
    job, outdir = _REFERENCES[(workers, *map(str, options))]
    job.check()
    return outputs(outdir)


def outputs(outdir: Path) -> dict:
    """What tiny_job.py's rank 0 wrote at the end of a completed run."""
    with np.load(outdir / "weights.npz") as weights:
        arrays = [weights[f"arr_{i}"] for i in range(len(weights.files))]
    return {
        "weights": arrays,
        "history": json.loads((outdir / "history.json").read_text()),
        "batches": json.loads((outdir / "batches.json").read_text()),
    }


def assert_same_weights(actual: list, expected: list) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def assert_same_history(actual: dict, expected: dict, last_epochs: int) -> None:
    """`actual` (a resumed run's history) equals the last epochs of `expected`."""
    assert sorted(actual) == sorted(expected)
    for key in expected:
        assert len(actual[key]) == last_epochs, (key, actual[key])
        np.testing.assert_allclose(actual[key], expected[key][-last_epochs:], rtol=1e-5)


def restart_counts(outdir: Path) -> dict[tuple[int, int], int]:
    """{(attempt, rank): restart count the script saw} from the attempt files."""
    counts = {}
    for path in outdir.glob("attempt*_rank*"):
        if path.suffix == ".tmp":
            continue
        attempt, rank = path.stem.removeprefix("attempt").split("_rank")
        text = path.read_text()
        seen = json.loads(text)["restart_count"] if text.startswith("{") else int(text)
        counts[(int(attempt), int(rank))] = seen
    return counts
