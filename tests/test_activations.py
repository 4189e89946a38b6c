"""Activations against numpy transcriptions of Keras 3's formulas."""

import math

import numpy as np
import pytest
import torch

from distkeras import activations
from distkeras.utils import custom_object_scope

X = np.array([-10.0, -3.5, -3.0, -1.2, -1.0, -0.5, 0.0, 0.3, 1.0, 2.0, 3.0, 5.0, 6.5, 10.0])
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    return np.log1p(np.exp(x))


def _erf(x):
    return np.vectorize(math.erf)(x)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _sparsemax_row(z):
    """The simplex projection by the sort-and-threshold algorithm (Martins & Astudillo)."""
    ranked = np.sort(z)[::-1]
    k = np.arange(1, len(z) + 1)
    support = 1 + k * ranked > np.cumsum(ranked)
    k_max = k[support][-1]
    tau = (ranked[:k_max].sum() - 1) / k_max
    return np.maximum(z - tau, 0)


# name -> numpy reference of Keras 3's definition (default arguments).
REFERENCES = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softmax": _softmax,
    "log_softmax": lambda x: np.log(_softmax(x)),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1)),
    # Keras 3: exact erf form by default.
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "softplus": _softplus,
    "softsign": lambda x: x / (np.abs(x) + 1),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),  # Keras 3 default slope 0.2
    "exponential": np.exp,
    "hard_sigmoid": lambda x: np.clip(x + 3, 0, 6) / 6,  # relu6(x + 3) / 6
    "hard_silu": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "hard_swish": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "celu": lambda x: np.maximum(x, 0) + np.minimum(0, np.exp(x) - 1),
    "hard_tanh": lambda x: np.clip(x, -1, 1),
    "hard_shrink": lambda x: np.where(np.abs(x) > 0.5, x, 0),
    "soft_shrink": lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0)),
    "tanh_shrink": lambda x: x - np.tanh(x),
    "log_sigmoid": lambda x: -_softplus(-x),
    "sparse_sigmoid": lambda x: np.clip((x + 1) / 2, 0, 1),
    "sparse_plus": lambda x: np.where(x <= -1, 0, np.where(x < 1, (x + 1) ** 2 / 4, x)),
    "squareplus": lambda x: (x + np.sqrt(x**2 + 4)) / 2,
}


def _run(fn, x, **kwargs):
    out = fn(torch.tensor(x, dtype=torch.float32), **kwargs)
    return out.numpy().astype("float64")


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_matches_keras_formula(name):
    fn = activations.get(name)
    assert getattr(activations, name) is fn
    np.testing.assert_allclose(_run(fn, X), REFERENCES[name](X), rtol=1e-5, atol=1e-6)


def test_every_keras3_name_is_registered():
    keras3 = set(REFERENCES) | {"glu", "sparsemax", "threshold"}
    for name in keras3:
        assert callable(activations.get(name)), name


def test_relu_options_follow_keras_examples():
    x = np.array([-10.0, -5.0, 0.0, 5.0, 10.0])
    np.testing.assert_allclose(_run(activations.relu, x), [0, 0, 0, 5, 10])
    np.testing.assert_allclose(_run(activations.relu, x, negative_slope=0.5), [-5, -2.5, 0, 5, 10])
    np.testing.assert_allclose(_run(activations.relu, x, max_value=5.0), [0, 0, 0, 5, 5])
    # The threshold itself maps to 0 (strictly greater passes), as in Keras.
    np.testing.assert_allclose(_run(activations.relu, x, threshold=5.0), [0, 0, 0, 0, 10])


