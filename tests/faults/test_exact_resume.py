"""Exact resume with Dropout: after SIGKILL (restarted under --max-restarts 1) or a preemption,
from an epoch backup or a periodic `save_freq=N` one, on the same or another worker count.

Every case runs tests/faults/scripts/dropout_job.py (Dense-Dropout-GaussianNoise-Dense, 3
epochs of 20 steps, the fault after epoch 2, step 6) and must end with the weights of one
uninterrupted single-process run: each sample's mask is a function of (seed, layer, step,
sample index), so neither the restart nor the worker count shows. The resumed run's history
(the epochs it ran, the resumed one included) must equal the uninterrupted run's, so a periodic
backup must resume at the step after the one it saved, with that epoch's loss/metric sums.
"""

import json
import signal
import sys

import numpy as np
import pytest

from distkeras.training import preemption
from tests.faults import SCRIPTS, Job, launcher, outputs

# The uninterrupted reference runs once per process: keep its tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("exact_resume")

SCRIPT = SCRIPTS / "dropout_job.py"
EPOCHS, STEPS = 3, 20
# 1 and N workers sum gradients in different orders: float tolerance, as the 1 = N tests.
ATOL, RTOL = 2e-5, 1e-4


def dropout_job(outdir, *options, workers=None, backend="torch", launcher_args=()) -> Job:
    script = [str(SCRIPT), str(outdir), *map(str, options)]
    if workers is None:
        return Job([sys.executable, *script])
    return Job(launcher("-n", workers, "--backend", backend, *launcher_args, *script))


_REFERENCE: dict = {}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The uninterrupted run in one process (by 1 = N, every worker count's result too)."""
    if not _REFERENCE:
        outdir = tmp_path_factory.mktemp("dropout-reference")
        dropout_job(outdir).check(0)
        _REFERENCE.update(outputs(outdir))
    return _REFERENCE


def assert_matches(got: dict, expected: dict, trained_steps: int, last_epochs: int) -> None:
    assert got["batches"] == trained_steps
    assert len(got["weights"]) == len(expected["weights"]) == 4
    for a, b in zip(got["weights"], expected["weights"]):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    assert sorted(got["history"]) == sorted(expected["history"]) == ["loss", "mae"]
    for key, values in expected["history"].items():
        assert len(got["history"][key]) == last_epochs, (key, got["history"][key])
        np.testing.assert_allclose(got["history"][key], values[-last_epochs:], rtol=RTOL)


def _position(outdir) -> dict:
    return json.loads((outdir / "backup" / "training_metadata.json").read_text())


# save_freq=3 counts batches across epochs: the last backup before the fault (epoch 2, step 6,
# global batch 26) came after global batch 24 (epoch 2, step 4), so 24 steps are not redone.
PERIODIC_DONE = 24


@pytest.mark.parametrize(
    "backend, save_freq, done",
    [("mpi", None, STEPS), ("mpi", 3, PERIODIC_DONE), ("torch", 3, PERIODIC_DONE)],
    ids=["mpi-epoch-backup", "mpi-periodic-backup", "torch-periodic-backup"],
)
def test_sigkill_and_restart_resumes_exactly(backend, save_freq, done, reference, tmp_path):
    options = ["--kill-rank", 1] + (["--save-freq", save_freq] if save_freq else [])
    job = dropout_job(
        tmp_path, *options, workers=2, backend=backend, launcher_args=["--max-restarts", 1]
    )
    _, stderr = job.check(0)
    assert "restarting all workers (restart 1/1)" in stderr
    assert (tmp_path / "killed").exists()
    assert_matches(outputs(tmp_path), reference, EPOCHS * STEPS - done, last_epochs=EPOCHS - 1)
    assert not (tmp_path / "backup").exists()


def test_preempted_on_two_workers_resumes_exactly_on_one(reference, tmp_path):
    ready = tmp_path / "ready"
    job = dropout_job(tmp_path, "--signal-ready", ready, workers=2)
    job.signal_when(ready, signal.SIGTERM)
    job.check(preemption.REQUEUE_EXIT_CODE)
    position = _position(tmp_path)
    assert position["epoch"] == 1 and position["batch"] >= 5
    done = STEPS + position["batch"] + 1
    dropout_job(tmp_path).check(0)  # the rerun: one plain process
    assert_matches(outputs(tmp_path), reference, EPOCHS * STEPS - done, last_epochs=EPOCHS - 1)


def test_periodic_backup_of_one_process_resumes_exactly_on_two_workers(reference, tmp_path):
    killed = dropout_job(tmp_path, "--kill-rank", 0, "--save-freq", 3)
    code, _, _ = killed.result()
    assert code == -signal.SIGKILL
    # The backup holds the next step of epoch 2 (batch index 3 done).
    assert _position(tmp_path) == {"epoch": 1, "batch": 3}
    dropout_job(tmp_path, "--save-freq", 3, workers=2).check(0)
    got = outputs(tmp_path)
    assert_matches(got, reference, EPOCHS * STEPS - PERIODIC_DONE, last_epochs=EPOCHS - 1)
