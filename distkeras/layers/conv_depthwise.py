"""Depthwise and separable convolutions (re-exported by :mod:`distkeras.layers.conv`).

A depthwise kernel is ``(k..., in, depth_multiplier)`` in Keras layout; output channel
``c * depth_multiplier + m`` convolves input channel ``c`` with kernel slice ``[..., c, m]``,
which is exactly torch's grouped convolution with ``groups=in`` and weight
``(in * depth_multiplier, 1, k...)``: that is the stored layout.
"""

from __future__ import annotations

import functools

import torch

from distkeras import activations, constraints, initializers, regularizers
from distkeras.layers.base import Layer
from distkeras.layers.conv_base import (
    add_bias,
    channel_dim,
    check_input_rank,
    check_strides_and_dilation,
    check_window_fits,
    common_config,
    convolve,
    from_channels_first,
    kernel_to_keras,
    kernel_to_torch,
    lift,
    standardize_data_format,
    standardize_padding,
    standardize_tuple,
    to_channels_first,
)
from distkeras.layers.core import check_positive_int

__all__ = ["DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D"]


def depthwise_to_torch(kernel: torch.Tensor) -> torch.Tensor:
    """Keras ``(k..., in, m)`` -> torch ``(in * m, 1, k...)``."""
    r = kernel.ndim - 2
    flat = kernel.reshape(*kernel.shape[:r], -1)
    return flat.permute(r, *range(r)).unsqueeze(1)


def depthwise_to_keras(kernel: torch.Tensor, depth_multiplier: int) -> torch.Tensor:
    """torch ``(in * m, 1, k...)`` -> Keras ``(k..., in, m)``."""
    flat = kernel.squeeze(1)
    r = flat.ndim - 1
    flat = flat.permute(*range(1, r + 1), 0)
    return flat.reshape(*flat.shape[:r], -1, depth_multiplier)


class _DepthwiseBase(Layer):
    """Arguments and the depthwise kernel shared by depthwise and separable layers."""

    rank = 2

    def _init_depthwise(
        self, kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier
    ):
        cls, rank = type(self).__name__, self.rank
        self.depth_multiplier = check_positive_int(cls, "depth_multiplier", depth_multiplier)
        self.kernel_size = standardize_tuple(cls, "kernel_size", kernel_size, rank)
        self.strides = standardize_tuple(cls, "strides", strides, rank)
        self.dilation_rate = standardize_tuple(cls, "dilation_rate", dilation_rate, rank)
        check_strides_and_dilation(cls, self.strides, self.dilation_rate)
        self.padding = standardize_padding(cls, padding)
        self.data_format = standardize_data_format(cls, data_format)
        self._op_kernel = lift(self.kernel_size, 1)
        self._op_strides = lift(self.strides, 1)
        self._op_dilation = lift(self.dilation_rate, 1)

    def _build_depthwise(self, input_shape, name: str, prefix: str) -> int:
        check_input_rank(self, input_shape, self.rank)
        channels = channel_dim(self, input_shape)
        dilated = [(k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate)]
        check_window_fits(self, input_shape, dilated, "dilated kernel")
        param = self.add_weight(
            shape=(*self.kernel_size, channels, self.depth_multiplier),
            initializer=getattr(self, f"{prefix}_initializer"),
            regularizer=getattr(self, f"{prefix}_regularizer"),
            constraint=getattr(self, f"{prefix}_constraint"),
            name=name,
            to_storage=depthwise_to_torch,
            to_keras=functools.partial(depthwise_to_keras, depth_multiplier=self.depth_multiplier),
        )
        self._channels = channels
        return param

    def _depthwise(self, x, kernel, bias):
        kernel = kernel.unsqueeze(2) if self.rank == 1 else kernel
        return convolve(
            x,
            kernel,
            bias,
            self._op_kernel,
            self._op_strides,
            self._op_dilation,
            self.padding,
            x.shape[1],
        )

    def _shape_config(self) -> dict:
        return {
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
        }


class BaseDepthwiseConv(_DepthwiseBase):
    """N-D depthwise convolution; see :class:`DepthwiseConv2D`."""

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self._init_depthwise(
            kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier
        )
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        # Keras 3 names the depthwise layers' kernel "kernel".
        self.kernel = self._build_depthwise(input_shape, "kernel", "depthwise")
        self.bias = add_bias(self, self._channels * self.depth_multiplier)

    def call(self, inputs):
        x = to_channels_first(inputs, self.rank, self.data_format)
        y = self._depthwise(x, self.kernel, self.bias)
        return self.activation(from_channels_first(y, self.rank, self.data_format))

    def get_config(self):
        config = super().get_config()
        config["depth_multiplier"] = self.depth_multiplier
        config.update(self._shape_config())
        config.update(common_config(self, "depthwise"))
        return config