@pytest.mark.parametrize(
    "slope,max_value,threshold",
    [(0.1, None, 0.0), (0.1, 4.0, 0.0), (0.3, 6.0, 1.0), (0.0, None, -2.0), (0.2, 3.0, -1.0)],
)
def test_relu_combined_options(slope, max_value, threshold):
    x = np.linspace(-8, 8, 33)
    positive = x * (x > threshold) if threshold != 0 else np.maximum(x, 0)
    if max_value is not None:
        positive = np.clip(positive, 0, max_value)
    expected = positive - slope * np.maximum(threshold - x, 0)
    got = _run(activations.relu, x, negative_slope=slope, max_value=max_value, threshold=threshold)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_parameterised_activations():
    x = np.linspace(-4, 4, 17)
    erf_gelu = 0.5 * x * (1 + _erf(x / np.sqrt(2)))
    tanh_gelu = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(_run(activations.gelu, x), erf_gelu, atol=1e-6)
    np.testing.assert_allclose(_run(activations.gelu, x, approximate=True), tanh_gelu, atol=1e-6)
    assert np.abs(erf_gelu - tanh_gelu).max() > 1e-4  # the two forms are distinguishable
    np.testing.assert_allclose(
        _run(activations.elu, x, alpha=0.5), np.where(x > 0, x, 0.5 * (np.exp(x) - 1)), atol=1e-6
    )
    np.testing.assert_allclose(
        _run(activations.leaky_relu, x, negative_slope=0.01), np.where(x > 0, x, 0.01 * x)
    )
    np.testing.assert_allclose(
        _run(activations.celu, x, alpha=2.0),
        np.maximum(x, 0) + np.minimum(0, 2.0 * (np.exp(x / 2.0) - 1)),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        _run(activations.threshold, x, threshold=1.0, default_value=-7.0),
        np.where(x > 1.0, x, -7.0),
    )
    np.testing.assert_allclose(
        _run(activations.squareplus, x, b=1.0), (x + np.sqrt(x**2 + 1)) / 2, atol=1e-6
    )
    np.testing.assert_allclose(
        _run(activations.hard_shrink, x, threshold=2.0), np.where(np.abs(x) > 2, x, 0)
    )


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_family_axis(axis):
    x = np.random.default_rng(0).standard_normal((3, 4, 5)) * 3
    np.testing.assert_allclose(
        _run(activations.softmax, x, axis=axis), _softmax(x, axis), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        _run(activations.log_softmax, x, axis=axis),
        np.log(_softmax(x, axis)),
        rtol=1e-5,
        atol=1e-5,
    )
    a, b = np.split(x, 2, axis=axis) if x.shape[axis] % 2 == 0 else (None, None)
    if a is not None:
        np.testing.assert_allclose(
            _run(activations.glu, x, axis=axis), a * _sigmoid(b), rtol=1e-5, atol=1e-6
        )
    moved = np.moveaxis(x, axis, -1)
    want = np.apply_along_axis(_sparsemax_row, -1, moved.reshape(-1, moved.shape[-1]))
    want = np.moveaxis(want.reshape(moved.shape), -1, axis)
    got = _run(activations.sparsemax, x, axis=axis)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=axis), 1.0, rtol=1e-5)


def test_glu_last_axis():
    x = np.random.default_rng(1).standard_normal((2, 6))
    np.testing.assert_allclose(
        _run(activations.glu, x), x[:, :3] * _sigmoid(x[:, 3:]), rtol=1e-5, atol=1e-6
    )


def test_get_by_name_callable_none_and_config():
    assert activations.get(None) is activations.linear
    assert activations.get("relu") is activations.relu
    assert activations.get("swish") is activations.silu
    assert activations.get("hard_swish") is activations.hard_silu

    def custom(x):
        return x * 3

    assert activations.get(custom) is custom
    # Keras 3 writes functions as {"class_name": "function", "config": "<name>"}.
    spec = {"module": "keras.activations", "class_name": "function", "config": "tanh"}
    assert activations.get(spec) is activations.tanh
    assert activations.deserialize("sigmoid") is activations.sigmoid


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="activation='reluu'") as info:
        activations.get("reluu")
    for known in ("relu", "gelu", "softmax", "hard_silu"):
        assert repr(known) in str(info.value)
    with pytest.raises(ValueError, match="activation=3"):
        activations.get(3)


def test_serialize_round_trip():
    for name in REFERENCES:
        fn = activations.get(name)
        stored = activations.serialize(fn)
        assert isinstance(stored, str)
        assert activations.get(stored) is fn
    # Aliases are stored under Keras's canonical names.
    assert activations.serialize(activations.get("swish")) == "silu"
    assert activations.serialize(activations.get("hard_swish")) == "hard_silu"


def test_custom_activation_round_trip_through_scope():
    def triple(x):
        return 3 * x

    stored = activations.serialize(triple)
    assert stored == "triple"
    with pytest.raises(ValueError, match="triple"):
        activations.get(stored)
    with custom_object_scope({"triple": triple}):
        assert activations.get(stored) is triple


def test_apply_keeps_logits_for_probability_outputs():
    logits = torch.randn(2, 3)
    probs = activations.apply(activations.softmax, logits)
    assert probs._keras_logits[0] == "softmax" and probs._keras_logits[1] is logits
    torch.testing.assert_close(probs, torch.softmax(logits, -1))
    sig = activations.apply(activations.sigmoid, logits)
    assert sig._keras_logits[0] == "sigmoid"
    assert not hasattr(activations.apply(activations.relu, logits), "_keras_logits")


def test_gradients_flow():
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    activations.gelu(x).sum().backward()
    # d/dx gelu(x) = Phi(x) + x * phi(x)
    xs = x.detach().numpy().astype("float64")
    want = 0.5 * (1 + _erf(xs / np.sqrt(2))) + xs * np.exp(-(xs**2) / 2) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-5, atol=1e-6)
