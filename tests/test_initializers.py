"""Initializers: Keras's fan rule, distributions checked statistically, seeds, config."""

import math

import numpy as np
import pytest
import torch

import distkeras
from distkeras import initializers as I

# Truncated at two standard deviations, a unit normal has this standard deviation.
TRUNC_STD = 0.87962566103423978


def _sample(init, shape=(400, 500), dtype=None):
    out = init(shape, dtype=dtype)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(shape)
    return out.double().numpy()


@pytest.mark.parametrize(
    "shape,fans",
    [
        ((), (1, 1)),
        ((7,), (7, 7)),
        ((3, 5), (3, 5)),
        ((4, 3, 8), (4 * 3, 4 * 8)),  # Conv1D (k, in, out)
        ((3, 2, 4, 6), (3 * 2 * 4, 3 * 2 * 6)),  # Conv2D (kh, kw, in, out)
        ((2, 3, 2, 5, 7), (12 * 5, 12 * 7)),  # Conv3D
    ],
)
def test_compute_fans(shape, fans):
    got = I.compute_fans(shape)
    assert got == fans and all(isinstance(v, int) for v in got)


def test_compute_fans_explicit_axes():
    assert I.compute_fans((2, 3, 4, 5), input_axes=[0, 1], output_axes=[2, 3]) == (6, 20)


@pytest.mark.parametrize(
    "name,shape,variance",
    [
        # (fan_in, fan_out) = (400, 500) for a dense shape, (3*3*20, 3*3*30) for a conv one.
        ("glorot_uniform", (400, 500), 2.0 / 900),
        ("glorot_normal", (400, 500), 2.0 / 900),
        ("he_normal", (400, 500), 2.0 / 400),
        ("he_uniform", (400, 500), 2.0 / 400),
        ("lecun_normal", (400, 500), 1.0 / 400),
        ("lecun_uniform", (400, 500), 1.0 / 400),
        ("glorot_uniform", (3, 3, 20, 30), 2.0 / (180 + 270)),
        ("he_normal", (3, 3, 20, 30), 2.0 / 180),
    ],
)
def test_variance_scaling_family(name, shape, variance):
    w = _sample(I.get(name), shape)
    assert abs(w.mean()) < 0.02 * math.sqrt(variance)
    np.testing.assert_allclose(w.std(), math.sqrt(variance), rtol=0.02)
    if name.endswith("uniform"):
        limit = math.sqrt(3 * variance)  # glorot: sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() <= limit
        assert np.abs(w).max() > 0.99 * limit
    else:
        # Truncated normal: untruncated stddev sqrt(variance) / 0.8796, cut at 2 of those.
        bound = 2 * math.sqrt(variance) / TRUNC_STD
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        assert np.abs(w).max() > 0.98 * bound


def test_glorot_uniform_limit_formula():
    fan_in, fan_out = 30, 50
    w = _sample(I.GlorotUniform(seed=3), (fan_in, fan_out))
    limit = math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit


def test_variance_scaling_modes_and_untruncated():
    base = dict(scale=3.0, seed=1)
    shape = (300, 600)
    for mode, fan in (("fan_in", 300), ("fan_out", 600), ("fan_avg", 450)):
        w = _sample(I.VarianceScaling(mode=mode, distribution="untruncated_normal", **base), shape)
        np.testing.assert_allclose(w.std(), math.sqrt(3.0 / fan), rtol=0.02)
        # Untruncated: some samples beyond two standard deviations.
        assert np.abs(w).max() > 2.5 * math.sqrt(3.0 / fan)
    # "normal" is Keras's alias of the truncated normal.
    assert I.VarianceScaling(distribution="normal").distribution == "truncated_normal"


def test_random_normal_uniform_truncated_defaults():
    w = _sample(I.RandomNormal())
    assert abs(w.mean()) < 1e-3
    np.testing.assert_allclose(w.std(), 0.05, rtol=0.02)
    w = _sample(I.RandomNormal(mean=1.0, stddev=2.0))
    np.testing.assert_allclose([w.mean(), w.std()], [1.0, 2.0], rtol=0.02)

    w = _sample(I.RandomUniform())
    assert w.min() >= -0.05 and w.max() <= 0.05
    np.testing.assert_allclose(w.std(), 0.1 / math.sqrt(12), rtol=0.02)
    w = _sample(I.RandomUniform(minval=2.0, maxval=3.0))
    assert w.min() >= 2.0 and w.max() <= 3.0 and abs(w.mean() - 2.5) < 0.01

    w = _sample(I.TruncatedNormal(mean=0.5, stddev=0.1))
    assert w.min() >= 0.5 - 0.2 - 1e-6 and w.max() <= 0.5 + 0.2 + 1e-6
    assert w.min() < 0.5 - 0.19 and w.max() > 0.5 + 0.19
    # The stddev parameter is that of the normal *before* truncation.
    np.testing.assert_allclose(w.std(), 0.1 * TRUNC_STD, rtol=0.02)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (3, 3, 2, 8), (2, 2, 4, 3)])
def test_orthogonal(shape):
    gain = 1.5
    w = I.Orthogonal(gain=gain, seed=0)(shape).double()
    flat = w.reshape(-1, shape[-1]) / gain
    rows, cols = flat.shape
    if rows >= cols:
        gram = flat.T @ flat  # orthonormal columns
        eye = torch.eye(cols, dtype=torch.float64)
    else:
        gram = flat @ flat.T  # orthonormal rows
        eye = torch.eye(rows, dtype=torch.float64)
    torch.testing.assert_close(gram, eye, atol=1e-5, rtol=0)


