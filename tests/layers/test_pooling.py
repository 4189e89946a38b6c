"""Pooling layers against numpy window loops with TensorFlow's "same" padding.

The reference visits each output window ``[o * s - pad_before, ... + pool)`` clipped to the
input: max and mean over the real cells only, which is what Keras/TF compute ("same" max
pooling ignores padding; "same" average pooling does not count padded cells).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.harness import run_layer_test


def tf_same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def np_pool(x, pool, strides, padding, mode):
    """Channels_last pooling by loops over output windows."""
    rank = x.ndim - 2
    sizes = x.shape[1:-1]
    if padding == "same":
        outs = [-(-n // s) for n, s in zip(sizes, strides)]
        befores = [tf_same_pads(n, k, s)[0] for n, k, s in zip(sizes, pool, strides)]
    else:
        outs = [(n - k) // s + 1 for n, k, s in zip(sizes, pool, strides)]
        befores = [0] * rank
    reduce = np.max if mode == "max" else np.mean
    y = np.zeros((x.shape[0], *outs, x.shape[-1]))
    for idx in np.ndindex(*outs):
        window = tuple(
            slice(max(o * s - b, 0), min(o * s - b + k, n))
            for o, s, b, k, n in zip(idx, strides, befores, pool, sizes)
        )
        y[(slice(None), *idx)] = reduce(x[(slice(None), *window)], axis=tuple(range(1, rank + 1)))
    return y


POOL_CLASSES = {
    ("max", 1): layers.MaxPooling1D,
    ("max", 2): layers.MaxPooling2D,
    ("max", 3): layers.MaxPooling3D,
    ("average", 1): layers.AveragePooling1D,
    ("average", 2): layers.AveragePooling2D,
    ("average", 3): layers.AveragePooling3D,
}
CASES = [
    # rank, spatial, pool_size, strides, padding
    (1, (9,), 2, None, "valid"),
    (1, (9,), 3, 2, "same"),
    (1, (8,), 2, 1, "same"),
    (2, (6, 7), 2, None, "valid"),
    (2, (7, 7), 2, None, "same"),
    (2, (6, 8), 3, 2, "same"),
    (2, (5, 6), (3, 2), (1, 2), "same"),
    (2, (8, 8), 3, (2, 1), "valid"),
    (3, (4, 5, 3), 2, None, "same"),
    (3, (5, 4, 4), (3, 2, 2), (2, 1, 2), "valid"),
]


def _tuple(v, rank):
    return (v,) * rank if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("case", CASES)
def test_pooling_matches_reference(case, data_format, mode):
    rank, spatial, pool, strides, padding = case
    ps = _tuple(pool, rank)
    st = ps if strides is None else _tuple(strides, rank)
    channels = 3
    if data_format == "channels_last":
        shape = (2, *spatial, channels)

        def ref(x, weights):
            return np_pool(x, ps, st, padding, mode)
    else:
        shape = (2, channels, *spatial)

        def ref(x, weights):
            return np.moveaxis(np_pool(np.moveaxis(x, 1, -1), ps, st, padding, mode), -1, 1)

    layer = run_layer_test(
        POOL_CLASSES[(mode, rank)],
        dict(pool_size=pool, strides=strides, padding=padding, data_format=data_format),
        shape,
        expected_weight_shapes=[],
        reference=ref,
    )
    config = layer.get_config()
    assert config["pool_size"] == ps and config["strides"] == st
    assert config["padding"] == padding and config["data_format"] == data_format


def test_same_average_pooling_divides_by_real_cells():
    # 5 steps, pool 2, stride 2: TF pads one cell at the end; the last window is [5] alone.
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]).reshape(1, 5, 1)
    out = layers.AveragePooling1D(2, padding="same")(x)
    np.testing.assert_allclose(out.numpy().ravel(), [1.5, 3.5, 5.0])
    # Pool 3, stride 1 on 4 steps: windows [1,2], [1,2,3], [2,3,4], [3,4].
    out = layers.AveragePooling1D(3, strides=1, padding="same")(x[:, :4])
    np.testing.assert_allclose(out.numpy().ravel(), [1.5, 2.0, 3.0, 3.5])
    # Max pooling must ignore the padding even when every real value is negative.
    out = layers.MaxPooling1D(2, padding="same")(-x)
    np.testing.assert_allclose(out.numpy().ravel(), [-1.0, -3.0, -5.0])


def test_pooling_keeps_channels_last_layout_and_gradients():
    x = torch.randn(2, 7, 7, 4, requires_grad=True)
    for layer in (layers.MaxPooling2D(padding="same"), layers.AveragePooling2D(3, 2, "same")):
        out = layer(x)
        assert out.shape == (2, 4, 4, 4) and out.is_contiguous()
        out.sum().backward()
        assert torch.isfinite(x.grad).all()
        x.grad = None
    # The cached window scale stays usable for training after an inference-mode call.
    layer = layers.AveragePooling2D(2, padding="same")
    with torch.inference_mode():
        layer(torch.randn(2, 5, 5, 4))
    layer(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_pooling_defaults_and_validation():
    assert layers.MaxPooling2D().pool_size == (2, 2)
    assert layers.MaxPooling1D().strides == (2,)
    assert layers.AveragePooling3D(3).strides == (3, 3, 3)
    assert layers.MaxPool2D is layers.MaxPooling2D and layers.AvgPool1D is layers.AveragePooling1D
    with pytest.raises(ValueError, match=r"MaxPooling2D.*pool_size=0"):
        layers.MaxPooling2D(pool_size=0)
    with pytest.raises(ValueError, match=r"AveragePooling1D.*padding='causal'"):
        layers.AveragePooling1D(padding="causal")
    with pytest.raises(ValueError, match=r"MaxPooling2D.*strides=\(1, 2, 3\)"):
        layers.MaxPooling2D(strides=(1, 2, 3))
    with pytest.raises(ValueError, match=r"GlobalAveragePooling2D.*data_format='nhwc'"):
        layers.GlobalAveragePooling2D(data_format="nhwc")
    with pytest.raises(ValueError, match="rank 4"):
        layers.MaxPooling2D()(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="at least the pool size"):
        layers.MaxPooling2D(3)(torch.zeros(2, 2, 5, 3))


# ------------------------------------------------------------------------ global pooling
GLOBAL_CLASSES = {
    ("max", 1): layers.GlobalMaxPooling1D,
    ("max", 2): layers.GlobalMaxPooling2D,
    ("max", 3): layers.GlobalMaxPooling3D,
    ("average", 1): layers.GlobalAveragePooling1D,
    ("average", 2): layers.GlobalAveragePooling2D,
    ("average", 3): layers.GlobalAveragePooling3D,
}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", ["max", "average"])
def test_global_pooling(mode, rank, data_format, keepdims):
    spatial = (5, 4, 3)[:rank]
    if data_format == "channels_last":
        shape, axes = (2, *spatial, 3), tuple(range(1, rank + 1))
    else:
        shape, axes = (2, 3, *spatial), tuple(range(2, rank + 2))
    reduce = np.max if mode == "max" else np.mean
    run_layer_test(
        GLOBAL_CLASSES[(mode, rank)],
        dict(data_format=data_format, keepdims=keepdims),
        shape,
        expected_output_shape=reduce(np.zeros(shape), axis=axes, keepdims=keepdims).shape,
        reference=lambda x, w: reduce(x, axis=axes, keepdims=keepdims),
    )


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_global_average_pooling1d_averages_unmasked_steps(data_format):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 2)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 0]], dtype=bool)
    x[~mask] = np.inf  # masked steps must not reach the mean at all
    expected = np.stack([x[i][mask[i]].mean(axis=0) for i in range(3)])
    data = x if data_format == "channels_last" else x.transpose(0, 2, 1)
    layer = layers.GlobalAveragePooling1D(data_format=data_format)
    out = layer(torch.as_tensor(data), mask=torch.as_tensor(mask))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    assert getattr(out, "_keras_mask", None) is None

    keep = layers.GlobalAveragePooling1D(data_format=data_format, keepdims=True)
    out = keep(torch.as_tensor(data), mask=torch.as_tensor(mask))
    assert out.shape == ((3, 1, 2) if data_format == "channels_last" else (3, 2, 1))


def test_global_pooling_in_a_functional_model():
    inputs = distkeras.Input(shape=(6, 6, 3))
    x = layers.Conv2D(4, 3, padding="same")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    assert x.shape == (None, 4)
    config = layers.GlobalMaxPooling2D(keepdims=True).get_config()
    assert config["keepdims"] is True and config["data_format"] == "channels_last"
