"""Dropout family, Gaussian noise and ActivityRegularization: statistics and formulas."""

import math

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.harness import run_layer_test

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _identity(x, weights):
    return x


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (layers.Dropout, {"rate": 0.4}),
        (layers.Dropout, {"rate": 0.4, "noise_shape": [None, 1, None], "seed": 3}),
        (layers.SpatialDropout1D, {"rate": 0.3}),
        (layers.GaussianNoise, {"stddev": 0.5, "seed": 1}),
        (layers.GaussianDropout, {"rate": 0.2}),
        (layers.AlphaDropout, {"rate": 0.2}),
    ],
)
def test_harness_identity_at_inference(cls, kwargs):
    run_layer_test(cls, kwargs, (2, 3, 4), expected_output_shape=(2, 3, 4), reference=_identity)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_spatial_dropout2d_harness(data_format):
    layer = run_layer_test(
        layers.SpatialDropout2D,
        {"rate": 0.5, "data_format": data_format},
        (2, 3, 4, 5),
        expected_output_shape=(2, 3, 4, 5),
        reference=_identity,
    )
    assert layer.get_config()["data_format"] == data_format


@pytest.mark.parametrize("seed", [None, 7])
def test_dropout_statistics_when_training(seed):
    rate = 0.3
    x = torch.rand(200, 100) + 0.5  # no zeros in the input
    out = layers.Dropout(rate, seed=seed)(x, training=True)
    dropped = out == 0
    assert abs(dropped.float().mean().item() - rate) < 0.02
    kept = ~dropped
    torch.testing.assert_close(out[kept], x[kept] / (1 - rate))


def test_dropout_is_identity_at_inference_and_by_default():
    x = torch.randn(4, 5)
    layer = layers.Dropout(0.9)
    assert torch.equal(layer(x), x)
    assert torch.equal(layer(x, training=False), x)
    assert torch.equal(layers.Dropout(0.0)(x, training=True), x)


def test_training_none_inherits_outer_call_context():
    model = distkeras.Sequential([layers.Dense(50, input_shape=(8,)), layers.Dropout(0.5)])
    x = torch.randn(64, 8)
    assert (model(x, training=True) == 0).float().mean().item() > 0.3
    assert (model(x, training=False) == 0).float().mean().item() == 0.0
    assert (model(x) == 0).float().mean().item() == 0.0


def test_dropout_noise_shape_shares_the_mask():
    x = torch.ones(50, 6, 8)
    out = layers.Dropout(0.5, noise_shape=(None, 1, None))(x, training=True)
    # One draw per (sample, feature): identical across the 6 timesteps.
    assert torch.equal(out, out[:, :1, :].expand_as(out))
    assert set(out.unique().tolist()) == {0.0, 2.0}
    with pytest.raises(ValueError, match="noise_shape"):
        layers.Dropout(0.5, noise_shape=(None, 1))(x, training=True)


def test_seeded_dropout_is_reproducible():
    x = torch.ones(10, 10)
    a, b = layers.Dropout(0.5, seed=11), layers.Dropout(0.5, seed=11)
    first_a, first_b = a(x, training=True), b(x, training=True)
    assert torch.equal(first_a, first_b)
    assert not torch.equal(first_a, a(x, training=True))  # the sequence moves on


@pytest.mark.parametrize(
    "cls, shape, channel_axis, kwargs",
    [
        (layers.SpatialDropout1D, (1000, 5, 4), -1, {}),
        (layers.SpatialDropout2D, (1000, 3, 3, 4), -1, {}),
        (layers.SpatialDropout2D, (1000, 4, 3, 3), 1, {"data_format": "channels_first"}),
        (layers.SpatialDropout2D, (1000, 3, 3, 4), -1, {"seed": 5}),
        (layers.SpatialDropout3D, (1000, 2, 2, 2, 4), -1, {}),
    ],
)
def test_spatial_dropout_drops_whole_channels(cls, shape, channel_axis, kwargs):
    rate = 0.4
    x = torch.ones(shape)
    out = cls(rate, **kwargs)(x, training=True)
    per_map = out.movedim(channel_axis, -1).reshape(shape[0], -1, shape[channel_axis])
    # Each (sample, channel) map is all zeros or all 1/(1-rate).
    assert torch.equal(per_map.amin(1), per_map.amax(1))
    values = per_map[:, 0, :]
    scale = torch.tensor(1 / (1 - rate))
    assert bool(((values == 0) | torch.isclose(values, scale)).all())
    assert abs((values == 0).float().mean().item() - rate) < 0.05


