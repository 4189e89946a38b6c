"""SpectralNormalization (and Wrapper) against Keras 3: training calls update `vector_u` and
the wrapped kernel as Keras does, inference uses them, weights and files move both ways."""

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


WRAPPED = [
    (lambda m: m.Dense(3), (2, 4), 1),
    (lambda m: m.Dense(5), (3, 2, 6), 3),
    (lambda m: m.Conv2D(3, 2), (2, 5, 5, 2), 2),
    (lambda m: m.Conv1D(2, 3, padding="same"), (2, 6, 3), 1),
    (lambda m: m.EinsumDense("abc,cd->abd", (4, 3), bias_axes="d"), (2, 4, 5), 1),
]


@pytest.mark.parametrize(("make", "shape", "iterations"), WRAPPED)
def test_training_updates_and_inference_match_keras(keras, make, shape, iterations):
    rng = np.random.default_rng(0)
    theirs = keras.layers.SpectralNormalization(make(keras.layers), power_iterations=iterations)
    ours = layers.SpectralNormalization(make(layers), power_iterations=iterations)
    theirs.build(shape)
    ours.build(shape)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    assert len(ours.non_trainable_weights) == 1
    weights = [rng.standard_normal(w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    for training in (True, True, False, True, False):
        x = rng.standard_normal(shape).astype("float32")
        expected = np.asarray(theirs(x, training=training).detach().cpu())
        got = ours(torch.as_tensor(x), training=training).detach().numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_normalized_kernel_has_spectral_norm_one():
    layer = layers.SpectralNormalization(layers.Dense(6), power_iterations=30)
    layer.build((2, 4))
    layer(torch.ones(2, 4), training=True)
    kernel = torch.as_tensor(layer.layer.get_weights()[0])
    assert torch.linalg.matrix_norm(kernel, ord=2).item() == pytest.approx(1.0, rel=1e-3)


def test_all_zero_kernel_is_left_alone():
    layer = layers.SpectralNormalization(layers.Dense(3, kernel_initializer="zeros"))
    layer.build((2, 4))
    u = layer.get_weights()[1].copy()
    layer(torch.ones(2, 4), training=True)
    assert np.all(layer.get_weights()[0] == 0)
    np.testing.assert_array_equal(layer.get_weights()[1], u)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="power_iterations"):
        layers.SpectralNormalization(layers.Dense(2), power_iterations=0)
    with pytest.raises(ValueError, match="nor 'embeddings'"):
        layers.SpectralNormalization(layers.Flatten()).build((2, 4))
    with pytest.raises(ValueError, match="Wrapper"):
        layers.SpectralNormalization("dense")
    layer = layers.SpectralNormalization(layers.Dense(2))
    layer(torch.ones(2, 4))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 4"):
        layer(torch.ones(2, 5))


def test_fit_trains_and_keras_files_move_both_ways(keras, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 4)).astype("float32")
    y = rng.standard_normal((16, 3)).astype("float32")
    model = distkeras.Sequential(
        [distkeras.Input((4,)), layers.SpectralNormalization(layers.Dense(3))]
    )
    model.compile(optimizer="adam", loss="mse")
    before = model.get_weights()
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert all(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    path = tmp_path / "ours.keras"
    model.save(path)
    theirs = keras.models.load_model(path)
    np.testing.assert_allclose(
        np.asarray(theirs.predict(x, verbose=0)), model.predict(x, verbose=0), atol=1e-5
    )
    for a, b in zip(theirs.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b)
    back = tmp_path / "theirs.keras"
    theirs.save(back)
    loaded = distkeras.models.load_model(back)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert loaded.layers[0].get_config()["power_iterations"] == 1
