"""Reshaping layers against numpy references (np.reshape, transpose, repeat, pad, slicing)."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.harness import run_layer_test


def _run(cls, kwargs, shape, expected_shape, reference):
    return run_layer_test(
        cls, kwargs, shape, expected_output_shape=expected_shape, reference=reference
    )


# ------------------------------------------------------------------ Flatten / Reshape
def test_flatten_channels_last_order():
    _run(layers.Flatten, {}, (2, 3, 4, 5), (2, 60), lambda x, w: x.reshape(2, -1))


def test_flatten_channels_first_transposes_to_channels_last():
    _run(
        layers.Flatten,
        {"data_format": "channels_first"},
        (2, 5, 3, 4),
        (2, 60),
        lambda x, w: np.transpose(x, (0, 2, 3, 1)).reshape(2, -1),
    )


def test_flatten_rank1_and_errors():
    assert layers.Flatten()(torch.zeros(3)).shape == (3, 1)
    assert layers.Flatten().compute_output_shape((None, 4, None)) == (None, None)
    with pytest.raises(ValueError, match="data_format='NHWC'"):
        layers.Flatten(data_format="NHWC")


def test_reshape_with_minus_one():
    layer = _run(layers.Reshape, {"target_shape": (3, -1)}, (2, 12), (2, 3, 4), None)
    x = np.arange(24, dtype="float32").reshape(2, 12)
    np.testing.assert_array_equal(layer(torch.as_tensor(x)).numpy(), x.reshape(2, 3, 4))
    assert layer.compute_output_shape((None, 12)) == (None, 3, 4)
    assert layers.Reshape((2, 2))(torch.zeros(0, 4)).shape == (0, 2, 2)


def test_reshape_errors():
    with pytest.raises(ValueError, match="at most one -1"):
        layers.Reshape((-1, -1))
    with pytest.raises(ValueError, match=r"target_shape=\(0, 2\)"):
        layers.Reshape((0, 2))
    with pytest.raises(ValueError, match="total size"):
        layers.Reshape((5,))(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="total size"):
        layers.Reshape((3, -1))(distkeras.Input((4,)))


# -------------------------------------------------------------- Permute / RepeatVector
def test_permute_is_one_based():
    _run(
        layers.Permute,
        {"dims": (3, 1, 2)},
        (2, 3, 4, 5),
        (2, 5, 3, 4),
        lambda x, w: np.transpose(x, (0, 3, 1, 2)),
    )
    with pytest.raises(ValueError, match=r"dims=\(0, 1\)"):
        layers.Permute((0, 1))
    with pytest.raises(ValueError, match="rank 3"):
        layers.Permute((2, 1))(torch.zeros(2, 3, 4, 5))


def test_repeat_vector():
    _run(
        layers.RepeatVector,
        {"n": 3},
        (2, 4),
        (2, 3, 4),
        lambda x, w: np.repeat(x[:, None, :], 3, axis=1),
    )
    with pytest.raises(ValueError, match="n=0"):
        layers.RepeatVector(0)
    with pytest.raises(ValueError, match="rank 2"):
        layers.RepeatVector(2)(torch.zeros(2, 3, 4))


# --------------------------------------------------------------------------- UpSampling
def test_upsampling1d():
    _run(layers.UpSampling1D, {"size": 3}, (2, 4, 2), (2, 12, 2), lambda x, w: np.repeat(x, 3, 1))
    assert layers.UpSampling1D(3).get_config()["size"] == 3


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_upsampling2d_nearest(data_format):
    axes = (1, 2) if data_format == "channels_last" else (2, 3)
    shape = (2, 3, 4, 2) if data_format == "channels_last" else (2, 2, 3, 4)
    expected = (2, 6, 12, 2) if data_format == "channels_last" else (2, 2, 6, 12)
    _run(
        layers.UpSampling2D,
        {"size": (2, 3), "data_format": data_format},
        shape,
        expected,
        lambda x, w: np.repeat(np.repeat(x, 2, axes[0]), 3, axes[1]),
    )


def _half_pixel_bilinear(x, sh, sw):
    """Keras/TF ``image.resize(..., "bilinear")`` with half-pixel centres, NHWC, in numpy."""

    def taps(n_in, factor):
        src = np.maximum((np.arange(n_in * factor) + 0.5) / factor - 0.5, 0.0)
        low = np.floor(src).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (src - low)

    y0, y1, fy = taps(x.shape[1], sh)
    x0, x1, fx = taps(x.shape[2], sw)
    rows = x[:, y0] * (1 - fy)[None, :, None, None] + x[:, y1] * fy[None, :, None, None]
    return rows[:, :, x0] * (1 - fx)[None, None, :, None] + rows[:, :, x1] * fx[None, None, :, None]


def test_upsampling2d_bilinear_matches_half_pixel_formula():
    _run(
        layers.UpSampling2D,
        {"size": (2, 3), "interpolation": "bilinear"},
        (2, 3, 4, 2),
        (2, 6, 12, 2),
        lambda x, w: _half_pixel_bilinear(x, 2, 3),
    )
    _run(
        layers.UpSampling2D,
        {"size": 2, "interpolation": "bilinear", "data_format": "channels_first"},
        (1, 2, 3, 3),
        (1, 2, 6, 6),
        lambda x, w: np.transpose(
            _half_pixel_bilinear(np.transpose(x, (0, 2, 3, 1)), 2, 2), (0, 3, 1, 2)
        ),
    )


def test_upsampling_errors_and_3d():
    with pytest.raises(ValueError, match="interpolation='lanczos3'"):
        layers.UpSampling2D(interpolation="lanczos3")
    with pytest.raises(ValueError, match=r"size=\(2, 0\)"):
        layers.UpSampling2D(size=(2, 0))
    _run(
        layers.UpSampling3D,
        {"size": (1, 2, 3)},
        (1, 2, 2, 2, 1),
        (1, 2, 4, 6, 1),
        lambda x, w: np.repeat(np.repeat(x, 2, 2), 3, 3),
    )


# ------------------------------------------------------------------------ ZeroPadding
@pytest.mark.parametrize(
    "padding, pad_width",
    [(2, ((2, 2),)), ((1, 3), ((1, 3),))],
)
def test_zero_padding1d(padding, pad_width):
    pad = ((0, 0), *pad_width, (0, 0))
    total = sum(pad_width[0])
    _run(
        layers.ZeroPadding1D,
        {"padding": padding},
        (2, 3, 2),
        (2, 3 + total, 2),
        lambda x, w: np.pad(x, pad),
    )


@pytest.mark.parametrize(
    "padding, pads",
    [
        (1, ((1, 1), (1, 1))),
        ((1, 2), ((1, 1), (2, 2))),
        (((1, 0), (2, 3)), ((1, 0), (2, 3))),
    ],
)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_zero_padding2d_forms(padding, pads, data_format):
    if data_format == "channels_last":
        shape, np_pad = (2, 3, 4, 2), ((0, 0), *pads, (0, 0))
    else:
        shape, np_pad = (2, 2, 3, 4), ((0, 0), (0, 0), *pads)
    expected = tuple(n + sum(p) for n, p in zip(shape, np_pad))
    layer = _run(
        layers.ZeroPadding2D,
        {"padding": padding, "data_format": data_format},
        shape,
        expected,
        lambda x, w: np.pad(x, np_pad),
    )
    assert layer.get_config()["padding"] == [list(p) for p in pads]


def test_zero_padding_errors_and_3d():
    with pytest.raises(ValueError, match=r"padding=\(1, 2, 3\)"):
        layers.ZeroPadding2D((1, 2, 3))
    with pytest.raises(ValueError, match="padding"):
        layers.ZeroPadding1D(-1)
    _run(
        layers.ZeroPadding3D,
        {"padding": (1, 0, 2)},
        (1, 2, 2, 2, 1),
        (1, 4, 2, 6, 1),
        lambda x, w: np.pad(x, ((0, 0), (1, 1), (0, 0), (2, 2), (0, 0))),
    )


# --------------------------------------------------------------------------- Cropping
def test_cropping1d():
    _run(layers.Cropping1D, {"cropping": (1, 2)}, (2, 6, 3), (2, 3, 3), lambda x, w: x[:, 1:4])
    _run(layers.Cropping1D, {"cropping": 2}, (2, 6, 3), (2, 2, 3), lambda x, w: x[:, 2:4])


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_cropping2d(data_format):
    cropping = ((1, 0), (2, 1))
    if data_format == "channels_last":
        shape, expected = (2, 5, 6, 2), (2, 4, 3, 2)

        def reference(x, w):
            return x[:, 1:5, 2:5, :]
    else:
        shape, expected = (2, 2, 5, 6), (2, 2, 4, 3)

        def reference(x, w):
            return x[:, :, 1:5, 2:5]

    _run(
        layers.Cropping2D,
        {"cropping": cropping, "data_format": data_format},
        shape,
        expected,
        reference,
    )


def test_cropping_errors_and_3d():
    with pytest.raises(ValueError, match="smaller than the cropped"):
        layers.Cropping2D(((2, 2), (0, 0)))(torch.zeros(1, 4, 4, 1))
    with pytest.raises(ValueError, match="smaller than the cropped"):
        layers.Cropping1D((3, 3))(distkeras.Input((5, 2)))
    with pytest.raises(ValueError, match="cropping"):
        layers.Cropping2D("1")
    _run(
        layers.Cropping3D,
        {"cropping": 1},
        (1, 4, 4, 4, 2),
        (1, 2, 2, 2, 2),
        lambda x, w: x[:, 1:3, 1:3, 1:3],
    )


# ------------------------------------------------------------------------------ models
def test_sequential_image_pipeline_matches_numpy():
    model = distkeras.Sequential(
        [
            layers.Reshape((4, 4, 1), input_shape=(16,)),
            layers.ZeroPadding2D(1),
            layers.Cropping2D(((0, 1), (1, 0))),
            layers.UpSampling2D(2),
            layers.Permute((2, 1, 3)),
            layers.Flatten(),
            layers.Dense(3),
        ]
    )
    assert model.outputs[0].shape == (None, 3)
    x = np.random.default_rng(0).standard_normal((2, 16)).astype("float32")
    y = np.pad(x.reshape(2, 4, 4, 1), ((0, 0), (1, 1), (1, 1), (0, 0)))[:, :5, 1:]
    y = np.repeat(np.repeat(y, 2, 1), 2, 2).transpose(0, 2, 1, 3).reshape(2, -1)
    kernel, bias = model.get_weights()
    out = model(torch.as_tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), y @ kernel + bias, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert model.layers[-1].kernel.grad is not None


def test_functional_repeat_vector_model():
    inputs = distkeras.Input((3,))
    repeated = layers.RepeatVector(4)(inputs)
    outputs = layers.Dense(2)(repeated)
    model = distkeras.Model(inputs, outputs)
    assert model.outputs[0].shape == (None, 4, 2)
    x = torch.randn(2, 3)
    kernel, bias = model.get_weights()
    expected = np.repeat(x.numpy()[:, None], 4, 1) @ kernel + bias
    np.testing.assert_allclose(model(x).detach().numpy(), expected, rtol=1e-5, atol=1e-6)
