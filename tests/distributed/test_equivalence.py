"""The acceptance test: one script, the same results on 1, 2 and 3 workers, over both backends.

``scripts/equivalence.py`` trains a functional two-output model (loss_weights, an L2
regularizer, BatchNormalization(synchronized=True), Adam, accuracy/AUC/Precision,
validation_split, shuffle=True, uneven last batches that leave some workers empty) and every
rank saves its final weights, history, evaluate() and predict(). Each launched job is run
once per session (see ``jobs.py``) and also serves the communicator and reducer tests.
"""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.distributed import jobs
from tests.distributed.scripts.bn_checks import CASES, case_data

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


# ------------------------------------------------- synchronized BatchNormalization, directly
def whole_batch_reference(name: str, world: int) -> tuple[list, dict]:
    """The formula on the concatenated batch in float64: per-rank slices and gradients."""
    parts = [case_data(name, rank) for rank in range(world)]
    x = torch.tensor(np.concatenate([p[0] for p in parts]), dtype=torch.float64,
                     requires_grad=True)  # fmt: skip
    weights = torch.tensor(np.concatenate([p[2] for p in parts]), dtype=torch.float64)
    channels = x.shape[-1]
    gamma = torch.linspace(0.5, 1.5, channels, dtype=torch.float64).requires_grad_()
    beta = torch.linspace(-0.2, 0.2, channels, dtype=torch.float64).requires_grad_()
    flat = x.reshape(-1, channels)
    if parts[0][1] is None:
        w = torch.ones(flat.shape[0], 1, dtype=torch.float64)
    else:
        w = torch.tensor(np.concatenate([p[1] for p in parts]).reshape(-1, 1),
                         dtype=torch.float64)  # fmt: skip
    count = w.sum() + (0.0 if parts[0][1] is None else 1e-7)
    mean = (w * flat).sum(0) / count
    var = (w * (flat - mean).square()).sum(0) / count
    y = gamma * (x - mean) / torch.sqrt(var + 1e-3) + beta
    (y * weights).sum().backward()
    bounds = np.cumsum([0] + [len(p[0]) for p in parts])
    slices = [
        {"outputs": y.detach()[a:b].numpy(), "input_grad": x.grad[a:b].numpy()}
        for a, b in zip(bounds[:-1], bounds[1:])
    ]
    shared = {
        "gamma_grad": gamma.grad.numpy(),
        "beta_grad": beta.grad.numpy(),
        "moving_mean": 0.1 * mean.detach().numpy(),
        "moving_variance": 0.9 + 0.1 * var.detach().numpy(),
    }
    return slices, shared


@pytest.mark.parametrize("name", ["torch2", "torch3", "mpi2", "mpi3"])
def test_synchronized_batch_norm_uses_the_global_batch(name, tmp_path_factory):
    world = jobs.JOBS[name].workers
    outcome = jobs.job(tmp_path_factory, name).check()
    records = []
    for rank in range(world):
        with open(outcome.outdir / f"bn_rank{rank}.pkl", "rb") as f:
            records.append(pickle.load(f))
    for case in CASES:
        slices, shared = whole_batch_reference(case, world)
        for rank, record in enumerate(records):
            got = record[case]
            for key in ("outputs", "input_grad"):
                np.testing.assert_allclose(got[key], slices[rank][key], rtol=1e-4, atol=1e-4,
                                           err_msg=f"{case} rank {rank} {key}")  # fmt: skip
            for key in ("moving_mean", "moving_variance"):
                np.testing.assert_allclose(got[key], shared[key], rtol=1e-5, atol=1e-5,
                                           err_msg=f"{case} rank {rank} {key}")  # fmt: skip
        # gamma/beta gradients are per worker; the gradient reducer sums them.
        for key in ("gamma_grad", "beta_grad"):
            total = np.sum([record[case][key] for record in records], axis=0)
            np.testing.assert_allclose(total, shared[key], rtol=1e-4, atol=1e-4,
                                       err_msg=f"{case} {key}")  # fmt: skip


@pytest.mark.parametrize("name", ["torch2", "mpi3"])
def test_unsynchronized_batch_norm_on_a_worker_without_samples(name, tmp_path_factory):
    # A small last batch leaves some workers with no sample; their local statistics must
    # not turn into NaN (which the gradient all-reduce would spread to every worker).
    outcome = jobs.job(tmp_path_factory, name).check()
    for rank in range(jobs.JOBS[name].workers):
        with open(outcome.outdir / f"bn_rank{rank}.pkl", "rb") as f:
            got = pickle.load(f)["unsynchronized_empty_rank"]
        x = got["inputs"].astype(np.float64)
        assert got["outputs"].shape == x.shape
        if len(x) == 0:
            np.testing.assert_array_equal(got["moving_mean"], 0.0)
            np.testing.assert_array_equal(got["moving_variance"], 1.0)
            assert got["gamma_grad"] is None or not np.any(got["gamma_grad"])
        else:  # its own part only: not synchronized
            np.testing.assert_allclose(got["moving_mean"], 0.1 * x.mean(0), rtol=1e-5)
            np.testing.assert_allclose(got["moving_variance"], 0.9 + 0.1 * x.var(0), rtol=1e-5)
            assert np.all(np.isfinite(got["gamma_grad"]))
