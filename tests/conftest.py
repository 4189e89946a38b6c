"""Test defaults: one CPU thread per test process (xdist runs several), a fixed seed, CPU."""

import os

os.environ.setdefault("DISTKERAS_DEVICE", "cpu")

import pytest  # noqa: E402
import torch  # noqa: E402

import distkeras  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    distkeras.utils.set_random_seed(1234)
    yield
