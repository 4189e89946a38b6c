"""The acceptance test: one script, the same results on 1, 2 and 3 workers, over both backends.

``scripts/equivalence.py`` trains a functional two-output model (loss_weights, an L2
regularizer, BatchNormalization(synchronized=True), Adam, accuracy/AUC/Precision,
validation_split, shuffle=True, uneven last batches that leave some workers empty) and every
rank saves its final weights, history, evaluate() and predict(). Each launched job is run
once per session (see ``jobs.py``) and also serves the communicator and reducer tests.
"""

from pathlib import Path

import numpy as np
import pytest

from tests.distributed import jobs

# Summation order differs between 1 and N workers; everything else must match exactly.
ATOL = 2e-5
RTOL = 1e-4


def load_ranks(outdir: Path, world_size: int) -> list[dict]:
    results = []
    for rank in range(world_size):
        with np.load(outdir / f"rank{rank}.npz") as data:
            results.append({key: data[key] for key in data.files})
    return results


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    outcome = jobs.job(tmp_path_factory, "single").check()
    (result,) = load_ranks(outcome.outdir, 1)
    return result


def assert_same_results(result: dict, expected: dict, label: str) -> None:
    assert sorted(result) == sorted(expected), label
    for key in sorted(expected):
        if key == "world_size":
            continue
        np.testing.assert_allclose(
            result[key], expected[key], rtol=RTOL, atol=ATOL, err_msg=f"{label}: {key}"
        )


def test_reference_run_is_meaningful(reference):
    # The comparisons below would pass trivially if training did nothing or the run were
    # degenerate: check the reference trained, validated and predicted what it should.
    assert int(reference["world_size"]) == 1
    history_keys = {k[len("history_") :] for k in reference if k.startswith("history_")}
    assert history_keys == {
        "loss", "binary_loss", "classes_loss", "binary_accuracy", "binary_auc",
        "binary_precision", "classes_accuracy",
        "val_loss", "val_binary_loss", "val_classes_loss", "val_binary_accuracy",
        "val_binary_auc", "val_binary_precision", "val_classes_accuracy",
    }  # fmt: skip
    assert reference["history_loss"].shape == (3,)
    assert reference["history_loss"][-1] < reference["history_loss"][0]
    # The reported loss is the weighted sum of the output losses plus the L2 penalty.
    weighted = 0.7 * reference["history_binary_loss"] + 0.3 * reference["history_classes_loss"]
    assert np.all(reference["history_loss"] > weighted)
    assert reference["predict_0"].shape == (34, 1)
    assert reference["predict_1"].shape == (34, 3)
    np.testing.assert_allclose(reference["predict_1"].sum(axis=1), 1.0, rtol=1e-5)
    # Weights: hidden kernel/bias, BN gamma/beta/moving_mean/moving_variance, two heads.
    shapes = [reference[f"weight_{i}"].shape for i in range(10)]
    assert shapes == [(5, 6), (6,), (6,), (6,), (6,), (6,), (6, 1), (1,), (6, 3), (3,)]
    # Synchronized BN moved its statistics away from their initial values.
    assert not np.allclose(reference["weight_4"], 0.0)
    assert not np.allclose(reference["weight_5"], 1.0)


@pytest.mark.parametrize("name", ["torch2", "torch3", "mpi2", "mpi3"])
def test_workers_reproduce_one_worker(name, reference, tmp_path_factory):
    workers, backend = jobs.JOBS[name].workers, jobs.JOBS[name].backend
    outcome = jobs.job(tmp_path_factory, name).check()
    ranks = load_ranks(outcome.outdir, workers)
    for rank, result in enumerate(ranks):
        assert int(result["world_size"]) == workers
        # Every rank holds the full, ordered result, equal to the one-worker run.
        assert_same_results(result, reference, f"{backend} x{workers}, rank {rank}")
    for rank, result in enumerate(ranks[1:], start=1):
        # Ranks agree with each other bit for bit: weights were broadcast and every update
        # used the same reduced gradients.
        for key in result:
            if key.startswith("weight_"):
                np.testing.assert_array_equal(result[key], ranks[0][key], err_msg=f"{rank} {key}")
