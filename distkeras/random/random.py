"""Keras 3's random functions on torch: the same signatures, dtypes and seeding semantics.

Outside a training step each function seeds a torch generator as Keras's torch backend does
(from an int seed, a ``SeedGenerator`` or the global generator), so a seeded call draws the
numbers Keras would. Inside a fit training step, ``normal``, ``uniform``, ``randint``,
``truncated_normal`` and ``dropout`` calls whose first dimension is the batch draw per sample
(see ``streams.py``): every sample gets the same numbers whichever worker holds it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distkeras import backend
from distkeras.ops.dispatch import keras_op
from distkeras.random import streams
from distkeras.random.seed_generator import SeedGenerator, draw_seed

# Identities of the streams that have no SeedGenerator object (call counting per step).
_GLOBAL_STREAM = object()
_INT_SEED_SALT, _GENERATOR_SALT = 0x5EED, 0x5EED6E4


def _shape(shape, fn: str) -> tuple:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(
            f"`{fn}`: `shape` must be a tuple of ints. Received: shape={shape!r}"
        ) from None
    if any(d is None or isinstance(d, bool) or int(d) < 0 for d in dims):
        raise ValueError(
            f"`{fn}`: `shape` must be fully defined, non-negative ints. Received: shape={shape!r}"
        )
    return tuple(int(d) for d in dims)


def _float_dtype(dtype, fn: str) -> torch.dtype:
    resolved = backend.standardize_dtype(dtype or backend.floatx())
    if not resolved.is_floating_point:
        raise ValueError(
            f"`keras.random.{fn}` requires a floating point `dtype`. Received: dtype={dtype} "
        )
    return resolved


def _check_seed(seed) -> None:
    if not (seed is None or isinstance(seed, SeedGenerator)) and (
        isinstance(seed, bool) or not isinstance(seed, int)
    ):
        raise ValueError(
            "Argument `seed` must be either an integer or an instance of `SeedGenerator`. "
            f"Received: seed={seed} (of type {type(seed)})"
        )


def _per_sample_seed(seed):
    """(stream identity, key, counts calls) for a draw inside a training step."""
    if seed is None:
        return _GLOBAL_STREAM, streams.SAMPLES.global_key
    if isinstance(seed, SeedGenerator):
        key = seed._stream_key
        if key is None:
            key = streams.mix(_GENERATOR_SALT, seed._key_seed)
        return seed, key
    # An int seed gives the same numbers on every call, as in Keras: no step, no call count.
    return None, streams.mix(_INT_SEED_SALT, seed)


def _draw(seed, shape: tuple, device, fill, batch_aligned=None) -> torch.Tensor:
    """``fill(generator, shape)``: per sample in a training step, else seeded as Keras."""
    _check_seed(seed)
    if streams.in_training_step():
        stream, key = _per_sample_seed(seed)
        if stream is None:  # int seed: a fixed key, the same each call and step
            gen = streams.generator(device, key)
            return streams.own_rows(fill, gen, shape, batch_aligned)
        return streams.per_sample_draw(stream, key, shape, device, fill, batch_aligned)
    return fill(streams.generator(device, draw_seed(seed)), shape)


def _seeded_device() -> torch.device:
    return backend.get_device()


@keras_op("random")
@streams.eager_under_compile
def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> torch.Tensor:
    """Normally distributed values of ``shape``.

    Example:
        >>> distkeras.random.normal((2, 3), seed=1).shape
        torch.Size([2, 3])
    """
    return draw_normal(shape, mean, stddev, dtype, seed)


@streams.eager_under_compile
def draw_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None, batch_aligned=None):
    """``normal``; ``batch_aligned=True`` (layers) says dimension 0 is the batch."""
    shape, dtype, device = _shape(shape, "normal"), _float_dtype(dtype, "normal"), _seeded_device()

    def fill(gen, size):
        return torch.normal(mean, stddev, size=size, generator=gen, dtype=dtype, device=device)

    return _draw(seed, shape, device, fill, batch_aligned)


@keras_op("random")
@streams.eager_under_compile
def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None) -> torch.Tensor:
    """Uniformly distributed values in ``[minval, maxval)``; ``dtype`` must be a float type."""
    return draw_uniform(shape, minval, maxval, dtype, seed)


@streams.eager_under_compile
def draw_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None, batch_aligned=None):
    """``uniform``; ``batch_aligned=True`` (layers) says dimension 0 is the batch."""
    shape, device = _shape(shape, "uniform"), _seeded_device()
    dtype = _float_dtype(dtype, "uniform")

    def fill(gen, size):
        size = size or (1,)  # a scalar is drawn as one element, as Keras does
        return torch.rand(size=size, generator=gen, dtype=dtype, device=device)

    out = (maxval - minval) * _draw(seed, shape, device, fill, batch_aligned) + minval
    return out[0] if not shape else out


@keras_op("random")
@streams.eager_under_compile
def randint(shape, minval, maxval, dtype="int32", seed=None) -> torch.Tensor:
    """Integers drawn uniformly from ``[minval, maxval)``; ``dtype`` must be an integer type."""
    shape, device = _shape(shape, "randint"), _seeded_device()
    resolved = backend.standardize_dtype(dtype or "int32")
    if resolved.is_floating_point or resolved == torch.bool:
        raise ValueError(
            f"`keras.random.randint` requires an integer `dtype`. Received: dtype={dtype} "
        )

    def fill(gen, size):
        return torch.randint(
            low=minval, high=maxval, size=size, generator=gen, dtype=resolved, device=device
        )

    return _draw(seed, shape, device, fill)


@keras_op("random")
@streams.eager_under_compile
def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None) -> torch.Tensor:
    """Normal values redrawn until within two standard deviations of the mean (Keras's
    method: the first of four draws that falls inside)."""
    shape = _shape(shape, "truncated_normal")
    x = normal(shape + (4,), mean=0.0, stddev=1.0, dtype=dtype, seed=seed)
    valid = (x > -2) & (x < 2)
    first = valid.max(-1, keepdim=True)[1]
    return x.gather(-1, first).squeeze(-1).mul_(stddev).add_(mean)


def _noise_shape(inputs: torch.Tensor, noise_shape) -> tuple:
    if noise_shape is None:
        return tuple(inputs.shape)
    return tuple(s if d is None else int(d) for d, s in zip(noise_shape, inputs.shape))


@keras_op("random")
@streams.eager_under_compile
def dropout(inputs, rate, noise_shape=None, seed=None) -> torch.Tensor:
    """Inverted dropout: zeroes entries with probability ``rate``, scales the rest by
    ``1 / (1 - rate)``. ``noise_shape`` (None entries take the input's size) broadcasts the
    mask. Used by the Dropout layers; inside fit each sample's mask is worker-independent."""
    if not isinstance(inputs, torch.Tensor):
        inputs = backend.convert_to_tensor(inputs)
    _check_seed(seed)
    if rate == 1.0:
        return torch.zeros_like(inputs)
    if rate == 0.0:
        return inputs
    keep = 1.0 - rate
    if streams.in_training_step():
        return _per_sample_dropout(inputs, keep, noise_shape, seed)
    seeded = seed is not None and not (
        isinstance(seed, SeedGenerator) and seed._initial_seed is None
    )
    if not seeded and noise_shape is None:
        # Keras's fast path: torch's fused dropout on the global generator.
        return F.dropout(inputs, p=rate, training=True)
    shape = _noise_shape(inputs, noise_shape)
    gen = streams.generator(inputs.device, draw_seed(seed))
    mask = torch.bernoulli(torch.full(shape, keep, device=inputs.device), generator=gen).bool()
    return torch.where(mask, inputs / keep, torch.zeros_like(inputs))


def _per_sample_dropout(inputs, keep: float, noise_shape, seed) -> torch.Tensor:
    shape = _noise_shape(inputs, noise_shape)
    # Dimension 0 is the batch unless noise_shape broadcasts it (an explicit 1).
    aligned = inputs.ndim > 0 and not (noise_shape is not None and noise_shape[0] == 1)
    if aligned and shape[0] == 0:
        return inputs  # this worker holds no row of this batch

    def fill(gen, size):
        # bernoulli_ with a scalar p is the kernel F.dropout uses: the same speed.
        mask = torch.empty(size, dtype=inputs.dtype, device=inputs.device)
        return mask.bernoulli_(keep, generator=gen).div_(keep)

    return inputs * _draw(seed, shape, inputs.device, fill, batch_aligned=aligned)


@keras_op("random")
@streams.eager_under_compile
def shuffle(x, axis=0, seed=None) -> torch.Tensor:
    """``x`` with its entries along ``axis`` randomly permuted."""
    x = backend.convert_to_tensor(x)
    _check_seed(seed)
    gen = streams.generator(x.device, draw_seed(seed))
    perm = torch.rand(x.shape[: axis + 1], generator=gen, device=x.device).argsort(axis)
    for _ in range(x.ndim - axis - 1):
        perm.unsqueeze_(-1)
    perm = perm.repeat(*[1] * (axis + 1), *x.shape[axis + 1 :])
    return x.gather(axis, perm)


@keras_op("random")
@streams.eager_under_compile
def categorical(logits, num_samples, dtype="int32", seed=None) -> torch.Tensor:
    """``num_samples`` class indices per row of 2-D ``logits`` (unnormalized log-probs)."""
    logits = backend.convert_to_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(
            "`logits` should be a 2-D tensor with shape [batch_size, num_classes]. "
            f"Received: logits={logits}"
        )
    _check_seed(seed)
    probs = torch.softmax(logits, dim=-1)
    gen = streams.generator(logits.device, draw_seed(seed))
    out = torch.multinomial(probs, int(num_samples), replacement=True, generator=gen)
    return out.type(backend.standardize_dtype(dtype))


def _global_rng_sample(seed, device, sample) -> torch.Tensor:
    """torch.distributions samplers take no generator: seed the global one, then restore it
    (Keras's method, so seeded draws match its values)."""
    _check_seed(seed)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        torch.manual_seed(draw_seed(seed))
        return sample()


def _broadcast(value, shape, device) -> torch.Tensor:
    return torch.broadcast_to(backend.convert_to_tensor(value, device=device), shape)


@keras_op("random")
@streams.eager_under_compile
def gamma(shape, alpha, dtype=None, seed=None) -> torch.Tensor:
    """Gamma-distributed values with concentration ``alpha`` (rate 1)."""
    shape, dtype, device = _shape(shape, "gamma"), _float_dtype(dtype, "gamma"), _seeded_device()
    alpha = _broadcast(alpha, shape, device)
    dist = torch.distributions.Gamma(alpha, torch.ones(shape, device=device))
    return _global_rng_sample(seed, device, dist.sample).type(dtype)


@keras_op("random")
@streams.eager_under_compile
def binomial(shape, counts, probabilities, dtype=None, seed=None) -> torch.Tensor:
    """Binomial counts of successes in ``counts`` trials of probability ``probabilities``."""
    shape, device = _shape(shape, "binomial"), _seeded_device()
    dtype = _float_dtype(dtype, "binomial")
    counts = _broadcast(counts, shape, device)
    probs = _broadcast(probabilities, shape, device)
    dist = torch.distributions.Binomial(total_count=counts, probs=probs)
    return _global_rng_sample(seed, device, dist.sample).type(dtype)


@keras_op("random")
@streams.eager_under_compile
def beta(shape, alpha, beta, dtype=None, seed=None) -> torch.Tensor:
    """Beta-distributed values with concentrations ``alpha`` and ``beta``."""
    shape, dtype, device = _shape(shape, "beta"), _float_dtype(dtype, "beta"), _seeded_device()
    a, b = _broadcast(alpha, shape, device), _broadcast(beta, shape, device)
    dist = torch.distributions.Beta(concentration1=a, concentration0=b)
    return _global_rng_sample(seed, device, dist.sample).type(dtype)


__all__ = [
    "normal",
    "uniform",
    "randint",
    "truncated_normal",
    "dropout",
    "shuffle",
    "categorical",
    "gamma",
    "binomial",
    "beta",
    "SeedGenerator",
]
