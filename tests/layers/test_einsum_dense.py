"""EinsumDense and InputSpec beyond the sweep: initializer fans, refused arguments, Keras's
input-compatibility errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.ops.keras_reference import import_keras


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def test_variance_scaling_kernel_gets_the_einsum_axes_like_keras(keras):
    # Kernel (4, 2, 3): fans over the contracted axis (4) and the produced axes (2*3), as Keras
    # 3.15 passes input_axes/output_axes; the conv convention would give fans 8 and 12.
    kwargs = dict(
        equation="abc,cde->abde",
        output_shape=(3, 2, 3),
        kernel_initializer=distkeras.initializers.VarianceScaling(
            scale=1.0, mode="fan_in", distribution="untruncated_normal", seed=1
        ),
    )
    ours = layers.EinsumDense(**kwargs)
    ours.build((2, 3, 4))
    kernel = ours.get_weights()[0]
    assert kernel.shape == (4, 2, 3)
    # Different generators, so compare the scale, which the fans decide: sqrt(1/4) = 0.5.
    big = layers.EinsumDense(**{**kwargs, "output_shape": (3, 40, 50)})
    big.build((2, 3, 4))
    assert np.std(big.get_weights()[0]) == pytest.approx(0.5, rel=0.05)
    big_keras = keras.layers.EinsumDense(
        "abc,cde->abde",
        (3, 40, 50),
        kernel_initializer=keras.initializers.VarianceScaling(
            1.0, "fan_in", "untruncated_normal", seed=1
        ),
    )
    big_keras.build((2, 3, 4))
    assert np.std(big.get_weights()[0]) == pytest.approx(
        float(np.std(big_keras.get_weights()[0])), rel=0.05
    )
    # The layer's own initializer keeps no axes (its config is what Keras writes).
    assert "input_axes" not in ours.get_config()["kernel_initializer"]["config"]


def test_glorot_uniform_limit_uses_einsum_fans():
    layer = layers.EinsumDense("abc,cde->abde", output_shape=(3, 20, 30))
    layer.build((2, 3, 10))
    limit = math.sqrt(6.0 / (10 + 600))
    kernel = layer.get_weights()[0]
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.9 * limit


@pytest.mark.parametrize(
    ("key", "value"),
    [("lora_rank", 4), ("lora_alpha", 8), ("quantization_config", {"mode": "int8"})],
)
def test_lora_and_quantization_are_refused_by_name(key, value):
    with pytest.raises(NotImplementedError, match=key):
        layers.EinsumDense("ab,bc->ac", 3, **{key: value})


def test_bad_equation_error_matches_keras(keras):
    with pytest.raises(ValueError) as theirs:
        keras.layers.EinsumDense("ab,bc", 3).build((2, 4))
    with pytest.raises(ValueError) as ours:
        layers.EinsumDense("ab,bc", 3).build((2, 4))
    assert str(ours.value) == str(theirs.value)


def test_einsum_dense_trains_in_fit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3, 4)).astype("float32")
    y = x.sum(axis=-1, keepdims=True) * np.ones((1, 1, 2), "float32")
    model = distkeras.Sequential(
        [distkeras.Input((3, 4)), layers.EinsumDense("abc,cd->abd", (3, 2), bias_axes="d")]
    )
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


# ------------------------------------------------------------------------------ InputSpec
def _spec_cases(mod):
    spec = mod.layers.InputSpec
    return [
        (spec(ndim=3), (2, 4)),
        (spec(min_ndim=3), (2, 4)),
        (spec(max_ndim=2), (2, 3, 4)),
        (spec(axes={-1: 5}), (2, 4)),
        (spec(shape=(None, 3)), (2, 4)),
        (spec(dtype="int32"), (2, 4)),
        ([spec(ndim=2), spec(ndim=2)], (2, 4)),
    ]


@pytest.mark.parametrize("index", range(7))
def test_input_spec_errors_match_keras(keras, index):
    theirs_spec, shape = _spec_cases(keras)[index]
    ours_spec, _ = _spec_cases(distkeras)[index]

    def make(mod, spec):
        class Probe(mod.layers.Layer):
            def __init__(self):
                super().__init__(name="probe")
                self.input_spec = spec

            def call(self, x):
                return x

        return Probe()

    x = np.zeros(shape, "float32")
    with pytest.raises(ValueError) as theirs:
        make(keras, theirs_spec)(x)
    with pytest.raises(ValueError) as ours:
        make(distkeras, ours_spec)(torch.as_tensor(x))
    first_line = str(theirs.value).split("Inputs received")[0]
    assert str(ours.value).split("Inputs received")[0] == first_line


def test_input_spec_passes_compatible_and_symbolic_inputs():
    spec = layers.InputSpec(shape=(None, 28, 28, 1), allow_last_axis_squeeze=True)
    assert "shape=(None, 28, 28, 1)" in repr(spec)
    layer = layers.Flatten()
    layer.input_spec = spec
    assert layer(torch.zeros(2, 28, 28)).shape == (2, 784)
    assert layer(torch.zeros(2, 28, 28, 1)).shape == (2, 784)
    out = layer(distkeras.Input((28, 28, 1)))
    assert tuple(out.shape) == (None, 784)
    with pytest.raises(ValueError, match="expected shape"):
        layer(distkeras.Input((27, 28, 1)))
    assert layers.InputSpec.from_config(spec.get_config()).get_config() == spec.get_config()


def test_input_spec_axes_beyond_rank_is_refused():
    with pytest.raises(ValueError, match="greater than the maximum"):
        layers.InputSpec(ndim=2, axes={3: 4})
