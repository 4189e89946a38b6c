"""Per-step logs under 2 workers are the global batch's (MPI, then torch).

``scripts/batch_logs.py`` records what ``on_train_batch_end`` receives: the running loss and
each output's loss must equal one process's on every rank (the values ride in the gradient
all-reduce), and TerminateOnNaN, fed a NaN that only one worker's part of a batch holds,
stops every rank after that batch, as on one process, without a collective mismatch.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from tests.distributed import jobs

SPECS = {
    "batch_logs_single": jobs.Job(1, "torch", "batch_logs.py"),
    "batch_logs_mpi2": jobs.Job(2, "mpi", "batch_logs.py"),
    "batch_logs_torch2": jobs.Job(2, "torch", "batch_logs.py"),
}
LOSS_KEYS = ("loss", "value_loss", "sign_loss")


def _results(tmp_path_factory, name: str) -> list[dict]:
    spec = SPECS[name]

    def run_in(outdir):
        command = jobs.launch_command(
            spec.workers, spec.backend, jobs.SCRIPTS / spec.script, str(outdir)
        )
        return jobs.run(command, outdir, jobs.worker_env())

    outcome = jobs.once(tmp_path_factory, name, run_in).check()
    ranks = []
    for rank in range(spec.workers):
        with open(outcome.outdir / f"batch_logs_rank{rank}.pkl", "rb") as f:
            ranks.append(pickle.load(f))
    return ranks


@pytest.mark.parametrize("name", ["batch_logs_mpi2", "batch_logs_torch2"])
def test_every_rank_logs_the_global_batch_loss(name, tmp_path_factory):
    (single,) = _results(tmp_path_factory, "batch_logs_single")
    expected = single["two_outputs"]
    assert len(expected) == 6 and all(set(LOSS_KEYS) <= set(step) for step in expected)
    for rank, result in enumerate(_results(tmp_path_factory, name)):
        got = result["two_outputs"]
        assert len(got) == len(expected), f"rank {rank}"
        for index, (ours, one) in enumerate(zip(got, expected)):
            for key in LOSS_KEYS:
                np.testing.assert_allclose(
                    ours[key], one[key], rtol=1e-5, err_msg=f"rank {rank} step {index} {key}"
                )


@pytest.mark.parametrize("name", ["batch_logs_mpi2", "batch_logs_torch2"])
def test_terminate_on_nan_stops_every_rank_after_the_same_batch(name, tmp_path_factory):
    (single,) = _results(tmp_path_factory, "batch_logs_single")
    expected = single["nan"]
    assert len(expected) == 3 and math.isnan(expected[-1]["loss"])  # sample 21: batch 3
    for rank, result in enumerate(_results(tmp_path_factory, name)):
        got = result["nan"]
        assert len(got) == len(expected), f"rank {rank} stopped after {len(got)} batches"
        assert math.isnan(got[-1]["loss"]), f"rank {rank}"
        np.testing.assert_allclose(
            [s["loss"] for s in got[:-1]], [s["loss"] for s in expected[:-1]], rtol=1e-5
        )
