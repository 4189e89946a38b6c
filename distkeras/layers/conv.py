"""Convolution layers: Conv1D/2D/3D, their transposes, depthwise and separable convolutions.

``get_weights`` speaks Keras layouts (Conv kernel ``(k..., in / groups, filters)``, transposed
kernel ``(k..., filters, in)``); the stored parameters are in torch's layouts, so a step runs
``F.conv*d`` with no weight permutes. The shared machinery is in ``conv_base.py``; depthwise
and separable layers live in ``conv_depthwise.py``.
"""

from __future__ import annotations

from distkeras.layers.conv_base import BaseConv, BaseConvTranspose
from distkeras.layers.conv_depthwise import (
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
)

__all__ = [
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    # Keras's aliases.
    "Convolution1D",
    "Convolution2D",
    "Convolution3D",
    "Convolution1DTranspose",
    "Convolution2DTranspose",
    "Convolution3DTranspose",
    "SeparableConvolution1D",
    "SeparableConvolution2D",
]


class Conv1D(BaseConv):
    """1D convolution over ``(batch, steps, channels)`` (channels_last) inputs.

    Arguments as :class:`Conv2D`, with ints or 1-tuples, and one more padding mode:
    ``padding="causal"`` left-pads by ``dilation_rate * (kernel_size - 1)`` so that output
    ``t`` sees only inputs up to ``t``. Kernel ``(kernel_size, in / groups, filters)``.

    Example:
        >>> Conv1D(8, 3, padding="causal")(torch.ones(4, 10, 6)).shape
        torch.Size([4, 10, 8])
    """

    rank = 1


class Conv2D(BaseConv):
    """2D convolution: ``activation(conv2d(inputs, kernel) + bias)``.

    Args:
        filters: number of output channels.
        kernel_size: int or tuple of 2 ints.
        strides: int or tuple of 2 ints (> 1 excludes ``dilation_rate`` > 1).
        padding: "valid" (no padding) or "same" (``ceil(size / stride)`` outputs, padded as
            TensorFlow does: the odd pixel at the bottom/right).
        data_format: "channels_last" ``(batch, h, w, c)``, the default, or "channels_first".
        dilation_rate: int or tuple of 2 ints.
        groups: the input channels and the filters are split in this many groups, each
            convolved separately; both must be divisible by it.
        activation: name or callable; None is linear.
        use_bias: whether to add a bias.
        kernel_initializer, bias_initializer: default "glorot_uniform" and "zeros".
        kernel_regularizer, bias_regularizer, activity_regularizer: optional penalties.
        kernel_constraint, bias_constraint: optional projections after each update.

    Weights (Keras layout): ``kernel (kh, kw, in / groups, filters)``, ``bias (filters,)``.

    Example:
        >>> Conv2D(32, 3, activation="relu")(torch.ones(4, 28, 28, 1)).shape
        torch.Size([4, 26, 26, 32])
    """

    rank = 2


class Conv3D(BaseConv):
    """3D convolution over ``(batch, d, h, w, channels)`` (channels_last) inputs.

    Arguments as :class:`Conv2D`, with ints or 3-tuples. Kernel
    ``(kd, kh, kw, in / groups, filters)``.

    Example:
        >>> Conv3D(4, 3)(torch.ones(2, 5, 5, 5, 3)).shape
        torch.Size([2, 3, 3, 3, 4])
    """

    rank = 3


class Conv1DTranspose(BaseConvTranspose):
    """1D transposed convolution; arguments as :class:`Conv2DTranspose` with 1-tuples.

    Example:
        >>> Conv1DTranspose(8, 3, strides=2, padding="same")(torch.ones(4, 10, 6)).shape
        torch.Size([4, 20, 8])
    """

    rank = 1


class Conv2DTranspose(BaseConvTranspose):
    """2D transposed convolution (the gradient of a Conv2D with respect to its input).

    Args:
        filters: number of output channels.
        kernel_size, strides, dilation_rate: int or tuple of 2 ints.
        padding: "valid" or "same".
        output_padding: None, or int / tuple of 2 ints smaller than the strides. With None the
            output length is ``n * s + max(k - s, 0)`` ("valid") or ``n * s`` ("same"),
            otherwise ``(n - 1) * s + k - 2 * (k // 2 if "same" else 0) + output_padding``
            (``k`` the dilated kernel size), as Keras computes it.
        data_format, activation, use_bias, initializers, regularizers, constraints: as in
            :class:`Conv2D`.

    Weights (Keras layout): ``kernel (kh, kw, filters, in)``, ``bias (filters,)``.

    Example:
        >>> Conv2DTranspose(8, 3, strides=2, padding="same")(torch.ones(4, 7, 7, 16)).shape
        torch.Size([4, 14, 14, 8])
    """

    rank = 2


class Conv3DTranspose(BaseConvTranspose):
    """3D transposed convolution; arguments as :class:`Conv2DTranspose` with 3-tuples.

    Example:
        >>> Conv3DTranspose(2, 2, strides=2)(torch.ones(1, 3, 3, 3, 4)).shape
        torch.Size([1, 6, 6, 6, 2])
    """

    rank = 3


Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution3D = Conv3D
Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D