class BaseSeparableConv(_DepthwiseBase):
    """N-D depthwise separable convolution; see :class:`SeparableConv2D`."""

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate=1,
        depth_multiplier: int = 1,
        activation=None,
        use_bias: bool = True,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        pointwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        pointwise_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = check_positive_int(type(self).__name__, "filters", filters)
        self._init_depthwise(
            kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier
        )
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        self.depthwise_kernel = self._build_depthwise(input_shape, "depthwise_kernel", "depthwise")
        self.pointwise_kernel = self.add_weight(
            shape=(*(1,) * self.rank, self._channels * self.depth_multiplier, self.filters),
            initializer=self.pointwise_initializer,
            regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint,
            name="pointwise_kernel",
            to_storage=kernel_to_torch,
            to_keras=kernel_to_keras,
        )
        self.bias = add_bias(self, self.filters)

    def call(self, inputs):
        x = to_channels_first(inputs, self.rank, self.data_format)
        y = self._depthwise(x, self.depthwise_kernel, None)
        pointwise = self.pointwise_kernel
        pointwise = pointwise.unsqueeze(2) if self.rank == 1 else pointwise
        y = torch.nn.functional.conv2d(y, pointwise, self.bias)
        return self.activation(from_channels_first(y, self.rank, self.data_format))

    def get_config(self):
        config = super().get_config()
        config.update(depth_multiplier=self.depth_multiplier, filters=self.filters)
        config.update(self._shape_config())
        config.update(common_config(self, "depthwise", "pointwise"))
        return config


class DepthwiseConv1D(BaseDepthwiseConv):
    """1D depthwise convolution: each input channel gets ``depth_multiplier`` own filters.

    Input ``(batch, steps, channels)`` (channels_last); kernel ``(k, channels,
    depth_multiplier)``; output channels ``channels * depth_multiplier``.

    Example:
        >>> DepthwiseConv1D(3, depth_multiplier=2)(torch.ones(4, 10, 6)).shape
        torch.Size([4, 8, 12])
    """

    rank = 1


class DepthwiseConv2D(BaseDepthwiseConv):
    """2D depthwise convolution: each input channel gets ``depth_multiplier`` own filters.

    Args:
        kernel_size: int or tuple of 2 ints.
        strides: int or tuple of 2 ints (> 1 excludes ``dilation_rate`` > 1).
        padding: "valid" or "same" (TensorFlow's asymmetric same padding).
        depth_multiplier: output channels per input channel.
        data_format: "channels_last" (default) or "channels_first".
        dilation_rate: int or tuple of 2 ints.
        activation, use_bias, depthwise_*/bias_* initializer, regularizer, constraint: as in
            :class:`Conv2D`, for the kernel ``(kh, kw, in, depth_multiplier)``.

    Example:
        >>> DepthwiseConv2D(3, padding="same")(torch.ones(4, 8, 8, 3)).shape
        torch.Size([4, 8, 8, 3])
    """

    rank = 2


class SeparableConv1D(BaseSeparableConv):
    """1D depthwise separable convolution: a depthwise then a pointwise (k=1) convolution.

    Weights: ``depthwise_kernel (k, in, depth_multiplier)``, ``pointwise_kernel
    (1, in * depth_multiplier, filters)``, ``bias (filters,)``.

    Example:
        >>> SeparableConv1D(8, 3)(torch.ones(4, 10, 6)).shape
        torch.Size([4, 8, 8])
    """

    rank = 1


class SeparableConv2D(BaseSeparableConv):
    """2D depthwise separable convolution: a depthwise then a pointwise (1x1) convolution.

    Weights, in Keras order: ``depthwise_kernel (kh, kw, in, depth_multiplier)``,
    ``pointwise_kernel (1, 1, in * depth_multiplier, filters)``, ``bias (filters,)``. Strides,
    padding and dilation apply to the depthwise step.

    Example:
        >>> SeparableConv2D(16, 3, padding="same")(torch.ones(4, 8, 8, 3)).shape
        torch.Size([4, 8, 8, 16])
    """

    rank = 2