def test_spatial_dropout_rank_check():
    with pytest.raises(ValueError, match="rank 4"):
        layers.SpatialDropout2D(0.5)(torch.ones(2, 3, 4), training=True)


def test_gaussian_noise_statistics():
    x = torch.randn(200, 100)
    out = layers.GaussianNoise(0.3)(x, training=True)
    noise = out - x
    assert abs(noise.mean().item()) < 0.01
    assert abs(noise.std().item() - 0.3) < 0.01
    assert torch.equal(layers.GaussianNoise(0.3)(x), x)


def test_gaussian_dropout_statistics():
    rate = 0.2
    x = torch.full((400, 250), 2.0)
    factor = layers.GaussianDropout(rate)(x, training=True) / x
    assert abs(factor.mean().item() - 1.0) < 0.01
    assert abs(factor.std().item() - math.sqrt(rate / (1 - rate))) < 0.01


def test_alpha_dropout_formula_and_self_normalisation():
    rate = 0.2
    x = torch.randn(400, 250)
    out = layers.AlphaDropout(rate, seed=0)(x, training=True)
    alpha_p = -SELU_ALPHA * SELU_SCALE
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    b = -a * alpha_p * rate
    kept = torch.isclose(out, a * x + b)
    dropped = torch.isclose(out, torch.full_like(out, a * alpha_p + b))
    assert bool((kept | dropped).all())
    assert abs(dropped.float().mean().item() - rate) < 0.01
    assert abs(out.mean().item()) < 0.02 and abs(out.var().item() - 1.0) < 0.03


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (layers.Dropout, {"rate": 1.0}, "Dropout.*rate=1.0"),
        (layers.Dropout, {"rate": -0.1}, "rate=-0.1"),
        (layers.Dropout, {"rate": "0.5"}, "rate='0.5'"),
        (layers.Dropout, {"rate": 0.5, "noise_shape": 3}, "noise_shape=3"),
        (layers.Dropout, {"rate": 0.5, "seed": 1.5}, "seed=1.5"),
        (layers.SpatialDropout2D, {"rate": 0.5, "data_format": "NCHW"}, "data_format='NCHW'"),
        (layers.GaussianDropout, {"rate": 1}, "GaussianDropout.*rate=1"),
        (layers.GaussianNoise, {"stddev": -1.0}, "GaussianNoise.*stddev=-1.0"),
        (layers.ActivityRegularization, {"l1": -1}, "ActivityRegularization.*l1=-1"),
    ],
)
def test_argument_errors(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_activity_regularization_adds_keras_penalty():
    l1, l2 = 0.01, 0.02
    data = np.random.default_rng(0).standard_normal((4, 3)).astype("float32")
    layer = run_layer_test(
        layers.ActivityRegularization,
        {"l1": l1, "l2": l2},
        input_data=data,
        expected_output_shape=(4, 3),
        reference=_identity,
    )
    layer(torch.as_tensor(data))
    # Keras 3 divides the penalty by the batch size (checked against Keras 3.15).
    expected = (l1 * np.abs(data).sum() + l2 * np.square(data).sum()) / data.shape[0]
    (loss,) = layer.losses
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-6)
    assert layer.get_config()["l1"] == l1 and "activity_regularizer" not in layer.get_config()


def test_activity_regularization_in_a_model_and_gradient():
    model = distkeras.Sequential(
        [layers.Dense(3, input_shape=(2,)), layers.ActivityRegularization(l2=0.5)]
    )
    x = torch.randn(5, 2)
    out = model(x)
    (loss,) = model.losses
    expected = 0.5 * out.detach().square().sum().item() / x.shape[0]
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)
    loss.backward()
    assert model.layers[0].kernel.grad is not None
