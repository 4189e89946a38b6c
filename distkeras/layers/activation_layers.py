"""Activation layers of ``keras.layers``: ReLU, LeakyReLU, PReLU, ELU, Softmax, Identity.

Each applies the same function as ``distkeras.activations`` and keeps Keras's arguments,
validation and config keys, so a saved Keras model with these layers loads here.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from distkeras import activations, constraints, initializers, regularizers
from distkeras.layers.base import Layer

__all__ = ["ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Identity"]


def _non_negative(layer: str, name: str, value, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if value is None or float(value) < 0.0:
        raise ValueError(
            f"{name} of a {layer} layer cannot be None or a negative value. "
            f"Received: {name}={value}"
        )
    return float(value)


class _Elementwise(Layer):
    """Shape-preserving layers that pass masks through."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape


class ReLU(_Elementwise):
    """``max(x, 0)``, generalised: ``max_value`` caps it, values below ``threshold`` become
    ``negative_slope * (x - threshold)``.

    Example:
        >>> ReLU(max_value=1.0)(torch.tensor([-1.0, 0.5, 3.0]))
        tensor([0.0000, 0.5000, 1.0000])
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _non_negative("ReLU", "max_value", max_value, allow_none=True)
        self.negative_slope = _non_negative("ReLU", "negative_slope", negative_slope)
        self.threshold = _non_negative("ReLU", "threshold", threshold)

    def call(self, inputs):
        return activations.relu(
            inputs,
            negative_slope=self.negative_slope,
            max_value=self.max_value,
            threshold=self.threshold,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            max_value=self.max_value,
            negative_slope=self.negative_slope,
            threshold=self.threshold,
        )
        return config


class LeakyReLU(_Elementwise):
    """``x`` for ``x >= 0``, else ``negative_slope * x`` (Keras's default slope is 0.3)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # the Keras 2 name, still accepted by Keras 3 with a warning
            negative_slope = kwargs.pop("alpha")
            warnings.warn(
                "LeakyReLU: argument `alpha` is deprecated. Use `negative_slope` instead.",
                stacklevel=2,
            )
        super().__init__(**kwargs)
        self.negative_slope = _non_negative("LeakyReLU", "negative_slope", negative_slope)

    def call(self, inputs):
        return F.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self):
        config = super().get_config()
        config["negative_slope"] = self.negative_slope
        return config


class PReLU(_Elementwise):
    """Leaky ReLU with a learned slope ``alpha`` per input position.

    ``alpha`` has the input's shape without the batch axis; ``shared_axes`` (1-based, as in
    Keras) share one slope along those axes, e.g. ``shared_axes=[1, 2]`` for one slope per
    channel of an image.
    """

    def __init__(
        self,
        alpha_initializer="Zeros",
        alpha_regularizer=None,
        alpha_constraint=None,
        shared_axes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        elif isinstance(shared_axes, (list, tuple)):
            self.shared_axes = [int(a) for a in shared_axes]
        else:
            self.shared_axes = [int(shared_axes)]

    def build(self, input_shape):
        param_shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if not 1 <= axis < len(input_shape):
                raise ValueError(
                    f"PReLU layer '{self.name}': shared_axes entries must be between 1 and "
                    f"{len(input_shape) - 1} for input_shape={tuple(input_shape)}. "
                    f"Received: shared_axes={self.shared_axes}"
                )
            param_shape[axis - 1] = 1
        if any(d is None for d in param_shape):
            raise ValueError(
                f"PReLU layer '{self.name}' needs known dimensions outside shared_axes. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.alpha = self.add_weight(
            shape=param_shape,
            name="alpha",
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
        )

    def call(self, inputs):
        return torch.relu(inputs) - self.alpha * torch.relu(-inputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            alpha_initializer=initializers.serialize(self.alpha_initializer),
            alpha_regularizer=regularizers.serialize(self.alpha_regularizer),
            alpha_constraint=constraints.serialize(self.alpha_constraint),
            shared_axes=self.shared_axes,
        )
        return config


class ELU(_Elementwise):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return F.elu(inputs, alpha=self.alpha)

    def get_config(self):
        config = super().get_config()
        config["alpha"] = self.alpha
        return config


def _large_negative(dtype: torch.dtype) -> float:
    # What Keras adds at masked positions: -1e9, or the most negative float16 can hold.
    return -3e4 if dtype == torch.float16 else -1e9


class Softmax(_Elementwise):
    """Softmax over ``axis`` (an int or a tuple of ints).

    ``mask`` (True or > 0.5 where a position counts, broadcastable to the input) gives masked
    positions a large negative logit, so they get (almost) zero probability, as in Keras.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)

    def call(self, inputs, mask=None):
        if mask is not None:
            if mask.ndim > inputs.ndim:
                raise ValueError(
                    f"Softmax layer '{self.name}': the mask must be broadcastable to the "
                    f"inputs. Received: inputs.shape={tuple(inputs.shape)}, "
                    f"mask.shape={tuple(mask.shape)}"
                )
            keep = mask if mask.dtype == torch.bool else mask > 0.5
            inputs = torch.where(keep, inputs, _large_negative(inputs.dtype))
        if isinstance(self.axis, list):
            return torch.exp(inputs - torch.logsumexp(inputs, dim=self.axis, keepdim=True))
        return torch.softmax(inputs, dim=self.axis)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


class Identity(_Elementwise):
    """Returns its input unchanged; a placeholder where a layer is expected."""

    def call(self, inputs):
        return inputs
