"""Convolutions, pooling and block rearrangements of ``keras.ops.nn``.

Kernels come in Keras's layouts: ``conv`` (k..., in / groups, out), ``depthwise_conv``
(k..., in, multiplier), ``conv_transpose`` (k..., out, in). "same" padding is TensorFlow's
(the odd padded cell at the end) and padded cells never enter a pooling window: max pooling
pads with -inf, average pooling divides each window by its count of real cells.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distkeras.ops.dispatch import keras_op
from distkeras.ops.nn_util import (
    channels_first,
    flat_pads,
    restore_format,
    same_pads,
    spatial_rank,
    standardize_data_format,
    standardize_padding,
    standardize_tuple,
    to_tensor,
)

__all__ = [
    "adaptive_average_pool",
    "adaptive_max_pool",
    "average_pool",
    "conv",
    "conv_transpose",
    "depth_to_space",
    "depthwise_conv",
    "fold",
    "max_pool",
    "separable_conv",
    "space_to_depth",
    "unfold",
]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_ADAPTIVE_AVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
_ADAPTIVE_MAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}


def _kernel_to_torch(kernel: torch.Tensor) -> torch.Tensor:
    # Keras (k..., a, b) -> torch (b, a, k...).
    rank = kernel.ndim - 2
    return kernel.permute(rank + 1, rank, *range(rank))


def _conv(x, kernel, strides, padding, dilation, rank):
    """Channels-first ``x`` convolved with a torch-layout kernel, Keras's padding rules."""
    in_channels, kernel_in = x.shape[1], kernel.shape[1]
    if in_channels % kernel_in:
        raise ValueError(
            f"The number of input channels ({in_channels}) must be divisible by the kernel's "
            f"input channels ({kernel_in})."
        )
    pad = 0
    if padding == "same":
        pads = same_pads(x.shape[2:], kernel.shape[2:], strides, dilation)
        if all(a == b for a, b in pads):
            pad = tuple(a for a, _ in pads)
        else:
            x = F.pad(x, flat_pads(pads))
    return _CONV[rank](x, kernel, None, strides, pad, dilation, in_channels // kernel_in)


def _prepare(inputs, padding, data_format, op):
    x = to_tensor(inputs)
    rank = spatial_rank(x, op)
    data_format = standardize_data_format(data_format)
    return x, rank, standardize_padding(padding), data_format


@keras_op("nn")
def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    x, rank, padding, data_format = _prepare(inputs, padding, data_format, "conv")
    kernel = to_tensor(kernel)
    strides = standardize_tuple(strides, rank, "strides")
    dilation = standardize_tuple(dilation_rate, rank, "dilation_rate")
    y = _conv(
        channels_first(x, data_format), _kernel_to_torch(kernel), strides, padding, dilation, rank
    )
    return restore_format(y, data_format)


def _check_depthwise_channels(x, kernel, data_format):
    channels = x.shape[-1] if data_format == "channels_last" else x.shape[1]
    if kernel.shape[-2] != channels:
        raise ValueError(
            "The number of input channels must match the kernel's second to last dimension. "
            f"Received: inputs.shape={tuple(x.shape)}, kernel.shape={tuple(kernel.shape)}"
        )


@keras_op("nn")
def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    x, rank, padding, data_format = _prepare(inputs, padding, data_format, "depthwise_conv")
    kernel = to_tensor(kernel)
    _check_depthwise_channels(x, kernel, data_format)
    # (k..., C, M) -> (k..., 1, C*M): a grouped conv with one input channel per group.
    kernel = kernel.reshape(*kernel.shape[:-2], 1, kernel.shape[-2] * kernel.shape[-1])
    strides = standardize_tuple(strides, rank, "strides")
    dilation = standardize_tuple(dilation_rate, rank, "dilation_rate")
    y = _conv(
        channels_first(x, data_format), _kernel_to_torch(kernel), strides, padding, dilation, rank
    )
    return restore_format(y, data_format)


@keras_op("nn")
def separable_conv(
    inputs,
    depthwise_kernel,
    pointwise_kernel,
    strides=1,
    padding="valid",
    data_format=None,
    dilation_rate=1,
):
    depthwise = depthwise_conv.eager(
        inputs, depthwise_kernel, strides, padding, data_format, dilation_rate
    )
    # The pointwise step: a 1x1 conv (on which dilation has no effect).
    return conv.eager(depthwise, pointwise_kernel, 1, "valid", data_format, dilation_rate)


def _transpose_pads(k, stride, dilation, padding, output_padding):
    """(left, right) padding of the dilated-input view of a transposed conv (Keras/JAX)."""
    k = (k - 1) * dilation + 1
    if padding == "valid":
        extra = max(k, stride) - k if output_padding is None else output_padding
        return k - 1, k - 1 + extra
    if output_padding is None:
        total = stride + k - 2
    else:
        total = k + k % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, k - 1)
    return left, total - left


