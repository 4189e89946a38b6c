"""Normalization layers against numpy formulas (Keras's epsilon 1e-3, momentum 0.99)."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras.layers import (
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
    UnitNormalization,
)
from tests.harness import run_layer_test

EPS = 1e-3


def _bn_reference_inference(axis):
    def reference(x, weights):
        gamma, beta, mean, var = weights
        shape = [1] * x.ndim
        shape[axis] = -1
        r = lambda w: w.reshape(shape)  # noqa: E731
        return (x - r(mean)) / np.sqrt(r(var) + EPS) * r(gamma) + r(beta)

    return reference


def _random_bn_weights(rng, channels):
    return [
        rng.uniform(0.5, 1.5, channels).astype("float32"),
        rng.normal(size=channels).astype("float32"),
        rng.normal(size=channels).astype("float32"),
        rng.uniform(0.5, 2.0, channels).astype("float32"),
    ]


def _bn_train_reference(x, axis, gamma, beta):
    reduce = tuple(d for d in range(x.ndim) if d != axis % x.ndim)
    mean = x.mean(axis=reduce, keepdims=True)
    var = x.var(axis=reduce, keepdims=True)  # numpy's default is the biased variance
    shape = [1] * x.ndim
    shape[axis] = -1
    out = (x - mean) / np.sqrt(var + EPS) * gamma.reshape(shape) + beta.reshape(shape)
    return out, mean.reshape(-1), var.reshape(-1)


# ------------------------------------------------------------------------ BatchNormalization
@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 5), (2, 3, 3, 5), (2, 2, 2, 2, 5)])
def test_batchnorm_inference_channels_last(shape):
    rng = np.random.default_rng(0)
    run_layer_test(
        BatchNormalization,
        {},
        shape,
        expected_output_shape=shape,
        expected_weight_shapes=[(5,)] * 4,
        expected_num_non_trainable_weights=2,
        weights=_random_bn_weights(rng, 5),
        reference=_bn_reference_inference(-1),
    )


def test_batchnorm_inference_channels_first():
    rng = np.random.default_rng(1)
    run_layer_test(
        BatchNormalization,
        {"axis": 1, "center": True, "scale": True},
        (2, 3, 4, 4),
        expected_output_shape=(2, 3, 4, 4),
        expected_weight_shapes=[(3,)] * 4,
        weights=_random_bn_weights(rng, 3),
        reference=_bn_reference_inference(1),
    )


@pytest.mark.parametrize(
    "shape,axis",
    [((7, 4), -1), ((3, 5, 4), -1), ((2, 3, 3, 4), -1), ((2, 2, 3, 2, 4), -1), ((2, 4, 3, 3), 1)],
)
def test_batchnorm_training_numbers_and_moving_stats(shape, axis):
    rng = np.random.default_rng(2)
    x = (rng.normal(size=shape) * 3 + 1).astype("float32")
    layer = BatchNormalization(axis=axis)
    layer.build(shape)
    channels = shape[axis]
    gamma = rng.uniform(0.5, 1.5, channels).astype("float32")
    beta = rng.normal(size=channels).astype("float32")
    mm0 = rng.normal(size=channels).astype("float32")
    mv0 = rng.uniform(0.5, 2.0, channels).astype("float32")
    layer.set_weights([gamma, beta, mm0, mv0])

    out = layer(torch.as_tensor(x), training=True)
    expected, mean, var = _bn_train_reference(x, axis, gamma, beta)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-4, atol=1e-4)
    _, _, moving_mean, moving_var = layer.get_weights()
    np.testing.assert_allclose(moving_mean, 0.99 * mm0 + 0.01 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(moving_var, 0.99 * mv0 + 0.01 * var, rtol=1e-5, atol=1e-6)

    # Inference afterwards uses the updated moving statistics and leaves them alone.
    out = layer(torch.as_tensor(x), training=False)
    ref = _bn_reference_inference(axis)(x, layer.get_weights())
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.get_weights()[2], moving_mean)


def test_batchnorm_momentum_over_steps():
    rng = np.random.default_rng(3)
    layer = BatchNormalization(momentum=0.9)
    mm, mv = np.zeros(3, "float32"), np.ones(3, "float32")
    for _ in range(3):
        x = rng.normal(size=(8, 3)).astype("float32") * 2
        layer(torch.as_tensor(x), training=True)
        mm = 0.9 * mm + 0.1 * x.mean(0)
        mv = 0.9 * mv + 0.1 * x.var(0)
    np.testing.assert_allclose(layer.moving_mean.detach().numpy(), mm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.detach().numpy(), mv, rtol=1e-5)


def test_batchnorm_training_gradients_match_formula():
    rng = np.random.default_rng(4)
    x_np = rng.normal(size=(4, 3, 3, 2)).astype("float32")
    layer = BatchNormalization()
    x = torch.tensor(x_np, requires_grad=True)
    upstream = torch.as_tensor(rng.normal(size=x_np.shape).astype("float32"))
    (layer(x, training=True) * upstream).sum().backward()

    xr = torch.tensor(x_np, requires_grad=True)
    gamma = torch.ones(2, requires_grad=True)
    beta = torch.zeros(2, requires_grad=True)
    mean = xr.mean(dim=(0, 1, 2))
    var = ((xr - mean) ** 2).mean(dim=(0, 1, 2))
    ((((xr - mean) / torch.sqrt(var + EPS)) * gamma + beta) * upstream).sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.gamma.grad, gamma.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.beta.grad, beta.grad, rtol=1e-4, atol=1e-5)


def test_batchnorm_non_contiguous_and_batch_of_one():
    rng = np.random.default_rng(5)
    x_np = rng.normal(size=(2, 4, 3, 3)).astype("float32")
    layer = BatchNormalization()  # channels_last over a permuted (non-contiguous) tensor
    x = torch.as_tensor(x_np).permute(0, 2, 3, 1)
    out = layer(x, training=True)
    expected, _, _ = _bn_train_reference(x.numpy(), -1, np.ones(4), np.zeros(4))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-4, atol=1e-4)
    # One value per channel: the variance is 0 and the output is beta (Keras allows this).
    one = BatchNormalization()
    out = one(torch.ones(1, 3) * 5, training=True)
    np.testing.assert_allclose(out.detach().numpy(), np.zeros((1, 3)), atol=1e-5)
    np.testing.assert_allclose(one.moving_mean.detach().numpy(), np.full(3, 0.05), rtol=1e-5)


def test_batchnorm_frozen_runs_in_inference_mode():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(6, 3)).astype("float32") + 2
    layer = BatchNormalization()
    layer.build((None, 3))
    weights = _random_bn_weights(rng, 3)
    layer.set_weights(weights)
    layer.trainable = False
    out = layer(torch.as_tensor(x), training=True)
    np.testing.assert_allclose(
        out.detach().numpy(), _bn_reference_inference(-1)(x, weights), rtol=1e-5
    )
    for got, want in zip(layer.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    assert layer.trainable_weights == []


def test_batchnorm_synchronized_uses_batch_moments_hook():
    rng = np.random.default_rng(7)
    x = torch.as_tensor(rng.normal(size=(5, 2, 4)).astype("float32"))
    plain, synced = BatchNormalization(), BatchNormalization(synchronized=True)
    assert synced.get_config()["synchronized"] is True
    torch.testing.assert_close(synced(x, training=True), plain(x, training=True))
    torch.testing.assert_close(synced.moving_variance, plain.moving_variance)

    calls = []

    class Spy(BatchNormalization):
        def _batch_moments(self, x, reduce_dims):
            calls.append(list(reduce_dims))
            mean, var = super()._batch_moments(x, reduce_dims)
            return mean + 1.0, var  # a distributed override changes the statistics here

    spy = Spy(synchronized=True, center=False, scale=False)
    out = spy(x, training=True)
    assert calls == [[0, 1]]
    mean = x.mean(dim=(0, 1))
    var = x.var(dim=(0, 1), unbiased=False)
    torch.testing.assert_close(out, (x - mean - 1.0) / torch.sqrt(var + EPS))
    torch.testing.assert_close(spy.moving_mean, 0.01 * (mean + 1.0))


def test_batchnorm_mask_excludes_positions_from_statistics():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=bool)
    layer = BatchNormalization(center=False, scale=False)
    out = layer(torch.as_tensor(x), training=True, mask=torch.as_tensor(mask))
    kept = x[mask]  # (7, 3)
    mean, var = kept.mean(0), kept.var(0)
    np.testing.assert_allclose(out.detach().numpy(), (x - mean) / np.sqrt(var + EPS), atol=1e-4)
    np.testing.assert_allclose(layer.moving_mean.detach().numpy(), 0.01 * mean, atol=1e-6)
    assert out._keras_mask is not None  # the mask passes through


def test_batchnorm_half_precision_input():
    x = torch.randn(8, 4).to(torch.bfloat16)
    layer = BatchNormalization()
    out = layer(x, training=True)
    assert out.dtype == torch.bfloat16
    ref = (x.float() - x.float().mean(0)) / torch.sqrt(x.float().var(0, unbiased=False) + EPS)
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)
    assert layer.moving_mean.dtype == torch.float32


def test_batchnorm_config_and_errors():
    layer = BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5, center=False)
    config = layer.get_config()
    assert config["axis"] == 1 and config["momentum"] == 0.9 and config["epsilon"] == 1e-5
    assert config["center"] is False and config["synchronized"] is False
    assert BatchNormalization.from_config(config).get_config() == config
    layer.build((None, 3, 4))
    assert [w.name for w in layer._weight_spec_list()] == [
        "gamma",
        "moving_mean",
        "moving_variance",
    ]
    with pytest.raises(TypeError, match="axis"):
        BatchNormalization(axis=[1, 2])
    with pytest.raises(NotImplementedError, match="renorm"):
        BatchNormalization(renorm=True)
    with pytest.raises(ValueError, match="epsilon=-1"):
        BatchNormalization(epsilon=-1)
    with pytest.raises(ValueError, match="known size"):
        BatchNormalization().build((None, None))


def test_batchnorm_regularizer_losses():
    layer = BatchNormalization(gamma_regularizer=distkeras.regularizers.l2(0.1))
    layer(torch.randn(4, 3), training=True)
    (loss,) = layer.losses
    torch.testing.assert_close(loss, torch.tensor(0.3))


# ------------------------------------------------------------------------ LayerNormalization
def _ln_reference(axes, center=True, scale=True):
    def reference(x, weights):
        mean = x.mean(axis=tuple(axes), keepdims=True)
        var = x.var(axis=tuple(axes), keepdims=True)
        out = (x - mean) / np.sqrt(var + EPS)
        shape = [1] * x.ndim
        for a in axes:
            shape[a] = x.shape[a]
        weights = list(weights)
        if scale:
            out = out * weights.pop(0).reshape(shape)
        if center:
            out = out + weights.pop(0).reshape(shape)
        return out

    return reference


@pytest.mark.parametrize(
    "shape,axis,axes",
    [((3, 4, 6), -1, [2]), ((2, 3, 4, 5), [2, 3], [2, 3]), ((2, 3, 4), [1], [1]), ((5, 6), 1, [1])],
)
def test_layernorm_matches_formula(shape, axis, axes):
    rng = np.random.default_rng(9)
    wshape = tuple(shape[a] for a in axes)
    run_layer_test(
        LayerNormalization,
        {"axis": axis},
        shape,
        expected_output_shape=shape,
        expected_weight_shapes=[wshape, wshape],
        weights=[
            rng.uniform(0.5, 1.5, wshape).astype("float32"),
            rng.normal(size=wshape).astype("float32"),
        ],
        reference=_ln_reference(axes),
    )


def test_layernorm_without_center_or_scale():
    run_layer_test(
        LayerNormalization,
        {"center": False, "scale": True},
        (2, 3, 4),
        expected_weight_shapes=[(4,)],
        weights=[np.array([0.5, 1.0, 2.0, -1.0], "float32")],
        reference=_ln_reference([2], center=False),
    )
    run_layer_test(
        LayerNormalization,
        {"center": False, "scale": False},
        (2, 3, 4),
        expected_weight_shapes=[],
        reference=_ln_reference([2], center=False, scale=False),
    )


def test_layernorm_rms_scaling_follows_keras():
    # Keras's rms_scaling divides by sqrt(variance + eps) without centering; gamma only.
    def reference(x, weights):
        var = x.var(axis=-1, keepdims=True)
        return x / np.sqrt(var + EPS) * weights[0]

    run_layer_test(
        LayerNormalization,
        {"rms_scaling": True, "center": True},
        (2, 3, 5),
        expected_weight_shapes=[(5,)],
        weights=[np.linspace(0.5, 1.5, 5).astype("float32")],
        reference=reference,
    )


def test_layernorm_errors_and_half_precision():
    with pytest.raises(TypeError, match="axis"):
        LayerNormalization(axis="last")
    with pytest.raises(ValueError, match="out of bounds"):
        LayerNormalization(axis=3).build((None, 4))
    x = torch.randn(2, 8).to(torch.bfloat16)
    out = LayerNormalization()(x)
    assert out.dtype == torch.bfloat16
    ref = torch.nn.functional.layer_norm(x.float(), (8,), eps=EPS)
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)


# ------------------------------------------------------------------------ GroupNormalization
def _gn_reference(groups, axis):
    def reference(x, weights):
        gamma, beta = weights
        xm = np.moveaxis(x, axis, -1)
        n, c = xm.shape[0], xm.shape[-1]
        grouped = xm.reshape(n, -1, groups, c // groups)
        mean = grouped.mean(axis=(1, 3), keepdims=True)
        var = grouped.var(axis=(1, 3), keepdims=True)
        normed = ((grouped - mean) / np.sqrt(var + EPS)).reshape(xm.shape) * gamma + beta
        return np.moveaxis(normed, -1, axis)

    return reference


@pytest.mark.parametrize(
    "shape,groups,axis",
    [((2, 3, 3, 4), 2, -1), ((2, 6), 3, -1), ((2, 4, 3, 3), 2, 1), ((2, 5, 4), -1, -1)],
)
def test_groupnorm_matches_formula(shape, groups, axis):
    rng = np.random.default_rng(10)
    channels = shape[axis]
    real_groups = channels if groups == -1 else groups
    run_layer_test(
        GroupNormalization,
        {"groups": groups, "axis": axis},
        shape,
        expected_output_shape=shape,
        expected_weight_shapes=[(channels,), (channels,)],
        weights=[
            rng.uniform(0.5, 1.5, channels).astype("float32"),
            rng.normal(size=channels).astype("float32"),
        ],
        reference=_gn_reference(real_groups, axis),
    )


def test_groupnorm_errors():
    with pytest.raises(ValueError, match="cannot be more than"):
        GroupNormalization(groups=8)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="multiple"):
        GroupNormalization(groups=3)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="groups=0"):
        GroupNormalization(groups=0)
    assert GroupNormalization().get_config()["groups"] == 32


# ------------------------------------------------------------------------- UnitNormalization
def test_unit_normalization():
    def reference(x, weights):
        return x / np.maximum(np.sqrt((x**2).sum(axis=-1, keepdims=True)), 1e-12)

    run_layer_test(UnitNormalization, {}, (3, 4), expected_output_shape=(3, 4), reference=reference)
    out = UnitNormalization(axis=[1, 2])(torch.tensor([[[3.0], [4.0]], [[0.0], [0.0]]]))
    np.testing.assert_allclose(out.numpy()[:, :, 0], [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


# --------------------------------------------------------------------------- in a model
def test_batchnorm_in_functional_model_training_and_inference():
    inputs = distkeras.Input(shape=(3, 3, 2))
    outputs = BatchNormalization(axis=-1)(inputs)
    model = distkeras.Model(inputs, outputs)
    x = torch.randn(4, 3, 3, 2) + 3
    bn = model.layers[-1]
    model(x, training=True)
    np.testing.assert_allclose(
        bn.moving_mean.detach().numpy(), 0.01 * x.mean(dim=(0, 1, 2)).numpy(), rtol=1e-5
    )
    before = bn.get_weights()
    model(x)  # inference by default: no update
    for a, b in zip(before, bn.get_weights()):
        np.testing.assert_array_equal(a, b)