def test_identity_constant_zeros_ones():
    torch.testing.assert_close(I.Identity(gain=2.0)((3, 4)), 2.0 * torch.eye(3, 4))
    torch.testing.assert_close(I.get("identity")((3, 3)), torch.eye(3))
    torch.testing.assert_close(I.Constant(0.7)((2, 3)), torch.full((2, 3), 0.7))
    torch.testing.assert_close(I.get("zeros")((2, 2)), torch.zeros(2, 2))
    torch.testing.assert_close(I.get("ones")((2,)), torch.ones(2))
    assert I.get("ones")((2,), dtype="int32").dtype == torch.int32
    assert I.get("zeros")((2,), dtype="float64").dtype == torch.float64
    # An array value broadcasts, as Keras's cast(value) * ones(shape).
    row = np.array([1.0, 2.0, 3.0])
    torch.testing.assert_close(
        I.Constant(row)((2, 3)), torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    )
    assert I.Constant(row).get_config() == {"value": [1.0, 2.0, 3.0]}


def test_seed_reproducibility():
    for cls in (I.GlorotUniform, I.HeNormal, I.RandomNormal, I.TruncatedNormal, I.Orthogonal):
        a, b = cls(seed=7), cls(seed=7)
        torch.testing.assert_close(a((5, 6)), b((5, 6)))
        # Keras: an int-seeded initializer gives the same values on every call.
        torch.testing.assert_close(a((5, 6)), a((5, 6)))
        assert not torch.equal(cls(seed=8)((5, 6)), a((5, 6)))
    # Unseeded ones follow the global seed (drawn from Python's random when made, as Keras).
    distkeras.utils.set_random_seed(0)
    first = I.GlorotUniform()((4, 4))
    distkeras.utils.set_random_seed(0)
    torch.testing.assert_close(I.GlorotUniform()((4, 4)), first)


@pytest.mark.parametrize(
    "init",
    [
        I.Zeros(),
        I.Ones(),
        I.Constant(3.0),
        I.RandomNormal(mean=1.0, stddev=0.2, seed=4),
        I.RandomUniform(-1.0, 2.0, seed=4),
        I.TruncatedNormal(stddev=0.3, seed=4),
        I.VarianceScaling(2.0, "fan_out", "uniform", seed=4),
        I.GlorotUniform(seed=4),
        I.GlorotNormal(seed=4),
        I.HeNormal(seed=4),
        I.HeUniform(seed=4),
        I.LecunNormal(seed=4),
        I.LecunUniform(seed=4),
        I.Orthogonal(gain=2.0, seed=4),
        I.Identity(gain=0.5),
    ],
)
def test_serialize_round_trip(init):
    spec = I.serialize(init)
    assert spec["class_name"] == type(init).__name__
    assert spec["module"] == "keras.initializers"
    clone = I.get(spec)
    assert type(clone) is type(init) and clone.get_config() == init.get_config()
    torch.testing.assert_close(clone((4, 4)), init((4, 4)))
    torch.testing.assert_close(init.clone()((4, 4)), init((4, 4)))


def test_get_names_classes_arrays_and_callables():
    assert isinstance(I.get("glorot_uniform"), I.GlorotUniform)
    assert isinstance(I.get("GlorotUniform"), I.GlorotUniform)
    assert isinstance(I.get("normal"), I.RandomNormal)
    assert isinstance(I.get("uniform"), I.RandomUniform)
    assert isinstance(I.get("one"), I.Ones) and isinstance(I.get("zero"), I.Zeros)
    assert isinstance(I.get(I.HeNormal), I.HeNormal)  # a class is instantiated
    assert I.get(None) is None

    def fn(shape, dtype=None):
        return torch.full(shape, 2.0)

    assert I.get(fn) is fn
    value = np.arange(6, dtype="float32").reshape(2, 3)
    init = I.get(value)
    torch.testing.assert_close(init((2, 3)), torch.as_tensor(value))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        init((3, 2))
    assert I.get({"class_name": "HeUniform", "config": {"seed": 2}}).seed == 2
    glorot = I.GlorotUniform(seed=1)
    assert I.get(glorot) is glorot


def test_errors():
    with pytest.raises(ValueError, match="initializer='nope'") as info:
        I.get("nope")
    assert "'glorot_uniform'" in str(info.value)
    with pytest.raises(ValueError, match="Received: initializer=3"):
        I.get(3)
    with pytest.raises(ValueError, match="scale=0"):
        I.VarianceScaling(scale=0)
    with pytest.raises(ValueError, match="mode='fan_sum'"):
        I.VarianceScaling(mode="fan_sum")
    with pytest.raises(ValueError, match="distribution='gamma'"):
        I.VarianceScaling(distribution="gamma")
    with pytest.raises(ValueError, match="rank >= 2"):
        I.Orthogonal()((5,))
    with pytest.raises(ValueError, match="2D"):
        I.Identity()((2, 2, 2))
    with pytest.raises(ValueError, match="seed='a'"):
        I.GlorotUniform(seed="a")
    with pytest.raises(ValueError, match=r"\(4,\).*\(2, 3\)"):
        I.Constant(np.ones(4))((2, 3))


def test_layer_uses_keras_layout_fans():
    """A Conv2D kernel is initialised from its Keras-layout fans, whatever it stores."""
    from distkeras.layers import Conv2D

    layer = Conv2D(64, 5, kernel_initializer="he_uniform")
    layer(torch.zeros(1, 8, 8, 40))
    kernel = layer.get_weights()[0]
    assert kernel.shape == (5, 5, 40, 64)
    limit = math.sqrt(3 * 2.0 / (5 * 5 * 40))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.98 * limit
