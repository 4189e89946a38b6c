"""After launch, every rank infers with the same weights and statistics.

Runs inside the shared two-worker jobs (see ``jobs.py`` and ``scripts/inference_sync.py``).
"""

import pickle

import numpy as np
import pytest

from tests.distributed import jobs


@pytest.mark.parametrize("name", ["torch2", "mpi2"])
def test_ranks_agree_on_weights_predictions_and_moving_statistics(name, tmp_path_factory):
    outcome = jobs.job(tmp_path_factory, name).check()
    ranks = []
    for rank in range(2):
        with open(outcome.outdir / f"inference_rank{rank}.pkl", "rb") as f:
            ranks.append(pickle.load(f))
    first, second = ranks
    # predict before any fit: rank 0's weights everywhere, and the outputs they give.
    for a, b in zip(first["weights"], second["weights"]):
        np.testing.assert_array_equal(a, b)
    kernel, bias = first["weights"]
    np.testing.assert_allclose(
        first["predictions"], first["x"] @ kernel + bias, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(second["predictions"], first["predictions"], rtol=1e-6)
    # BatchNormalization without synchronized: moving statistics averaged, equal everywhere.
    for a, b in zip(first["moving"], second["moving"]):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not np.allclose(first["moving"][1], 1.0)  # the statistics did move
