"""1 = N workers with image augmentation layers: the same weights, history, evaluate() and
predict() on 1 and 2 workers, over both backends (MPI, the CPU default, then
torch.distributed).

``scripts/augmentation_equivalence.py`` trains a model behind RandomFlip, RandomRotation,
RandomZoom, RandomTranslation, RandomShear, RandomPerspective, RandomContrast,
RandomBrightness, RandomHue, RandomGrayscale, RandomInvert, RandomErasing and
RandomElasticTransform (seeded and unseeded) on an uneven last batch. Each image's
transformation depends only on (seed, layer, step, global sample index), so the worker count
must not show in any result.
"""

import numpy as np
import pytest

from tests.distributed import jobs, rank_results

SCRIPT = jobs.SCRIPTS / "augmentation_equivalence.py"
MATRIX = {"mpi2": (2, "mpi"), "torch2": (2, "torch")}


def _run(tmp_path_factory, name: str, workers: int, backend: str) -> list[dict]:
    return rank_results.run_ranks(
        tmp_path_factory, SCRIPT, f"augmentation_{name}", workers, backend
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    (result,) = _run(tmp_path_factory, "single", 1, "torch")
    return result


def test_reference_trains_with_active_augmentation(reference):
    assert int(reference["world_size"]) == 1
    assert reference["history_loss"].shape == (2,)
    assert reference["predict"].shape == (14, 3)
    # evaluate() sees the images unaugmented: its loss is not the training loss of the epoch.
    assert not np.isclose(reference["evaluate"][0], reference["history_loss"][-1])


@pytest.mark.parametrize("name", sorted(MATRIX, key=lambda n: n != "mpi2"))
def test_workers_reproduce_one_worker(name, reference, tmp_path_factory):
    workers, backend = MATRIX[name]
    results = _run(tmp_path_factory, name, workers, backend)
    rank_results.assert_ranks_match(results, reference, workers)
