"""compute_mask called directly on numpy data, as the masking guide does, against Keras 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from tests.ops.keras_reference import import_keras

IDS = np.array([[711, 632, 71, 0, 0], [73, 8, 0, 0, 0]], dtype="int32")
FRAMES = np.random.RandomState(0).rand(2, 5, 3)
FRAMES[:, 3:] = 0.0

CASES = {
    "Embedding": (lambda L: L.layers.Embedding(1000, 4, mask_zero=True), IDS),
    "Masking-float64": (lambda L: L.layers.Masking(), FRAMES),
    "Masking-float32": (lambda L: L.layers.Masking(), FRAMES.astype("float32")),
    "Masking-list": (lambda L: L.layers.Masking(), FRAMES.tolist()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_compute_mask_on_numpy_returns_keras_tensor_mask(name):
    make, data = CASES[name]
    keras = import_keras()
    theirs = make(keras).compute_mask(data)
    ours = make(distkeras).compute_mask(data)
    assert isinstance(ours, torch.Tensor)
    assert ours.dtype == torch.bool
    np.testing.assert_array_equal(ours.cpu().numpy(), keras.ops.convert_to_numpy(theirs))