@keras_op("nn")
def conv_transpose(
    inputs,
    kernel,
    strides=1,
    padding="valid",
    output_padding=None,
    data_format=None,
    dilation_rate=1,
):
    x, rank, padding, data_format = _prepare(inputs, padding, data_format, "conv_transpose")
    kernel = to_tensor(kernel)
    channels = x.shape[-1] if data_format == "channels_last" else x.shape[1]
    if kernel.shape[-1] != channels:
        raise ValueError(
            "The number of input channels must match the kernel's last dimension. "
            f"Received: inputs.shape={tuple(x.shape)}, kernel.shape={tuple(kernel.shape)}"
        )
    strides = standardize_tuple(strides, rank, "strides")
    dilation = standardize_tuple(dilation_rate, rank, "dilation_rate")
    out_pads = (
        (None,) * rank
        if output_padding is None
        else standardize_tuple(output_padding, rank, "output_padding")
    )
    y = _CONV_T[rank](
        channels_first(x, data_format), _kernel_to_torch(kernel), None, strides, 0, 0, 1, dilation
    )
    # torch's full output is (in-1)*s + k_eff; Keras's window is cropped from it per side
    # (a negative crop extends it with zeros).
    index, pads, need_pad = [slice(None), slice(None)], [], False
    for d in range(rank):
        k_eff = (kernel.shape[d] - 1) * dilation[d] + 1
        left, right = _transpose_pads(
            kernel.shape[d], strides[d], dilation[d], padding, out_pads[d]
        )
        crop_l, crop_r = k_eff - 1 - left, k_eff - 1 - right
        index.append(slice(max(crop_l, 0), -crop_r if crop_r > 0 else None))
        pads.append((max(-crop_l, 0), max(-crop_r, 0)))
        need_pad = need_pad or crop_l < 0 or crop_r < 0
    y = y[tuple(index)]
    if need_pad:
        y = F.pad(y, flat_pads(pads))
    return restore_format(y, data_format)


def _pool_args(inputs, pool_size, strides, padding, data_format, op):
    x, rank, padding, data_format = _prepare(inputs, padding, data_format, op)
    pool = standardize_tuple(pool_size, rank, "pool_size")
    strides = pool if strides is None else standardize_tuple(strides, rank, "strides")
    return channels_first(x, data_format), rank, pool, strides, padding, data_format


@keras_op("nn")
def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    x, rank, pool, strides, padding, data_format = _pool_args(
        inputs, pool_size, strides, padding, data_format, "max_pool"
    )
    pad = 0
    if padding == "same":
        pads = same_pads(x.shape[2:], pool, strides, (1,) * rank)
        if all(a == b for a, b in pads):
            pad = tuple(a for a, _ in pads)  # torch pads max pooling with -inf itself
        else:
            x = F.pad(x, flat_pads(pads), value=float("-inf"))
    return restore_format(_MAX[rank](x, pool, strides, pad), data_format)


@keras_op("nn")
def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    x, rank, pool, strides, padding, data_format = _pool_args(
        inputs, pool_size, strides, padding, data_format, "average_pool"
    )
    if padding == "valid":
        return restore_format(_AVG[rank](x, pool, strides), data_format)
    pads = same_pads(x.shape[2:], pool, strides, (1,) * rank)
    if all(a == b for a, b in pads):
        y = _AVG[rank](x, pool, strides, tuple(a for a, _ in pads), count_include_pad=False)
    else:
        # torch pads symmetrically only: average the zero-padded data over whole windows,
        # then rescale by each window's fraction of real cells.
        flat = flat_pads(pads)
        means = _AVG[rank](F.pad(x, flat), pool, strides)
        ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
        y = means / _AVG[rank](F.pad(ones, flat), pool, strides)
    return restore_format(y, data_format)


def _adaptive(table, inputs, output_size, data_format, op):
    x = to_tensor(inputs)
    rank = spatial_rank(x, op)
    data_format = standardize_data_format(data_format)
    size = standardize_tuple(output_size, rank, "output_size")
    y = table[rank](channels_first(x, data_format), size)
    y = y[0] if isinstance(y, tuple) else y
    return restore_format(y, data_format)


@keras_op("nn")
def adaptive_average_pool(inputs, output_size, data_format=None):
    return _adaptive(_ADAPTIVE_AVG, inputs, output_size, data_format, "adaptive_average_pool")


@keras_op("nn")
def adaptive_max_pool(inputs, output_size, data_format=None):
    return _adaptive(_ADAPTIVE_MAX, inputs, output_size, data_format, "adaptive_max_pool")


@keras_op("nn")
def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    x = to_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"Input must be a 4D tensor. Received: input.shape={tuple(x.shape)}")
    return F.unfold(x, kernel_size, dilation=dilation, padding=padding, stride=stride)


@keras_op("nn")
def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    x = to_tensor(x)
    if x.ndim != 3:
        raise ValueError(f"Input must be a 3D tensor. Received: input.shape={tuple(x.shape)}")
    return F.fold(x, output_size, kernel_size, dilation=dilation, padding=padding, stride=stride)


def _check_block(x, block_size):
    if block_size < 2:
        raise ValueError(f"`block_size` must be at least 2. Received: block_size={block_size}")
    if x.ndim != 4:
        raise ValueError(f"Input must be a 4D tensor. Received: x.shape={tuple(x.shape)}")


@keras_op("nn")
def depth_to_space(x, block_size, data_format="channels_last"):
    x = to_tensor(x)
    _check_block(x, block_size)
    b = block_size
    if standardize_data_format(data_format) == "channels_last":
        n, h, w, c = x.shape
        x = x.reshape(n, h, w, b, b, c // (b * b)).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(n, h * b, w * b, c // (b * b))
    n, c, h, w = x.shape
    x = x.reshape(n, c // (b * b), b, b, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c // (b * b), h * b, w * b)


@keras_op("nn")
def space_to_depth(x, block_size, data_format="channels_last"):
    x = to_tensor(x)
    _check_block(x, block_size)
    b = block_size
    if standardize_data_format(data_format) == "channels_last":
        n, h, w, c = x.shape
        x = x.reshape(n, h // b, b, w // b, b, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(n, h // b, w // b, c * b * b)
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // b, b, w // b, b).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(n, c * b * b, h // b, w // b)
