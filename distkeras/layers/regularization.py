"""Regularization layers: Dropout and its spatial variants, Gaussian noise, activity penalties.

Every random layer is active only when training (``training=None`` inherits the flag of the
enclosing call, e.g. ``model(x, training=True)`` or ``fit``) and is the identity otherwise.
As in Keras, each layer owns a ``SeedGenerator(seed)`` and draws through ``distkeras.random``:
a seeded layer's sequence of masks is reproducible whatever else draws numbers, an unseeded
Dropout outside fit uses torch's fused kernel on the global generator. Inside a fit training
step every sample's mask or noise is a pure function of (seed, layer, step, global sample
index), so 1 worker and N workers, and resumed runs, draw the same (``random/streams.py``).
"""

from __future__ import annotations

import math

import torch

from distkeras import regularizers
from distkeras.layers.base import Layer
from distkeras.layers.conv_base import standardize_data_format
from distkeras.random import random as random_ops
from distkeras.random.seed_generator import SeedGenerator

__all__ = [
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
]


def _check_rate(layer: str, rate, name: str = "rate") -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(
            f"{layer}: argument `{name}` must be a float in [0, 1). Received: {name}={rate!r}"
        )
    return float(rate)


def _check_seed(layer: str, seed) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(
            f"{layer}: argument `seed` must be an int or None. Received: seed={seed!r}"
        )
    return seed


class _RandomLayer(Layer):
    """A layer drawing random numbers from its own ``SeedGenerator``."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = _check_seed(type(self).__name__, seed)
        self.seed_generator: SeedGenerator | None = None
        self.supports_masking = True

    def _make_seed_generator(self, active: bool) -> None:
        # Keras creates it only for an active layer: an unseeded one draws its initial seed
        # from Python's `random`, so a ported program consumes the same random numbers.
        if active:
            self.seed_generator = SeedGenerator(self.seed)

    def compute_output_shape(self, input_shape):
        return input_shape

    def _noise_dtype(self, inputs: torch.Tensor) -> torch.dtype:
        return inputs.dtype if inputs.is_floating_point() else torch.get_default_dtype()


class Dropout(_RandomLayer):
    """Inverted dropout: while training, zeroes each entry with probability ``rate`` and
    scales the rest by ``1 / (1 - rate)``; the identity at inference.

    Args:
        rate: fraction of the inputs to drop, in [0, 1).
        noise_shape: shape of the binary mask, broadcast against the input; ``None`` entries
            take the input's size, e.g. ``(None, 1, None)`` drops the same features at every
            timestep.
        seed: optional int for a reproducible, layer-owned random sequence.

    Example:
        >>> layer = Dropout(0.5)
        >>> layer(torch.ones(2, 4), training=False)
        tensor([[1., 1., 1., 1.],
                [1., 1., 1., 1.]])
    """

    def __init__(self, rate: float, noise_shape=None, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _check_rate(type(self).__name__, rate)
        if noise_shape is not None:
            if not isinstance(noise_shape, (list, tuple)) or not all(
                d is None or (isinstance(d, int) and d > 0) for d in noise_shape
            ):
                raise ValueError(
                    "Dropout: argument `noise_shape` must be a tuple of positive ints or None "
                    f"entries. Received: noise_shape={noise_shape!r}"
                )
            noise_shape = tuple(noise_shape)
        self.noise_shape = noise_shape
        self._make_seed_generator(self.rate > 0)

    def build(self, input_shape):
        # Checked here, not only when training, so a bad noise_shape fails at model build.
        if self.noise_shape is None or not isinstance(input_shape, (tuple, list)):
            return
        shape = tuple(input_shape)
        # The batch size may change between calls: _check_noise_shape checks it.
        if len(self.noise_shape) != len(shape) or any(
            d is not None and s is not None and d not in (1, s)
            for d, s in zip(self.noise_shape[1:], shape[1:])
        ):
            raise ValueError(
                f"Dropout layer '{self.name}': `noise_shape` {self.noise_shape} must have one "
                "entry per input dimension, each None, 1 or that dimension's size. "
                f"Received: input_shape={shape}"
            )

    def _check_noise_shape(self, inputs: torch.Tensor) -> None:
        if len(self.noise_shape) != inputs.ndim or any(
            d is not None and d not in (1, s) for d, s in zip(self.noise_shape, inputs.shape)
        ):
            raise ValueError(
                f"Dropout layer '{self.name}': `noise_shape` {self.noise_shape} must have one "
                "entry per input dimension, each None, 1 or that dimension's size. "
                f"Received: inputs.shape={tuple(inputs.shape)}"
            )

    def _concrete_noise_shape(self, inputs: torch.Tensor) -> tuple:
        if self.noise_shape is None:
            return tuple(inputs.shape)
        self._check_noise_shape(inputs)
        return tuple(s if d is None else d for d, s in zip(self.noise_shape, inputs.shape))

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        if self.noise_shape is not None:
            self._check_noise_shape(inputs)
        return random_ops.dropout(
            inputs, self.rate, noise_shape=self.noise_shape, seed=self.seed_generator
        )

    def get_config(self):
        config = super().get_config()
        noise_shape = None if self.noise_shape is None else list(self.noise_shape)
        config.update(rate=self.rate, noise_shape=noise_shape, seed=self.seed)
        return config


class _SpatialDropout(Dropout):
    """Drops whole feature maps: one draw per (sample, channel)."""

    _rank = 0

    def __init__(self, rate: float, data_format=None, seed: int | None = None, **kwargs):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, seed=seed, **kwargs)
        name = type(self).__name__
        self.data_format = standardize_data_format(name, data_format)

    def call(self, inputs, training=None):
        if inputs.ndim != self._rank + 2:
            raise ValueError(
                f"{type(self).__name__} layer '{self.name}' expects inputs of rank "
                f"{self._rank + 2}. Received: inputs.shape={tuple(inputs.shape)}"
            )
        if not training or self.rate == 0:
            return inputs
        ones = (1,) * self._rank
        if self.data_format == "channels_last":
            noise_shape = (None, *ones, None)
        else:
            noise_shape = (None, None, *ones)
        return random_ops.dropout(
            inputs, self.rate, noise_shape=noise_shape, seed=self.seed_generator
        )

    def get_config(self):
        config = super().get_config()
        del config["noise_shape"]
        config["data_format"] = self.data_format
        return config


class SpatialDropout1D(_SpatialDropout):
    """Dropout of whole channels of ``(batch, steps, channels)`` inputs while training.

    Example:
        >>> SpatialDropout1D(0.2)(torch.ones(2, 5, 3), training=True).shape
        torch.Size([2, 5, 3])
    """

    _rank = 1

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        # Keras's SpatialDropout1D has no data_format: steps come before channels.
        kwargs.pop("data_format", None)
        super().__init__(rate, data_format="channels_last", seed=seed, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["data_format"]
        return config


class SpatialDropout2D(_SpatialDropout):
    """Dropout of whole feature maps of 4D image batches while training.

    Example:
        >>> SpatialDropout2D(0.2)(torch.ones(2, 4, 4, 3), training=True).shape
        torch.Size([2, 4, 4, 3])
    """

    _rank = 2


class SpatialDropout3D(_SpatialDropout):
    """Dropout of whole feature maps of 5D volume batches while training.

    Example:
        >>> SpatialDropout3D(0.2)(torch.ones(1, 2, 2, 2, 3), training=True).shape
        torch.Size([1, 2, 2, 2, 3])
    """

    _rank = 3


class GaussianNoise(_RandomLayer):
    """Adds zero-centred Gaussian noise of standard deviation ``stddev`` while training.

    Keras accepts ``stddev`` in [0, 1]; so does this layer.

    Example:
        >>> GaussianNoise(0.1)(torch.zeros(2, 3), training=False)
        tensor([[0., 0., 0.],
                [0., 0., 0.]])
    """

    def __init__(self, stddev: float, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float)) or not 0 <= stddev <= 1:
            raise ValueError(
                "GaussianNoise: argument `stddev` must be a float in [0, 1]. "
                f"Received: stddev={stddev!r}"
            )
        self.stddev = float(stddev)
        self._make_seed_generator(self.stddev > 0)

    def call(self, inputs, training=None):
        if not training or self.stddev == 0:
            return inputs
        noise = random_ops.draw_normal(
            inputs.shape,
            mean=0.0,
            stddev=self.stddev,
            dtype=self._noise_dtype(inputs),
            seed=self.seed_generator,
            batch_aligned=inputs.ndim > 0,
        )
        return inputs + noise

    def get_config(self):
        config = super().get_config()
        config.update(stddev=self.stddev, seed=self.seed)
        return config


class GaussianDropout(_RandomLayer):
    """Multiplies the inputs by noise ``N(1, rate / (1 - rate))`` while training.

    Example:
        >>> GaussianDropout(0.2)(torch.ones(2, 3), training=False)
        tensor([[1., 1., 1.],
                [1., 1., 1.]])
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _check_rate("GaussianDropout", rate)
        self._make_seed_generator(self.rate > 0)

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        noise = random_ops.draw_normal(
            inputs.shape,
            mean=1.0,
            stddev=math.sqrt(self.rate / (1.0 - self.rate)),
            dtype=self._noise_dtype(inputs),
            seed=self.seed_generator,
            batch_aligned=inputs.ndim > 0,
        )
        return inputs * noise

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config


