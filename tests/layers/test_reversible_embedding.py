"""ReversibleEmbedding against Keras 3: forward lookups, reverse projections (tied or not,
soft-capped), masks, and `.keras` files both ways."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.ops.keras_reference import import_keras


@pytest.fixture(scope="module")
def keras():
    return import_keras()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"tie_weights": False},
        {"logit_soft_cap": 2.0},
        {"tie_weights": False, "logit_soft_cap": 0.5, "mask_zero": True},
        {"reverse_dtype": "float64"},
    ],
)
def test_forward_and_reverse_match_keras(keras, kwargs):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 10, (2, 3)).astype("int32")
    hidden = (3 * rng.standard_normal((2, 3, 4))).astype("float32")
    theirs = keras.layers.ReversibleEmbedding(10, 4, **kwargs)
    ours = layers.ReversibleEmbedding(10, 4, **kwargs)
    theirs(ids)
    ours(torch.as_tensor(ids))
    weights = [rng.standard_normal(w.shape).astype("float32") for w in theirs.get_weights()]
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in weights]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    for inputs, reverse in ((ids, False), (hidden, True)):
        expected = theirs(inputs, reverse=reverse)
        got = ours(torch.as_tensor(inputs), reverse=reverse)
        assert str(got.dtype).replace("torch.", "") == str(expected.dtype).replace("torch.", "")
        np.testing.assert_allclose(got.detach().numpy(), np.asarray(expected.detach()), atol=1e-5)
        assert tuple(ours.compute_output_shape(inputs.shape, reverse=reverse)) == expected.shape
    assert ours.get_config().keys() == theirs.get_config().keys()
    assert getattr(ours(torch.as_tensor(hidden), reverse=True), "_keras_mask", None) is None


def test_quantization_is_refused_by_name():
    with pytest.raises(NotImplementedError, match="quantization_config"):
        layers.ReversibleEmbedding(10, 4, quantization_config={"mode": "int8"})


def test_tied_language_model_trains_and_files_move_both_ways(keras, tmp_path):
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 20, (16, 5)).astype("int32")
    target = np.roll(ids, 1, axis=1)
    inputs = distkeras.Input((5,), dtype="int32")
    embedding = layers.ReversibleEmbedding(20, 8, logit_soft_cap=5.0)
    hidden = layers.Dense(8, activation="tanh")(embedding(inputs))
    model = distkeras.Model(inputs, embedding(hidden, reverse=True))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(ids, target, epochs=3, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert len(model.get_weights()) == 3  # one tied matrix, the Dense kernel and bias
    path = tmp_path / "ours.keras"
    model.save(path)
    theirs = keras.models.load_model(path, compile=False)
    expected = model.predict(ids, verbose=0)
    np.testing.assert_allclose(np.asarray(theirs.predict(ids, verbose=0)), expected, atol=1e-5)
    back = tmp_path / "theirs.keras"
    theirs.save(back)
    loaded = distkeras.models.load_model(back, compile=False)
    np.testing.assert_allclose(loaded.predict(ids, verbose=0), expected, atol=1e-5)
