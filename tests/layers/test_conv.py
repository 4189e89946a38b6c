"""Conv1D/2D/3D, DepthwiseConv, SeparableConv against numpy loop references.

References work on channels_last numpy data with TensorFlow's "same" padding written out
explicitly (``ceil(n / s)`` outputs, the odd padded pixel at the end); channels_first cases
transpose the data around the same reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.harness import run_layer_test


# ------------------------------------------------------------------------ references
def tf_same_pads(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def np_conv(x, kernel, bias, strides, dilation, padding, groups=1):
    """Channels_last N-d convolution by loops. kernel: Keras (k..., in / groups, out)."""
    rank = kernel.ndim - 2
    ks = kernel.shape[:rank]
    if padding == "same":
        pads = [tf_same_pads(x.shape[1 + i], ks[i], strides[i], dilation[i]) for i in range(rank)]
    elif padding == "causal":
        pads = [((ks[0] - 1) * dilation[0], 0)]
    else:
        pads = [(0, 0)] * rank
    x = np.pad(x, [(0, 0), *pads, (0, 0)])
    out_sizes = [
        (x.shape[1 + i] - (ks[i] - 1) * dilation[i] - 1) // strides[i] + 1 for i in range(rank)
    ]
    cin_g, cout = kernel.shape[-2], kernel.shape[-1]
    cout_g = cout // groups
    y = np.zeros((x.shape[0], *out_sizes, cout), dtype=np.float64)
    for idx in np.ndindex(*out_sizes):
        for kidx in np.ndindex(*ks):
            pos = tuple(idx[i] * strides[i] + kidx[i] * dilation[i] for i in range(rank))
            patch = x[(slice(None), *pos)]
            for g in range(groups):
                y[(slice(None), *idx, slice(g * cout_g, (g + 1) * cout_g))] += (
                    patch[:, g * cin_g : (g + 1) * cin_g]
                    @ kernel[kidx][:, g * cout_g : (g + 1) * cout_g]
                )
    return y if bias is None else y + bias


def np_depthwise(x, kernel, strides, dilation, padding):
    """Output channel c * m + j convolves input channel c with kernel[..., c, j]."""
    channels, mult = kernel.shape[-2:]
    outs = []
    for c in range(channels):
        for j in range(mult):
            k = kernel[..., c : c + 1, j : j + 1]
            outs.append(np_conv(x[..., c : c + 1], k, None, strides, dilation, padding))
    return np.concatenate(outs, axis=-1)


def channels_first_ref(fn):
    """Wraps a channels_last reference for channels_first data."""

    def ref(x, weights):
        perm = (0, *range(2, x.ndim), 1)
        back = (0, x.ndim - 1, *range(1, x.ndim - 1))
        return fn(np.transpose(x, perm), weights).transpose(back)

    return ref


def random_weights(shapes, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype("float32") * 0.5 for s in shapes]


# ------------------------------------------------------------------------ ConvND
CONV_CASES = [
    # rank, input spatial, kernel, strides, padding, dilation, groups
    (1, (9,), 3, 1, "valid", 1, 1),
    (1, (9,), 4, 2, "same", 1, 1),
    (1, (9,), 3, 1, "causal", 2, 1),
    (1, (8,), 2, 1, "same", 3, 2),
    (2, (7, 6), 3, 1, "valid", 1, 1),
    (2, (7, 6), 3, 2, "same", 1, 1),
    (2, (8, 8), (2, 4), 2, "same", 1, 1),
    (2, (6, 7), (3, 2), 1, "same", 1, 2),
    (2, (9, 8), 3, 1, "same", (2, 3), 1),
    (2, (9, 8), 3, (2, 1), "valid", 1, 1),
    (3, (5, 4, 6), 2, (1, 2, 2), "same", 1, 1),
    (3, (5, 4, 5), (3, 2, 2), 1, "valid", 1, 1),
]
CONV_CLASSES = {1: layers.Conv1D, 2: layers.Conv2D, 3: layers.Conv3D}


def _tuple(v, rank):
    return (v,) * rank if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_reference(case, data_format):
    rank, spatial, kernel, strides, padding, dilation, groups = case
    cin, filters = 4, 6
    ks, st, dl = _tuple(kernel, rank), _tuple(strides, rank), _tuple(dilation, rank)
    shape = (2, *spatial, cin) if data_format == "channels_last" else (2, cin, *spatial)

    def ref_last(x, w):
        return np_conv(x, w[0], w[1], st, dl, padding, groups)

    ref = ref_last if data_format == "channels_last" else channels_first_ref(ref_last)
    expected = ref(np.zeros(shape), [np.zeros((*ks, cin // groups, filters)), 0.0])
    run_layer_test(
        CONV_CLASSES[rank],
        dict(
            filters=filters,
            kernel_size=kernel,
            strides=strides,
            padding=padding,
            dilation_rate=dilation,
            groups=groups,
            data_format=data_format,
        ),
        shape,
        expected_output_shape=expected.shape,
        expected_weight_shapes=[(*ks, cin // groups, filters), (filters,)],
        weights=random_weights([(*ks, cin // groups, filters), (filters,)]),
        reference=ref,
        atol=1e-4,
        rtol=1e-4,
    )


def test_same_padding_puts_the_odd_pixel_at_the_end():
    # TensorFlow pads x = [1..4] (k=2, s=1) as [1, 2, 3, 4, 0], and x = [1..6] (k=3, s=2)
    # as [1, ..., 6, 0]: the outputs below are worked out by hand from those paddings.
    x = torch.arange(1.0, 5.0).reshape(1, 4, 1)
    layer = layers.Conv1D(1, 2, padding="same", use_bias=False)
    layer(x)
    layer.set_weights([np.array([1.0, 10.0]).reshape(2, 1, 1)])
    np.testing.assert_allclose(layer(x).detach().numpy().ravel(), [21, 32, 43, 4])

    x = torch.arange(1.0, 7.0).reshape(1, 6, 1)
    layer = layers.Conv1D(1, 3, strides=2, padding="same", use_bias=False)
    layer(x)
    layer.set_weights([np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)])
    np.testing.assert_allclose(layer(x).detach().numpy().ravel(), [321, 543, 65])


def test_causal_conv1d_sees_only_the_past():
    x = torch.zeros(1, 6, 1)
    x[0, 3, 0] = 1.0
    layer = layers.Conv1D(2, 3, padding="causal", dilation_rate=2, bias_initializer="ones")
    out = layer(x)[0].detach().numpy()
    np.testing.assert_allclose(out[:3], 1.0)  # steps before the impulse only see the bias
    assert not np.allclose(out[3], 1.0)


def test_conv2d_stores_torch_layout_and_keeps_channels_last_output():
    layer = layers.Conv2D(5, (3, 2), groups=1)
    x = torch.randn(2, 6, 7, 3)
    out = layer(x)
    assert tuple(layer.kernel.shape) == (5, 3, 3, 2)  # what F.conv2d takes
    assert isinstance(layer.kernel, torch.nn.Parameter)
    assert out.shape == (2, 4, 6, 5) and out.is_contiguous()  # NHWC without a copy back
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 2, 3, 5)
    np.testing.assert_allclose(kernel, layer.kernel.detach().permute(2, 3, 1, 0).numpy())


def test_conv_kernel_initializer_sees_keras_layout():
    seen = []

    def init(shape, dtype=None):
        seen.append(tuple(shape))
        return torch.arange(float(np.prod(shape))).reshape(shape)

    layer = layers.Conv2D(4, (3, 2), kernel_initializer=init)
    layer(torch.zeros(1, 5, 5, 3))
    assert seen == [(3, 2, 3, 4)]
    np.testing.assert_array_equal(layer.get_weights()[0], np.arange(72.0).reshape(3, 2, 3, 4))


def test_conv_regularizer_and_activation():
    layer = layers.Conv2D(
        3, 2, activation="relu", kernel_regularizer=distkeras.regularizers.l2(0.1)
    )
    x = torch.randn(2, 4, 4, 2)
    out = layer(x)
    assert (out >= 0).all()
    (penalty,) = layer.losses
    np.testing.assert_allclose(penalty.item(), 0.1 * np.sum(layer.get_weights()[0] ** 2), 1e-5)


# ------------------------------------------------------------------ depthwise / separable
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize(
    "rank, spatial, kernel, strides, padding, dilation, mult",
    [
        (2, (7, 6), 3, 1, "valid", 1, 1),
        (2, (7, 6), 3, 2, "same", 1, 2),
        (2, (8, 7), (2, 3), 1, "same", 2, 3),
        (1, (9,), 4, 2, "same", 1, 2),
    ],
)
def test_depthwise_conv(data_format, rank, spatial, kernel, strides, padding, dilation, mult):
    cin = 3
    ks, st, dl = _tuple(kernel, rank), _tuple(strides, rank), _tuple(dilation, rank)
    shape = (2, *spatial, cin) if data_format == "channels_last" else (2, cin, *spatial)

    def ref_last(x, w):
        return np_depthwise(x, w[0], st, dl, padding) + w[1]

    ref = ref_last if data_format == "channels_last" else channels_first_ref(ref_last)
    cls = layers.DepthwiseConv2D if rank == 2 else layers.DepthwiseConv1D
    layer = run_layer_test(
        cls,
        dict(
            kernel_size=kernel,
            strides=strides,
            padding=padding,
            depth_multiplier=mult,
            dilation_rate=dilation,
            data_format=data_format,
        ),
        shape,
        expected_weight_shapes=[(*ks, cin, mult), (cin * mult,)],
        weights=random_weights([(*ks, cin, mult), (cin * mult,)]),
        reference=ref,
        atol=1e-4,
        rtol=1e-4,
    )
    assert tuple(layer.kernel.shape) == (cin * mult, 1, *ks)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize(
    "rank, spatial, kernel, strides, padding, mult",
    [(2, (7, 6), 3, 2, "same", 2), (2, (6, 6), (2, 3), 1, "valid", 1), (1, (9,), 3, 1, "same", 2)],
)
def test_separable_conv(data_format, rank, spatial, kernel, strides, padding, mult):
    cin, filters = 3, 5
    ks, st = _tuple(kernel, rank), _tuple(strides, rank)
    shape = (2, *spatial, cin) if data_format == "channels_last" else (2, cin, *spatial)

    def ref_last(x, w):
        depthwise = np_depthwise(x, w[0], st, (1,) * rank, padding)
        return depthwise @ w[1].reshape(cin * mult, filters) + w[2]

    ref = ref_last if data_format == "channels_last" else channels_first_ref(ref_last)
    cls = layers.SeparableConv2D if rank == 2 else layers.SeparableConv1D
    shapes = [(*ks, cin, mult), (*(1,) * rank, cin * mult, filters), (filters,)]
    layer = run_layer_test(
        cls,
        dict(
            filters=filters,
            kernel_size=kernel,
            strides=strides,
            padding=padding,
            depth_multiplier=mult,
            data_format=data_format,
        ),
        shape,
        expected_weight_shapes=shapes,
        weights=random_weights(shapes),
        reference=ref,
        atol=1e-4,
        rtol=1e-4,
    )
    assert [name for name, _ in layer.named_parameters()] == [
        "depthwise_kernel",
        "pointwise_kernel",
        "bias",
    ]


# ------------------------------------------------------------------------- models
def test_seed_cnn_shapes_in_sequential():
    flatten = getattr(layers, "Flatten", None)
    stack = [
        distkeras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
    ]
    if flatten is not None:
        stack.append(flatten())
    model = distkeras.Sequential(stack)
    out = model(torch.randn(3, 28, 28, 1))
    out = out if flatten is not None else out.reshape(out.shape[0], -1)
    assert tuple(out.shape) == (3, 1600)
    assert model.count_params() == (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64)
    assert [w.shape for w in model.get_weights()] == [(3, 3, 1, 32), (32,), (3, 3, 32, 64), (64,)]


def test_functional_conv_shapes():
    inputs = distkeras.Input(shape=(16, 16, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = layers.SeparableConv2D(4, 3, padding="same")(x)
    assert x.shape == (None, 8, 8, 4)


# --------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "cls, kwargs, words",
    [
        (layers.Conv2D, dict(filters=4, kernel_size=0), "kernel_size=0"),
        (layers.Conv2D, dict(filters=4, kernel_size=(3,)), "kernel_size=(3,)"),
        (layers.Conv2D, dict(filters=-1, kernel_size=3), "filters=-1"),
        (layers.Conv2D, dict(filters=6, kernel_size=3, groups=4), "groups=4"),
        (layers.Conv2D, dict(filters=4, kernel_size=3, padding="full"), "padding='full'"),
        (layers.Conv2D, dict(filters=4, kernel_size=3, padding="causal"), "padding='causal'"),
        (layers.Conv2D, dict(filters=4, kernel_size=3, strides=0), "strides=0"),
        (layers.Conv2D, dict(filters=4, kernel_size=3, data_format="NHWC"), "data_format='NHWC'"),
        (layers.Conv2D, dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), "strides"),
        (layers.Conv1D, dict(filters=4, kernel_size=3, dilation_rate=(1, 1)), "dilation_rate"),
        (layers.DepthwiseConv2D, dict(kernel_size=3, depth_multiplier=0), "depth_multiplier=0"),
        (layers.SeparableConv2D, dict(filters=0, kernel_size=3), "filters=0"),
    ],
)
def test_invalid_arguments(cls, kwargs, words):
    with pytest.raises(ValueError, match=cls.__name__) as err:
        cls(**kwargs)
    assert words in str(err.value)


def test_invalid_inputs_at_build():
    with pytest.raises(ValueError, match="divisible by groups=2"):
        layers.Conv2D(4, 3, groups=2)(torch.zeros(1, 5, 5, 3))
    with pytest.raises(ValueError, match="rank 4"):
        layers.Conv2D(4, 3)(torch.zeros(1, 5, 3))
    with pytest.raises(ValueError, match="at least the dilated kernel"):
        layers.Conv2D(4, 3, dilation_rate=2)(torch.zeros(1, 4, 8, 3))


def test_config_round_trip_accepts_keras_config():
    layer = layers.Conv2D(8, 3, strides=2, padding="SAME", activation="relu", name="c")
    config = layer.get_config()
    assert config["padding"] == "same" and config["kernel_size"] == (3, 3)
    assert config["strides"] == (2, 2) and config["data_format"] == "channels_last"
    for key in ("dilation_rate", "groups", "use_bias", "kernel_initializer", "bias_constraint"):
        assert key in config
    keras_style = dict(config, kernel_size=[3, 3], strides=[2, 2], lora_rank=None)
    clone = layers.Conv2D.from_config(keras_style)
    assert clone.kernel_size == (3, 3) and clone.strides == (2, 2)
    with pytest.raises(ValueError, match="lora_rank"):
        layers.Conv2D.from_config(dict(config, lora_rank=4))
    assert layers.Convolution2D is layers.Conv2D
    assert distkeras.layers.LAYER_REGISTRY["SeparableConv2D"] is layers.SeparableConv2D
