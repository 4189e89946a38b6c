"""GradientReducer: reduced gradients equal the sum of every rank's own gradients.

Two-process results come from ``scripts/reducer_checks.py`` inside the shared
"torch2"/"mpi2" jobs (see ``jobs.py``); the one-process tests below check bucketing and the
bookkeeping that needs no peer.
"""

import pickle

import numpy as np
import pytest
import torch

from distkeras.distributed import LocalCommunicator
from distkeras.distributed.reducer import GradientReducer
from tests.distributed import jobs

WORLD = 2


@pytest.fixture(scope="module", params=["torch2", "mpi2"])
def records(request, tmp_path_factory) -> list[dict]:
    outcome = jobs.job(tmp_path_factory, request.param).check()
    out = []
    for rank in range(WORLD):
        with open(outcome.outdir / f"reducer_rank{rank}.pkl", "rb") as f:
            out.append(pickle.load(f))
    return out


def summed(local_per_rank: list[list]) -> list:
    """Sum over ranks of each parameter's gradient (None where no rank had one)."""
    total = []
    for per_param in zip(*local_per_rank):
        present = [g for g in per_param if g is not None]
        total.append(np.sum(present, axis=0) if present else None)
    return total


def assert_grads_close(actual: list, expected: list, rtol: float, atol: float) -> None:
    assert len(actual) == len(expected)
    for index, (a, e) in enumerate(zip(actual, expected)):
        if e is None:
            assert a is None, f"parameter {index} should have no gradient"
        else:
            np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"parameter {index}")


def test_several_buckets_sum_every_rank(records):
    for record in records:
        assert record["buckets"]["num_buckets"] >= 3
    for step in range(2):
        expected = summed([r["buckets"]["local"][step] for r in records])
        # The ranks' own gradients differ (different data), so a sum is not a copy.
        assert not np.allclose(records[0]["buckets"]["local"][step][0],
                               records[1]["buckets"]["local"][step][0])  # fmt: skip
        for record in records:
            assert_grads_close(record["buckets"]["reduced"][step], expected, 1e-6, 1e-6)


@pytest.mark.parametrize("compression, rtol", [("fp16", 2e-3), ("bf16", 2e-2)])
def test_compressed_gradients_within_tolerance(records, compression, rtol):
    for step in range(2):
        expected = summed([r[compression]["local"][step] for r in records])
        scale = max(np.abs(g).max() for g in expected)
        reduced = [r[compression]["reduced"][step] for r in records]
        for grads in reduced:
            assert_grads_close(grads, expected, rtol, rtol * scale)
            assert all(g.dtype == np.float32 for g in grads)  # back in the parameter dtype
        # Every rank applies the same update: the results agree exactly.
        for a, b in zip(*reduced):
            np.testing.assert_array_equal(a, b)


def test_parameters_unused_on_some_ranks(records):
    names = records[0]["unused"]["names"]
    local = [r["unused"]["local"] for r in records]
    index = {name: i for i, name in enumerate(names)}
    # The setup: branch_b has a gradient on rank 0 only, never_used on no rank.
    assert local[0][index["branch_b.weight"]] is not None
    assert local[1][index["branch_b.weight"]] is None
    assert all(grads[index["never_used.weight"]] is None for grads in local)
    expected = summed(local)
    for record in records:
        for step in range(2):
            assert_grads_close(record["unused"]["reduced"][step], expected, 1e-6, 1e-6)
        # never_used keeps grad=None on every rank, as with one worker (the optimizer
        # then leaves it and its state alone); branch_b holds rank 0's gradient.
        assert record["unused"]["reduced"][0][index["never_used.bias"]] is None


def test_backward_outside_a_step_is_not_reduced(records):
    # Rank 0 ran an extra backward with the reducer idle: its gradients stayed local and
    # the next collective still matched (no stray all-reduce).
    for rank, record in enumerate(records):
        assert record["unused"]["after_outside"] == [2.0, 2.0]
        outside = record["unused"]["outside"]
        assert (outside[0] is not None) == (rank == 0)


# -------------------------------------------------------------------- one process, no peer
def make_params(sizes, dtype=torch.float32):
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(n, dtype=dtype)) for n in sizes]


def test_buckets_reverse_order_small_first():
    params = make_params([100, 10, 10, 300, 5])  # float32: 400, 40, 40, 1200, 20 bytes
    reducer = GradientReducer(params, LocalCommunicator(), bucket_bytes=100,
                              first_bucket_bytes=30)  # fmt: skip
    layout = [[next(i for i, q in enumerate(params) if q is p) for p in b.params]
              for b in reducer.buckets]  # fmt: skip
    # Reverse order; a bucket closes once it holds at least 30 (first) or 100 bytes.
    assert layout == [[4, 3], [2, 1, 0]]
    reducer.close()


def test_dtypes_never_share_a_bucket():
    params = make_params([4, 4]) + make_params([4], dtype=torch.float64)
    reducer = GradientReducer(params, LocalCommunicator())
    assert [{p.dtype for p in b.params} for b in reducer.buckets] == [
        {torch.float64}, {torch.float32}
    ]  # fmt: skip
    reducer.close()


def test_one_process_round_trip_and_unused_parameter():
    params = make_params([3, 2, 4])
    reducer = GradientReducer(params, LocalCommunicator(), bucket_bytes=8, first_bucket_bytes=8)
    for _ in range(2):
        reducer.prepare()
        (params[0].square().sum() + 3 * params[2].sum()).backward()
        reducer.finish()
        np.testing.assert_allclose(params[0].grad, 2 * params[0].detach())
        np.testing.assert_allclose(params[2].grad, torch.full((4,), 3.0))
        assert params[1].grad is None  # no gradient anywhere: left as None
        for p in params:
            p.grad = None
    reducer.close()
    params[1].sum().backward()  # hooks removed: nothing happens
    assert params[1].grad is not None


def test_finish_without_prepare_and_bad_arguments():
    params = make_params([3])
    reducer = GradientReducer(params, LocalCommunicator())
    with pytest.raises(RuntimeError, match="without prepare"):
        reducer.finish()
    reducer.close()
    with pytest.raises(ValueError, match="compression"):
        GradientReducer(params, LocalCommunicator(), compression="int8")
    with pytest.raises(ValueError, match="bucket_bytes"):
        GradientReducer(params, LocalCommunicator(), bucket_bytes=0)
    with pytest.raises(ValueError, match="same parameter twice"):
        GradientReducer(params + params, LocalCommunicator())
