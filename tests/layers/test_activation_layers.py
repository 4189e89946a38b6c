"""ReLU, LeakyReLU, PReLU, ELU, Softmax and Identity: the harness, then Keras 3 itself on the
same inputs and weights, and Keras's saved files loading here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.harness import run_layer_test
from tests.ops.keras_reference import import_keras

# (class name, constructor arguments, input shape): every activation layer and its options.
CASES = [
    ("ReLU", {}, (4, 6)),
    ("ReLU", {"max_value": 0.5}, (4, 6)),
    ("ReLU", {"negative_slope": 0.1, "threshold": 0.3}, (4, 6)),
    ("ReLU", {"max_value": 1.5, "negative_slope": 0.2, "threshold": 0.1}, (3, 2, 5)),
    ("LeakyReLU", {}, (4, 6)),
    ("LeakyReLU", {"negative_slope": 0.05}, (2, 3, 4)),
    ("PReLU", {"alpha_initializer": "random_uniform"}, (4, 6)),
    ("PReLU", {"alpha_initializer": "random_uniform", "shared_axes": [1, 2]}, (2, 3, 4, 5)),
    ("PReLU", {"alpha_initializer": "random_uniform", "shared_axes": 1}, (2, 3, 4)),
    ("ELU", {}, (4, 6)),
    ("ELU", {"alpha": 0.4}, (2, 3, 4)),
    ("Softmax", {}, (4, 6)),
    ("Softmax", {"axis": 1}, (2, 3, 4)),
    ("Softmax", {"axis": (1, 2)}, (2, 3, 4)),
    ("Identity", {}, (2, 3, 4)),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def _reference(name, kwargs):
    """The Keras formula of each layer, in numpy."""

    def relu(x, w):
        slope = kwargs.get("negative_slope", 0.0)
        threshold = kwargs.get("threshold", 0.0)
        out = np.where(x > threshold, x, 0.0)
        if kwargs.get("max_value") is not None:
            out = np.minimum(out, kwargs["max_value"])
        return out - slope * np.maximum(threshold - x, 0.0)

    def softmax(x, w):
        axis = kwargs.get("axis", -1)
        axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    return {
        "ReLU": relu,
        "LeakyReLU": lambda x, w: np.where(x >= 0, x, kwargs.get("negative_slope", 0.3) * x),
        "PReLU": lambda x, w: np.maximum(x, 0) - w[0] * np.maximum(-x, 0),
        "ELU": lambda x, w: np.where(x > 0, x, kwargs.get("alpha", 1.0) * np.expm1(x)),
        "Softmax": softmax,
        "Identity": lambda x, w: x,
    }[name]


@pytest.mark.parametrize(("name", "kwargs", "shape"), CASES, ids=IDS)
def test_harness(name, kwargs, shape):
    run_layer_test(
        getattr(layers, name),
        kwargs,
        shape,
        expected_output_shape=shape,
        reference=_reference(name, kwargs),
        training_step=name == "PReLU",
    )


@pytest.mark.parametrize(("name", "kwargs", "shape"), CASES, ids=IDS)
def test_matches_keras_on_the_same_weights(keras, name, kwargs, shape):
    x = np.random.default_rng(3).standard_normal(shape).astype("float32")
    theirs = getattr(keras.layers, name)(**kwargs)
    expected = np.asarray(theirs(x).detach().cpu())
    ours = getattr(layers, name)(**kwargs)
    ours.build(shape)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(torch.as_tensor(x)).detach().numpy(), expected, atol=1e-6)
    config = theirs.get_config()
    assert set(ours.get_config()) == set(config), "config keys differ from Keras's"


def test_softmax_mask_matches_keras(keras):
    x = np.random.default_rng(0).standard_normal((2, 5)).astype("float32")
    mask = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], dtype=bool)
    expected = np.asarray(keras.layers.Softmax()(x, mask=mask).detach().cpu())
    got = layers.Softmax()(torch.as_tensor(x), mask=torch.as_tensor(mask))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)
    assert float(got[0, 2]) == 0.0


def test_invalid_arguments_name_the_argument():
    with pytest.raises(ValueError, match="max_value"):
        layers.ReLU(max_value=-1.0)
    with pytest.raises(ValueError, match="negative_slope"):
        layers.LeakyReLU(negative_slope=-0.1)
    with pytest.raises(ValueError, match="shared_axes"):
        layers.PReLU(shared_axes=[3]).build((2, 4))


def test_leaky_relu_accepts_keras2_alpha_with_a_warning():
    with pytest.warns(UserWarning, match="alpha"):
        layer = layers.LeakyReLU(alpha=0.1)
    assert layer.negative_slope == pytest.approx(0.1)


def test_keras_file_with_activation_layers_loads_and_predicts_the_same(keras, tmp_path):
    inputs = keras.Input((4, 6))
    x = keras.layers.Dense(6)(inputs)
    x = keras.layers.PReLU(alpha_initializer="random_uniform", shared_axes=[1])(x)
    x = keras.layers.ReLU(max_value=2.0)(x)
    x = keras.layers.LeakyReLU(0.1)(x)
    x = keras.layers.ELU(0.5)(x)
    x = keras.layers.Identity()(x)
    outputs = keras.layers.Softmax(axis=1)(x)
    model = keras.Model(inputs, outputs)
    data = np.random.default_rng(1).standard_normal((3, 4, 6)).astype("float32")
    expected = np.asarray(model.predict(data, verbose=0))
    path = tmp_path / "activations.keras"
    model.save(path)
    loaded = distkeras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(data, verbose=0), expected, atol=1e-5)
    back = tmp_path / "back.keras"
    loaded.save(back)
    again = keras.models.load_model(back)
    np.testing.assert_allclose(np.asarray(again.predict(data, verbose=0)), expected, atol=1e-5)
