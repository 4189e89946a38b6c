"""Communicators: collectives on two real processes per backend, and the one-process world.

The two-process results come from ``scripts/comm_checks.py``, run inside the shared
"torch2"/"mpi2" jobs (see ``jobs.py``); the expected values are recomputed here with numpy.
"""

import pickle

import numpy as np
import pytest
import torch

from distkeras import distributed
from distkeras.distributed import comm as comm_module
from tests.distributed import jobs
from tests.distributed.scripts.comm_checks import DTYPES, contribution

WORLD = 2
NUMPY_OPS = {"sum": np.sum, "max": np.max, "min": np.min}


@pytest.fixture(scope="module", params=["torch2", "mpi2"])
def records(request, tmp_path_factory) -> list[dict]:
    outcome = jobs.job(tmp_path_factory, request.param).check()
    out = []
    for rank in range(WORLD):
        with open(outcome.outdir / f"comm_rank{rank}.pkl", "rb") as f:
            out.append(pickle.load(f))
    return out


def test_identity_and_public_api(records):
    for rank, record in enumerate(records):
        assert (record["rank"], record["world_size"]) == (rank, WORLD)
        assert record["public"] == {
            "rank": rank, "world_size": WORLD, "local_rank": rank, "is_chief": rank == 0,
            "is_initialized": True, "same_communicator": True,
        }  # fmt: skip
    assert {r["backend"] for r in records} <= {"gloo", "mpi"}


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("op", ["sum", "max", "min"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_all_reduce(records, dtype, op, mode):
    expected = NUMPY_OPS[op](np.array([contribution(r) for r in range(WORLD)]), axis=0)
    for record in records:
        result_dtype, values = record[f"all_reduce/{dtype}/{op}/{mode}"]
        assert result_dtype == str(DTYPES[dtype])  # reduced in place, dtype kept
        np.testing.assert_array_equal(values, expected)


def test_overlapping_async_all_reduces(records):
    expected = [[sum(r + i for r in range(WORLD))] * 4 for i in range(3)]
    for record in records:
        assert record["all_reduce/overlapped"] == expected


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("src", [0, WORLD - 1])
def test_broadcast(records, dtype, src):
    for record in records:
        assert record[f"broadcast/{dtype}/{src}"] == [10.0 * src + 0.5] * 3


def test_async_broadcast(records):
    expected = (np.arange(6) * WORLD).tolist()
    for record in records:
        assert record["broadcast/async"] == expected


def test_object_collectives(records):
    expected = [{"rank": r, "text": "x" * (100 * r), "nested": [r, (r, "r")]} for r in range(WORLD)]
    for record in records:
        assert record["all_gather_object"] == expected
        assert record["broadcast_object"] == {"from": WORLD - 1, "big": "y" * 5000}


def test_barrier_waits_for_every_rank(records):
    assert all(record["barrier_saw_marker"] for record in records)


# ----------------------------------------------------------------- one process, no launcher
def test_local_communicator_is_identity():
    comm = distributed.LocalCommunicator()
    tensor = torch.tensor([1.0, -2.0], dtype=torch.bfloat16)
    assert comm.all_reduce(tensor) is None
    comm.all_reduce(tensor, op="max", async_op=True).wait()
    comm.broadcast(tensor, src=0, async_op=True).wait()
    assert tensor.tolist() == [1.0, -2.0]
    assert comm.all_gather_object({"a": 1}) == [{"a": 1}]
    assert comm.broadcast_object("x") == "x"
    comm.barrier()
    with pytest.raises(ValueError, match="op must be one of"):
        comm.all_reduce(tensor, op="mean")


def test_plain_process_is_a_world_of_one():
    assert (distributed.rank(), distributed.world_size(), distributed.is_chief()) == (0, 1, True)
    assert isinstance(distributed.communicator(), distributed.LocalCommunicator)


def test_timeout_setting(monkeypatch):
    monkeypatch.delenv("DISTKERAS_TIMEOUT", raising=False)
    assert comm_module.default_timeout() == 300.0
    monkeypatch.setenv("DISTKERAS_TIMEOUT", "2.5")
    assert comm_module.default_timeout() == 2.5
    for bad in ("soon", "0", "-1"):
        monkeypatch.setenv("DISTKERAS_TIMEOUT", bad)
        with pytest.raises(ValueError, match="DISTKERAS_TIMEOUT"):
            comm_module.default_timeout()
    assert issubclass(distributed.CollectiveTimeoutError, TimeoutError)
    assert issubclass(distributed.CollectiveTimeoutError, distributed.CollectiveError)


def test_unknown_backend_is_rejected(monkeypatch):
    monkeypatch.setattr(distributed, "_COMMUNICATOR", None)
    monkeypatch.setattr(distributed, "_ENV", distributed.env.DistEnv(0, 2, 0, 2, "127.0.0.1", 1))
    with pytest.raises(ValueError, match="Received: backend='carrier-pigeon'"):
        distributed.init(backend="carrier-pigeon")
