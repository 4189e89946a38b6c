"""configure_gradients / environment variables reach the reducer fit builds."""

import pytest
import torch

from distkeras import distributed
from distkeras.distributed import sync


@pytest.fixture(autouse=True)
def _reset(monkeypatch):
    monkeypatch.delenv("DISTKERAS_GRAD_COMPRESSION", raising=False)
    monkeypatch.delenv("DISTKERAS_BUCKET_MB", raising=False)
    distributed.configure_gradients()
    yield
    distributed.configure_gradients()


def _params():
    return [torch.nn.Parameter(torch.zeros(1000)) for _ in range(3)]


def test_default_reducer_sends_full_precision():
    reducer = sync.make_reducer(_params(), distributed.LocalCommunicator())
    assert all(b.wire.dtype == torch.float32 for b in reducer.buckets)
    reducer.close()


def test_configure_gradients_sets_compression_and_bucket_size():
    distributed.configure_gradients(compression="bf16", bucket_mb=0.001)
    reducer = sync.make_reducer(_params(), distributed.LocalCommunicator())
    assert all(b.wire.dtype == torch.bfloat16 for b in reducer.buckets)
    assert len(reducer.buckets) == 3  # 4 KB per parameter over a ~1 KB target: one each
    reducer.close()


def test_environment_variables_are_the_fallback(monkeypatch):
    monkeypatch.setenv("DISTKERAS_GRAD_COMPRESSION", "fp16")
    reducer = sync.make_reducer(_params(), distributed.LocalCommunicator())
    assert all(b.wire.dtype == torch.float16 for b in reducer.buckets)
    reducer.close()


def test_bad_options_name_themselves():
    with pytest.raises(ValueError, match="compression"):
        distributed.configure_gradients(compression="int8")
    with pytest.raises(ValueError, match="bucket_mb"):
        distributed.configure_gradients(bucket_mb=0)
