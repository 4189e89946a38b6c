"""``examples/train.py`` runs unchanged under every way of starting workers, same result.

Modes: plain python, distkeras-launch (torch and MPI backends), torchrun, MPICH's mpiexec,
and a SLURM step simulated by starting the tasks ourselves with srun's variables. Every mode
must train the very same model as one process (same seed, global batch, sharded data).
"""

import sys
import time

import numpy as np
import pytest

from launcher.mpi import find_mpiexec
from tests.distributed import jobs
from tests.faults.scripts.fake_srun import free_job_id

TRAIN = jobs.REPO / "examples" / "train.py"
# Tiny: 96 samples (86 for training, global batches of 16 with a last one of 6), 2 epochs.
ARGS = ["--epochs", "2", "--samples", "96", "--batch-size", "16", "--verbose", "0"]
WORKERS = 2


def _plain(outdir):
    return jobs.run([sys.executable, str(TRAIN), *ARGS, "--save", str(outdir / "w.npz")],
                    outdir)  # fmt: skip


def _launcher(backend):
    def run_in(outdir):
        command = jobs.launch_command(WORKERS, backend, TRAIN, *ARGS, "--save",
                                      str(outdir / "w.npz"))  # fmt: skip
        return jobs.run(command, outdir)

    return run_in


def _torchrun(outdir):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", str(WORKERS), str(TRAIN), *ARGS, "--save",
               str(outdir / "w.npz")]  # fmt: skip
    return jobs.run(command, outdir)


def _mpiexec(outdir):
    mpiexec = find_mpiexec()
    assert mpiexec is not None, "mpiexec not found: pip install distkeras[mpi]"
    command = [mpiexec, "-n", str(WORKERS), sys.executable, str(TRAIN), *ARGS, "--save",
               str(outdir / "w.npz")]  # fmt: skip
    return jobs.run(command, outdir)


def _slurm(outdir):
    outdir.mkdir(parents=True, exist_ok=True)
    job_id = str(free_job_id())
    envs = [
        jobs.worker_env(SLURM_PROCID=str(rank), SLURM_NTASKS=str(WORKERS),
                        SLURM_LOCALID=str(rank), SLURM_STEP_ID="0", SLURM_JOB_ID=job_id,
                        SLURM_STEP_NODELIST="localhost")
        for rank in range(WORKERS)
    ]  # fmt: skip
    started = time.time()
    procs = jobs.start_workers(TRAIN, [*ARGS, "--save", str(outdir / "w.npz")], envs)
    results = jobs.finish_workers(procs)
    code = next((c for c, _, _ in results if c != 0), 0)
    return jobs.Outcome(code, "".join(r[1] for r in results), "".join(r[2] for r in results),
                        started, time.time(), outdir)  # fmt: skip


MODES = {
    "distkeras-launch torch": _launcher("torch"),
    "distkeras-launch mpi": _launcher("mpi"),
    "torchrun": _torchrun,
    "mpiexec": _mpiexec,
    "slurm step": _slurm,
}


def load(outcome) -> dict:
    with np.load(outcome.outdir / "w.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    outcome = jobs.once(tmp_path_factory, "train_plain", _plain).check()
    assert "1 worker(s)" in outcome.stdout
    return load(outcome)


def test_plain_python_trains(plain):
    assert [plain[f"arr_{i}"].shape for i in range(6)] == [
        (8, 64), (64,), (64, 64), (64,), (64, 3), (3,)
    ]  # fmt: skip
    assert 0.0 < float(plain["loss"]) < np.log(3)  # learned something in 12 steps


@pytest.mark.parametrize("mode", list(MODES))
def test_mode_trains_the_same_model(mode, plain, tmp_path_factory):
    name = "train_" + mode.replace(" ", "_").replace("-", "_")
    outcome = jobs.once(tmp_path_factory, name, MODES[mode]).check()
    # Rank 0 alone reports, and it saw every worker.
    assert outcome.stdout.count("worker(s)") == 1, outcome.stdout
    assert f"{WORKERS} worker(s)" in outcome.stdout
    result = load(outcome)
    assert sorted(result) == sorted(plain)
    for key in plain:
        np.testing.assert_allclose(result[key], plain[key], rtol=1e-4, atol=2e-5, err_msg=key)