# SELU's constants: AlphaDropout keeps SELU's self-normalising mean and variance.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class AlphaDropout(Dropout):
    """Dropout for SELU networks: dropped entries take SELU's negative saturation value and
    an affine map keeps the mean and variance, as Keras's ``AlphaDropout``.

    Example:
        >>> AlphaDropout(0.1)(torch.ones(2, 3), training=False)
        tensor([[1., 1., 1.],
                [1., 1., 1.]])
    """

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        shape = self._concrete_noise_shape(inputs)
        aligned = inputs.ndim > 0 and not (self.noise_shape and self.noise_shape[0] == 1)
        if aligned and shape[0] == 0:
            return inputs
        noise = random_ops.draw_uniform(
            shape, seed=self.seed_generator, batch_aligned=aligned, dtype=self._noise_dtype(inputs)
        )
        keep = (noise >= self.rate).to(inputs.dtype)
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * self.rate
        return a * (inputs * keep + alpha_p * (1 - keep)) + b


class ActivityRegularization(Layer):
    """The identity, adding ``(l1 * sum(|x|) + l2 * sum(x**2)) / batch_size`` to the losses.

    As in Keras 3 the penalty is divided by the batch size (so its strength does not depend on
    it) and counted in training and evaluation losses.

    Example:
        >>> layer = ActivityRegularization(l1=0.01)
        >>> _ = layer(torch.ones(2, 3))
        >>> layer.losses
        [tensor(0.0300)]
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)
        for name, value in (("l1", l1), ("l2", l2)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(
                    f"ActivityRegularization: argument `{name}` must be a non-negative number. "
                    f"Received: {name}={value!r}"
                )
        # The base class adds activity_regularizer(outputs) with add_loss after each call.
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1 = float(l1)
        self.l2 = float(l2)
        self.supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.pop("activity_regularizer", None)
        config.update(l1=self.l1, l2=self.l2)
        return config
