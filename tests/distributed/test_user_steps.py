"""A model's own train_step under 2 workers trains the global-batch model (MPI, then torch).

``scripts/user_steps.py`` runs the keras.io guide's train_step override, the lower-level one
with its own metrics, a two-optimizer step, a compute_loss override, an add_loss-only
model and the guide's step on a model with Dropout, on 1 worker and on 2: everything must
agree (float tolerance), so the gradients were summed before optimizer.apply read them, the
logged metrics are global and the dropout masks are the 1-worker run's.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tests.distributed import jobs

SPECS = {
    "user_steps_single": jobs.Job(1, "torch", "user_steps.py"),
    "user_steps_mpi2": jobs.Job(2, "mpi", "user_steps.py"),
    "user_steps_torch2": jobs.Job(2, "torch", "user_steps.py"),
}


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
        with open(outcome.outdir / f"user_steps_rank{rank}.pkl", "rb") as f:
            ranks.append(pickle.load(f))
    return ranks


def _close(a, b, what):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), what
        for key in a:
            _close(a[key], b[key], f"{what}[{key}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{what}[{i}]")
    elif a is None or b is None:
        assert a is None and b is None, what
    else:
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6, err_msg=what)


@pytest.mark.parametrize("name", ["user_steps_mpi2", "user_steps_torch2"])
def test_two_workers_equal_one_worker(name, tmp_path_factory):
    (single,) = _results(tmp_path_factory, "user_steps_single")
    ranks = _results(tmp_path_factory, name)
    assert single["guide"]["calls"] == 6  # 3 batches x 2 epochs, all in the override
    for rank, result in enumerate(ranks):
        assert result["guide"]["calls"] == 6, f"rank {rank} skipped the overridden train_step"
        for program in single:
            for field in ("history", "weights", "evaluate", "predict"):
                _close(result[program][field], single[program][field], f"{program} {field}")
