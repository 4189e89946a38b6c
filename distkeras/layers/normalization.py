"""Normalization layers: LayerNormalization, GroupNormalization, UnitNormalization (here) and
BatchNormalization (``batch_normalization.py``, re-exported), with Keras's defaults and weight
order."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distkeras import constraints, initializers, regularizers
from distkeras.layers.base import Layer
from distkeras.layers.batch_normalization import (
    _LOW_PRECISION,
    BatchNormalization,
    _broadcast_shape,
    _check_axes,
    _check_epsilon,
    _positive_axis,
)

__all__ = [
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "UnitNormalization",
    "RMSNormalization",
]


class _AffineNorm(Layer):
    """Shared arguments of the per-sample normalizations (gamma/beta initializers etc.)."""

    def _init_affine(
        self,
        epsilon,
        center,
        scale,
        beta_initializer,
        gamma_initializer,
        beta_regularizer,
        gamma_regularizer,
        beta_constraint,
        gamma_constraint,
    ) -> None:
        self.epsilon = _check_epsilon(type(self).__name__, epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True

    def _add_affine(self, shape, with_gamma: bool, with_beta: bool) -> None:
        # Attributes are set only once: add_weight registers them as torch parameters.
        if with_gamma:
            self.gamma = self.add_weight(
                shape=shape,
                initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
                name="gamma",
            )
        else:
            self.gamma = None
        if with_beta:
            self.beta = self.add_weight(
                shape=shape,
                initializer=self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
                name="beta",
            )
        else:
            self.beta = None
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _affine_config(self) -> dict:
        return {
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        }


class LayerNormalization(_AffineNorm):
    """Normalizes each sample over ``axis``: ``(x - mean) / sqrt(var + epsilon) * gamma + beta``.

    gamma and beta span the normalized axes. ``rms_scaling=True`` follows Keras exactly: it
    ignores ``center``/``scale`` and returns ``x * gamma / sqrt(var(x) + epsilon)`` (Keras scales
    by the variance, not the mean of squares, and does not subtract the mean).

    Example:
        >>> LayerNormalization()(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(
        self,
        axis: int | list[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        rms_scaling: bool = False,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.axis = _check_axes("LayerNormalization", axis)
        self.rms_scaling = bool(rms_scaling)
        self._init_affine(
            epsilon,
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
        )

    def _axes_for(self, ndim: int) -> list[int]:
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        return [_positive_axis(self.name, a, ndim) for a in axes]

    def build(self, input_shape):
        axes = self._axes_for(len(input_shape))
        shape = tuple(input_shape[a] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(
                f"LayerNormalization layer '{self.name}' needs known sizes on axis {self.axis}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self._add_affine(
            shape,
            with_gamma=self.scale or self.rms_scaling,
            with_beta=self.center and not self.rms_scaling,
        )

    def call(self, inputs):
        x = inputs
        if x.dtype in _LOW_PRECISION and self.dtype == "float32":
            x = x.float()
        ndim = x.dim()
        axes = self._axes_for(ndim)
        sizes = [x.shape[a] for a in axes]
        if self.rms_scaling:
            var = torch.var(x, dim=axes, correction=0, keepdim=True)
            gamma = self.gamma.reshape(_broadcast_shape(ndim, axes, sizes))
            outputs = x * torch.rsqrt(var + self.epsilon) * gamma
        elif sorted(axes) == list(range(ndim - len(axes), ndim)):
            # Trailing axes: torch's fused kernel computes exactly Keras's formula.
            normalized = tuple(x.shape[ndim - len(axes) :])
            gamma = None if self.gamma is None else self.gamma.reshape(normalized)
            beta = None if self.beta is None else self.beta.reshape(normalized)
            outputs = F.layer_norm(x, normalized, gamma, beta, self.epsilon)
        else:
            var, mean = torch.var_mean(x, dim=axes, correction=0, keepdim=True)
            inv = torch.rsqrt(var + self.epsilon)
            shape = _broadcast_shape(ndim, axes, sizes)
            if self.gamma is not None:
                inv = inv * self.gamma.reshape(shape)
            shift = -mean * inv
            if self.beta is not None:
                shift = shift + self.beta.reshape(shape)
            outputs = torch.addcmul(shift, x, inv)
        return outputs.to(inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, rms_scaling=self.rms_scaling, **self._affine_config())
        return config


class GroupNormalization(_AffineNorm):
    """Normalizes each sample over groups of channels (and all other non-batch axes).

    ``groups=-1`` puts every channel in its own group (instance normalization). gamma and beta
    have one entry per channel.

    Example:
        >>> GroupNormalization(groups=2)(torch.randn(2, 6, 6, 4)).shape
        torch.Size([2, 6, 6, 4])
    """

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not isinstance(groups, int) or (groups < 1 and groups != -1):
            raise ValueError(
                "GroupNormalization: argument `groups` must be a positive integer or -1. "
                f"Received: groups={groups!r}"
            )
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(
                f"GroupNormalization: argument `axis` must be an int. Received: axis={axis!r}"
            )
        self.groups = groups
        self.axis = axis
        self._init_affine(
            epsilon,
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
        )

    def build(self, input_shape):
        axis = _positive_axis(self.name, self.axis, len(input_shape))
        dim = input_shape[axis]
        if dim is None:
            raise ValueError(
                f"GroupNormalization layer '{self.name}': axis {self.axis} of the input must "
                f"have a known size. Received: input_shape={tuple(input_shape)}"
            )
        groups = dim if self.groups == -1 else self.groups
        if dim < groups:
            raise ValueError(
                f"GroupNormalization layer '{self.name}': number of groups ({groups}) cannot "
                f"be more than the number of channels ({dim})."
            )
        if dim % groups != 0:
            raise ValueError(
                f"GroupNormalization layer '{self.name}': the number of channels ({dim}) must "
                f"be a multiple of the number of groups ({groups})."
            )
        self._groups = groups
        self._add_affine((dim,), with_gamma=self.scale, with_beta=self.center)

    def call(self, inputs):
        x = inputs.float() if inputs.dtype in _LOW_PRECISION else inputs
        axis = _positive_axis(self.name, self.axis, x.dim())
        groups = self._groups
        if axis == 1:
            outputs = F.group_norm(x, groups, self.gamma, self.beta, self.epsilon)
            return outputs.to(inputs.dtype)
        # Split the channel axis into (groups, channels per group) in place: a free view of
        # channels-last data, reduced over everything but the batch and group axes.
        channels = x.shape[axis]
        shape = [*x.shape[:axis], groups, channels // groups, *x.shape[axis + 1 :]]
        grouped = x.reshape(shape)
        reduce_dims = [d for d in range(1, len(shape)) if d != axis]
        var, mean = torch.var_mean(grouped, dim=reduce_dims, correction=0, keepdim=True)
        inv = torch.rsqrt(var + self.epsilon)
        affine_shape = _broadcast_shape(len(shape), [axis, axis + 1], [groups, channels // groups])
        if self.gamma is not None:
            inv = inv * self.gamma.reshape(affine_shape)
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + self.beta.reshape(affine_shape)
        return torch.addcmul(shift, grouped, inv).reshape(x.shape).to(inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups, axis=self.axis, **self._affine_config())
        return config


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over ``axis``: ``x / max(||x||, 1e-12)``.

    Example:
        >>> UnitNormalization()(torch.tensor([[3.0, 4.0]]))
        tensor([[0.6000, 0.8000]])
    """

    def __init__(self, axis: int | list[int] = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _check_axes("UnitNormalization", axis)
        self.supports_masking = True

    def call(self, inputs):
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        norm = torch.linalg.vector_norm(inputs, 2, dim=axes, keepdim=True)
        # Keras: x * min(1 / ||x||, 1 / 1e-12), so an all-zero sample stays zero.
        return inputs * norm.reciprocal().clamp(max=1e12)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


class RMSNormalization(Layer):
    """Root-mean-square normalization: ``x / sqrt(mean(x**2, axis) + epsilon) * scale``.

    ``scale`` (initialized to ones) has the size of the normalized axes.

    Example:
        >>> RMSNormalization()(torch.tensor([[3.0, 4.0]])).detach()
        tensor([[0.8485, 1.1314]])
    """

    def __init__(self, axis: int | list[int] = -1, epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.axis = _check_axes("RMSNormalization", axis)
        self.epsilon = float(epsilon)
        self.supports_masking = True

    def build(self, input_shape):
        axes = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        shape = tuple(input_shape[a] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(
                f"RMSNormalization layer '{self.name}' needs known sizes on axis={self.axis}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self._axes = axes
        self.scale = self.add_weight(shape, "ones", name="scale")

    def call(self, inputs):
        mean_square = inputs.square().mean(dim=self._axes, keepdim=True)
        # scale's axes are the normalized ones; put it back on them to broadcast.
        shape = [1] * inputs.ndim
        for axis, size in zip(self._axes, self.scale.shape):
            shape[axis] = size
        return inputs * torch.rsqrt(mean_square + self.epsilon) * self.scale.reshape(shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, epsilon=self.epsilon)
        return config
