"""1 = N workers with random layers: the same weights, history, evaluate() and predict() on 1,
2 and 3 workers, over both backends (MPI, the CPU default, and torch.distributed).

``scripts/dropout_equivalence.py`` trains a model with every random layer (Dropout seeded and
unseeded and with a noise_shape, SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout,
AlphaDropout, a custom layer on ``distkeras.random.dropout``) on an uneven last batch, a model
whose own ``train_step`` draws latent vectors with ``distkeras.random.normal`` (with a periodic
backup, and a loss tracker fed batch means), and LSTM(dropout, recurrent_dropout),
MultiHeadAttention(dropout) and Attention(dropout) on sequences. Each
sample's mask and noise depend only on (seed, layer, step, global sample index), so the
worker count must not show in any result.
"""

import numpy as np
import pytest

from tests.distributed import jobs, rank_results

SCRIPT = jobs.SCRIPTS / "dropout_equivalence.py"
MATRIX = {"mpi2": (2, "mpi"), "mpi3": (3, "mpi"), "torch2": (2, "torch"), "torch3": (3, "torch")}


def _run(tmp_path_factory, name: str, workers: int, backend: str) -> list[dict]:
    return rank_results.run_ranks(tmp_path_factory, SCRIPT, f"dropout_{name}", workers, backend)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    (result,) = _run(tmp_path_factory, "single", 1, "torch")
    return result


def test_reference_trains_with_active_random_layers(reference):
    assert int(reference["world_size"]) == 1
    assert reference["history_loss"].shape == (3,)
    assert reference["predict"].shape == (7, 1)
    # evaluate() runs without dropout: its loss is not the training-time loss of fit.
    assert not np.isclose(reference["evaluate"][0], reference["history_loss"][-1])
    assert len([k for k in reference if k.startswith("weight_")]) == 6  # three Dense layers
    assert reference["custom_loss"].shape == (2,)
    assert len([k for k in reference if k.startswith("custom_weight_")]) == 4
    assert reference["seq_loss"].shape == (2,)
    # LSTM (3), MultiHeadAttention (8), Dense (2): Attention has no weights by default.
    assert len([k for k in reference if k.startswith("seq_weight_")]) == 13


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_workers_reproduce_one_worker(name, reference, tmp_path_factory):
    workers, backend = MATRIX[name]
    results = _run(tmp_path_factory, name, workers, backend)
    rank_results.assert_ranks_match(results, reference, workers)
