"""A PyDataset trains the same model on 1, 2 and 3 workers, over both backends
(``scripts/py_dataset_checks.py``, run inside the shared jobs of ``jobs.py``)."""

import numpy as np
import pytest

from tests.distributed import jobs
from tests.distributed.test_equivalence import ATOL, RTOL


def _ranks(outcome, world_size):
    results = []
    for rank in range(world_size):
        with np.load(outcome.outdir / f"py_dataset_rank{rank}.npz") as data:
            results.append({key: data[key] for key in data.files})
    return results


@pytest.mark.parametrize(("name", "workers"), [("mpi2", 2), ("torch2", 2)])
def test_py_dataset_gives_the_one_worker_model(tmp_path_factory, name, workers):
    (expected,) = _ranks(jobs.job(tmp_path_factory, "single").check(), 1)
    assert expected["history_loss"][-1] < expected["history_loss"][0]
    for rank, result in enumerate(_ranks(jobs.job(tmp_path_factory, name).check(), workers)):
        assert sorted(result) == sorted(expected)
        for key in sorted(expected):
            np.testing.assert_allclose(
                result[key],
                expected[key],
                rtol=RTOL,
                atol=ATOL,
                err_msg=f"{name} rank {rank}: {key}",
            )
