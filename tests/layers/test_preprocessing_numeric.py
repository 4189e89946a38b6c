"""Normalization, Rescaling, Discretization and CategoryEncoding against Keras 3 on the same
inputs: a sweep over constructor arguments, adapt(), and files in both directions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.ops.keras_reference import assert_same, import_keras

RNG = np.random.default_rng(7)
FLOATS_2D = RNG.standard_normal((6, 3)).astype("float32") * 3 + 1
FLOATS_3D = RNG.standard_normal((4, 5, 3)).astype("float32")
IDS_2D = RNG.integers(0, 5, size=(4, 3)).astype("int32")
IDS_COLUMN = RNG.integers(0, 5, size=(4, 1)).astype("int32")
IDS_1D = RNG.integers(0, 5, size=(6,)).astype("int32")

# (class name, constructor arguments, input, whether to adapt on the input first)
CASES = [
    ("Normalization", {}, FLOATS_2D, True),
    ("Normalization", {"axis": None}, FLOATS_2D, True),
    ("Normalization", {"axis": (1, 2)}, FLOATS_3D, True),
    ("Normalization", {"axis": 1}, FLOATS_3D, True),
    ("Normalization", {"mean": 2.0, "variance": 4.0}, FLOATS_2D, False),
    ("Normalization", {"mean": [1.0, 2.0, 3.0], "variance": [1.0, 4.0, 9.0]}, FLOATS_3D, False),
    ("Normalization", {"invert": True}, FLOATS_2D, True),
    ("Rescaling", {"scale": 1.0 / 255}, (FLOATS_2D * 40).astype("float32"), False),
    ("Rescaling", {"scale": 1.0 / 127.5, "offset": -1.0}, FLOATS_3D, False),
    ("Rescaling", {"scale": 2.0}, IDS_2D, False),
    ("CategoryEncoding", {"num_tokens": 5, "output_mode": "one_hot"}, IDS_COLUMN, False),
    ("CategoryEncoding", {"num_tokens": 5, "output_mode": "one_hot"}, IDS_1D, False),
    ("CategoryEncoding", {"num_tokens": 5, "output_mode": "multi_hot"}, IDS_2D, False),
    ("CategoryEncoding", {"num_tokens": 5, "output_mode": "multi_hot"}, IDS_1D, False),
    ("CategoryEncoding", {"num_tokens": 6, "output_mode": "count"}, IDS_2D, False),
    ("Discretization", {"bin_boundaries": [-1.0, 0.0, 1.5]}, FLOATS_2D, False),
    (
        "Discretization",
        {"bin_boundaries": [0.0, 1.0], "output_mode": "one_hot"},
        FLOATS_2D[:, :1],
        False,
    ),
    (
        "Discretization",
        {"bin_boundaries": [0.0, 1.0], "output_mode": "multi_hot"},
        FLOATS_2D,
        False,
    ),
    ("Discretization", {"bin_boundaries": [0.0, 1.0], "output_mode": "count"}, FLOATS_2D, False),
]
IDS = [f"{name}-{i}" for i, (name, *_rest) in enumerate(CASES)]


@pytest.fixture(scope="module")
def keras():
    return import_keras()


@pytest.mark.parametrize(("name", "kwargs", "data", "adapt"), CASES, ids=IDS)
def test_matches_keras(keras, name, kwargs, data, adapt):
    theirs = getattr(keras.layers, name)(**kwargs)
    ours = getattr(layers, name)(**kwargs)
    if adapt:
        theirs.adapt(data)
        ours.adapt(data)
    expected = theirs(data)
    got = ours(torch.as_tensor(data))
    assert_same(got, expected, atol=1e-5)
    assert tuple(ours.compute_output_shape(data.shape)) == tuple(expected.shape)
    assert set(ours.get_config()) == set(theirs.get_config())
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    np.testing.assert_allclose(
        np.concatenate([w.reshape(-1) for w in ours.get_weights()] or [np.zeros(0)]),
        np.concatenate([w.reshape(-1) for w in theirs.get_weights()] or [np.zeros(0)]),
        rtol=1e-5,
        atol=1e-5,
    )


def test_discretization_adapt_puts_boundaries_at_the_quantiles():
    # Keras's Discretization.adapt needs TensorFlow, so the reference is numpy's quantiles.
    values = np.random.default_rng(2).standard_normal(1000).astype("float32")
    layer = layers.Discretization(num_bins=4)
    layer.adapt(values.reshape(-1, 1))
    np.testing.assert_allclose(
        layer.bin_boundaries, np.quantile(values, [0.25, 0.5, 0.75]), rtol=1e-5
    )
    counts = np.bincount(layer(torch.as_tensor(values)).numpy(), minlength=4)
    assert counts.tolist() == [250, 250, 250, 250]
    rebuilt = layers.Discretization.from_config(layer.get_config())
    assert rebuilt.bin_boundaries == layer.bin_boundaries


def test_normalization_adapts_on_batches_as_on_the_whole_array():
    whole = layers.Normalization()
    whole.adapt(FLOATS_3D.reshape(-1, 3))
    batched = layers.Normalization()
    batched.adapt([FLOATS_3D[i] for i in range(4)])
    np.testing.assert_allclose(batched.get_weights()[0], whole.get_weights()[0], rtol=1e-6)
    np.testing.assert_allclose(batched.get_weights()[1], whole.get_weights()[1], rtol=1e-5)
    np.testing.assert_allclose(
        whole.get_weights()[1], FLOATS_3D.reshape(-1, 3).var(axis=0), rtol=1e-5
    )


def test_adapted_normalization_file_goes_both_ways(keras, tmp_path):
    norm = layers.Normalization()
    norm.adapt(FLOATS_2D)
    model = distkeras.Sequential(
        [distkeras.Input((3,)), norm, layers.Rescaling(0.5, offset=1.0), layers.Dense(2)]
    )
    expected = model.predict(FLOATS_2D, verbose=0)
    path = tmp_path / "ours.keras"
    model.save(path)
    theirs = keras.models.load_model(path)
    np.testing.assert_allclose(
        np.asarray(theirs.predict(FLOATS_2D, verbose=0)), expected, atol=1e-5
    )
    back = tmp_path / "theirs.keras"
    theirs.save(back)
    again = distkeras.models.load_model(back)
    np.testing.assert_allclose(again.predict(FLOATS_2D, verbose=0), expected, atol=1e-5)


def test_fit_does_not_train_adapted_statistics():
    norm = layers.Normalization()
    norm.adapt(FLOATS_2D)
    before = [w.copy() for w in norm.get_weights()]
    model = distkeras.Sequential([distkeras.Input((3,)), norm, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(FLOATS_2D, FLOATS_2D[:, :1], epochs=2, verbose=0)
    for w, b in zip(norm.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="mean.*variance"):
        layers.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="num_tokens"):
        layers.CategoryEncoding()
    with pytest.raises(ValueError, match="output_mode"):
        layers.CategoryEncoding(3, output_mode="tf_idf")
    with pytest.raises(ValueError, match="either num_bins or bin_boundaries"):
        layers.Discretization()
    with pytest.raises(ValueError, match="adapt"):
        layers.Discretization(bin_boundaries=[0.0]).adapt(FLOATS_2D)
    with pytest.raises(ValueError, match="sparse"):
        layers.CategoryEncoding(3, sparse=True)


def test_discretization_config_is_keras_config(keras):
    ours = layers.Discretization(bin_boundaries=[0.0, 1.0], name="d").get_config()
    theirs = keras.layers.Discretization(bin_boundaries=[0.0, 1.0], name="d").get_config()
    assert ours == theirs
