"""Conv1D/2D/3DTranspose against their definition: the input-gradient of a convolution.

TensorFlow (and so Keras) defines ``conv_transpose(x, kernel, output_shape)`` as the gradient,
with respect to its input of shape ``output_shape``, of ``conv(input, kernel)`` with TF's
padding. The reference builds that convolution from ``F.conv*d`` on explicitly transposed
weights and explicitly padded data and takes its gradient with autograd; the output lengths
are Keras's formula, written out per case.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distkeras import layers
from tests.harness import run_layer_test

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CLASSES = {1: layers.Conv1DTranspose, 2: layers.Conv2DTranspose, 3: layers.Conv3DTranspose}


def tf_same_pads(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def transpose_reference(strides, dilation, padding, lengths):
    def ref(x, weights):
        kernel, bias = weights
        rank = x.ndim - 2
        inputs = torch.as_tensor(x, dtype=torch.float64).permute(0, rank + 1, *range(1, rank + 1))
        # Keras kernel (k..., filters, in) is the forward conv's (k..., in=filters, out=in):
        # torch's forward weight (out, in, k...) is (in, filters, k...).
        weight = torch.as_tensor(kernel, dtype=torch.float64)
        weight = weight.permute(rank + 1, rank, *range(rank))
        z = torch.zeros((x.shape[0], kernel.shape[-2], *lengths), dtype=torch.float64)
        z.requires_grad_(True)
        pads = [
            tf_same_pads(n, k, s, d) if padding == "same" else (0, 0)
            for n, k, s, d in zip(lengths, kernel.shape[:rank], strides, dilation)
        ]
        padded = F.pad(z, [p for pair in reversed(pads) for p in pair])
        conv = CONV[rank](padded, weight, stride=strides, dilation=dilation)
        assert tuple(conv.shape[2:]) == x.shape[1:-1], "case is not a conv's transpose"
        (grad,) = torch.autograd.grad(conv, z, grad_outputs=inputs)
        return grad.permute(0, *range(2, rank + 2), 1).numpy() + bias

    return ref


CASES = [
    # rank, spatial, kernel, strides, padding, output_padding, dilation, expected lengths
    (1, (5,), 3, 2, "same", None, 1, (10,)),
    (1, (5,), 3, 2, "valid", None, 1, (11,)),
    (1, (4,), 2, 3, "valid", None, 1, (12,)),
    (1, (4,), 3, 1, "same", None, 2, (4,)),
    (2, (4, 3), 3, 2, "same", None, 1, (8, 6)),
    (2, (4, 3), (4, 3), 2, "same", None, 1, (8, 6)),
    (2, (3, 4), 3, 1, "same", None, 2, (3, 4)),
    (2, (3, 3), 3, 2, "valid", 1, 1, (8, 8)),
    (2, (3, 3), 3, 2, "same", 1, 1, (6, 6)),
    (2, (3, 3), 2, 3, "same", (2, 1), 1, (8, 7)),
    (2, (3, 2), (2, 3), (2, 1), "valid", None, 1, (6, 4)),
    (3, (2, 3, 2), 2, 2, "valid", None, 1, (4, 6, 4)),
    (3, (2, 2, 3), 3, (1, 2, 2), "same", None, 1, (2, 4, 6)),
]


def _tuple(v, rank):
    return (v,) * rank if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("case", CASES)
def test_conv_transpose_matches_conv_gradient(case, data_format):
    rank, spatial, kernel, strides, padding, output_padding, dilation, lengths = case
    cin, filters = 3, 4
    ks, st, dl = _tuple(kernel, rank), _tuple(strides, rank), _tuple(dilation, rank)
    ref = transpose_reference(st, dl, padding, lengths)
    if data_format == "channels_last":
        shape, out_shape = (2, *spatial, cin), (2, *lengths, filters)
    else:
        shape, out_shape = (2, cin, *spatial), (2, filters, *lengths)
        ref_last = ref

        def ref(x, weights):
            out = ref_last(np.moveaxis(x, 1, -1), weights)
            return np.moveaxis(out, -1, 1)

    rng = np.random.default_rng(3)
    weights = [
        rng.standard_normal((*ks, filters, cin)).astype("float32"),
        rng.standard_normal(filters).astype("float32"),
    ]
    layer = run_layer_test(
        CLASSES[rank],
        dict(
            filters=filters,
            kernel_size=kernel,
            strides=strides,
            padding=padding,
            output_padding=output_padding,
            dilation_rate=dilation,
            data_format=data_format,
        ),
        shape,
        expected_output_shape=out_shape,
        expected_weight_shapes=[(*ks, filters, cin), (filters,)],
        weights=weights,
        reference=ref,
        atol=1e-4,
        rtol=1e-4,
    )
    assert tuple(layer.kernel.shape) == (cin, filters, *ks)  # F.conv_transpose's layout


def test_conv2d_transpose_config_and_validation():
    layer = layers.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1)
    config = layer.get_config()
    assert config["output_padding"] == (1, 1) and config["strides"] == (2, 2)
    assert "groups" not in config
    assert (
        layers.Conv2DTranspose.from_config(dict(config, output_padding=None)).output_padding is None
    )
    with pytest.raises(ValueError, match=r"Conv2DTranspose.*output_padding"):
        layers.Conv2DTranspose(4, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match=r"Conv1DTranspose.*kernel_size=-1"):
        layers.Conv1DTranspose(4, -1)
    with pytest.raises(ValueError, match=r"Conv2DTranspose.*padding='causal'"):
        layers.Conv2DTranspose(4, 3, padding="causal")
