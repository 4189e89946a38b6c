"""Weight initializers with Keras's names, defaults and fan computation.

An initializer is called with the weight's *Keras-layout* shape (e.g. a Conv2D kernel is
``(kh, kw, in, out)``), so fans match Keras whatever layout the layer stores internally.
"""

from __future__ import annotations

import math
import random as python_random
from collections.abc import Callable

import numpy as np
import torch

from distkeras import backend
from distkeras.utils.serialization import deserialize_object, serialize_object


def compute_fans(shape, input_axes=None, output_axes=None) -> tuple[int, int]:
    """(fan_in, fan_out) of a Keras-layout shape; explicit axes (e.g. an einsum kernel's)
    override the dense/conv convention, as in Keras.

    Example:
        >>> compute_fans((3, 3, 8, 16))  # a Conv2D kernel: 3*3*8 in, 3*3*16 out
        (72, 144)
    """
    shape = tuple(int(d) for d in shape)
    if input_axes is not None and output_axes is not None:
        fan_in = math.prod(shape[axis] for axis in input_axes)
        return int(fan_in), int(math.prod(shape[axis] for axis in output_axes))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: ``__call__(shape, dtype=None)`` returns a new CPU tensor."""

    def __call__(self, shape, dtype=None) -> torch.Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def clone(self) -> Initializer:
        return type(self).from_config(self.get_config())


class _Seeded(Initializer):
    """An integer seed makes every call give the same values (Keras's documented rule)."""

    def __init__(self, seed: int | None = None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(
                f"{type(self).__name__}: `seed` must be an int or None. Received: seed={seed!r}"
            )
        self.seed = seed
        # As Keras, an unseeded initializer draws its seed from Python's `random` when made:
        # a program that seeds `random` (or calls set_random_seed) gets the same weights.
        self._draw_seed = python_random.randint(1, int(1e9)) if seed is None else int(seed)

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self._draw_seed)

    def get_config(self) -> dict:
        return {"seed": self.seed}


class Zeros(Initializer):
    def __call__(self, shape, dtype=None):
        return torch.zeros(tuple(shape), dtype=backend.standardize_dtype(dtype))


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return torch.ones(tuple(shape), dtype=backend.standardize_dtype(dtype))


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        dtype = backend.standardize_dtype(dtype)
        if isinstance(self.value, (int, float)):
            return torch.full(tuple(shape), float(self.value), dtype=dtype)
        # An array value broadcasts to the shape, as Keras's cast(value) * ones(shape).
        value = torch.as_tensor(self.value, dtype=dtype)
        try:
            return value.expand(tuple(shape)).clone()
        except RuntimeError as err:
            raise ValueError(
                f"Constant initializer: value of shape {tuple(value.shape)} does not broadcast "
                f"to the weight shape {tuple(shape)}."
            ) from err

    def get_config(self):
        if isinstance(self.value, (int, float)):
            return {"value": self.value}
        return {"value": backend.to_numpy(self.value).tolist()}


class RandomNormal(_Seeded):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        t = torch.empty(tuple(shape), dtype=torch.float32)
        t.normal_(self.mean, self.stddev, generator=self._generator())
        return t.to(backend.standardize_dtype(dtype))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(_Seeded):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=None):
        t = torch.empty(tuple(shape), dtype=torch.float32)
        t.uniform_(self.minval, self.maxval, generator=self._generator())
        return t.to(backend.standardize_dtype(dtype))

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _truncated_normal(shape, mean, stddev, generator):
    # Keras truncates at two standard deviations.
    t = torch.empty(tuple(shape), dtype=torch.float32)
    t.normal_(0.0, 1.0, generator=generator)
    bad = t.abs() > 2.0
    while bad.any():
        redraw = torch.empty(int(bad.sum()), dtype=torch.float32).normal_(generator=generator)
        t[bad] = redraw
        bad = t.abs() > 2.0
    return t * stddev + mean


class TruncatedNormal(_Seeded):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        t = _truncated_normal(shape, self.mean, self.stddev, self._generator())
        return t.to(backend.standardize_dtype(dtype))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(_Seeded):
    """Samples with a variance of ``scale / fan`` (fan_in, fan_out or their mean).

    ``input_axes``/``output_axes`` (Keras 3.12+) name the kernel axes the fans are taken over,
    for kernels that are neither dense nor convolution kernels.

    Example:
        >>> init = VarianceScaling(scale=2.0, mode="fan_in", distribution="uniform")
        >>> w = init((3, 4))
    """

    def __init__(
        self,
        scale=1.0,
        mode="fan_in",
        distribution="truncated_normal",
        seed=None,
        input_axes=None,
        output_axes=None,
    ):
        super().__init__(seed)
        if scale <= 0.0:
            raise ValueError(f"Argument `scale` must be positive. Received: scale={scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(
                f"Argument `mode` must be fan_in, fan_out or fan_avg. Received: mode={mode!r}"
            )
        distribution = str(distribution).lower()
        if distribution == "normal":  # Keras's alias: "normal" means the truncated normal
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(
                "Argument `distribution` must be truncated_normal, untruncated_normal, uniform "
                f"or normal. Received: distribution={distribution!r}"
            )
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.input_axes = None if input_axes is None else list(input_axes)
        self.output_axes = None if output_axes is None else list(output_axes)

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        denom = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}
        scale = self.scale / max(1.0, denom[self.mode])
        gen = self._generator()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * scale)
            t = torch.empty(tuple(shape)).uniform_(-limit, limit, generator=gen)
        elif self.distribution == "untruncated_normal":
            t = torch.empty(tuple(shape)).normal_(0.0, math.sqrt(scale), generator=gen)
        else:
            # 0.879... is the stddev of a unit normal truncated at two stddevs.
            stddev = math.sqrt(scale) / 0.87962566103423978
            t = _truncated_normal(shape, 0.0, stddev, gen)
        return t.to(backend.standardize_dtype(dtype))

    def _axes_config(self) -> dict:
        # Written only when set: Keras releases before 3.12 reject the keys.
        if self.input_axes is None and self.output_axes is None:
            return {}
        return {"input_axes": self.input_axes, "output_axes": self.output_axes}

    def get_config(self):
        return {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "seed": self.seed,
            **self._axes_config(),
        }


class GlorotUniform(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_avg", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, **self._axes_config()}


class GlorotNormal(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, **self._axes_config()}


class HeNormal(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, **self._axes_config()}


class HeUniform(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(2.0, "fan_in", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, **self._axes_config()}


class LecunNormal(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_in", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, **self._axes_config()}


class LecunUniform(VarianceScaling):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_in", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, **self._axes_config()}


class Orthogonal(_Seeded):
    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(
                f"Orthogonal initializer needs a shape of rank >= 2. Received: {shape}"
            )
        rows = math.prod(shape[:-1])
        cols = shape[-1]
        flat = torch.empty(max(rows, cols), min(rows, cols)).normal_(generator=self._generator())
        q, r = torch.linalg.qr(flat)
        q = q * torch.sign(torch.diagonal(r))
        if rows < cols:
            q = q.T
        return (self.gain * q[:rows, :cols]).reshape(shape).to(backend.standardize_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(f"Identity initializer needs a 2D shape. Received: {tuple(shape)}")
        return self.gain * torch.eye(*shape, dtype=backend.standardize_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain}


_REGISTRY = {
    cls.__name__: cls
    for cls in (
        Zeros,
        Ones,
        Constant,
        RandomNormal,
        RandomUniform,
        TruncatedNormal,
        VarianceScaling,
        GlorotUniform,
        GlorotNormal,
        HeNormal,
        HeUniform,
        LecunNormal,
        LecunUniform,
        Orthogonal,
        Identity,
    )
}
_ALIASES = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "lecun_normal": LecunNormal,
    "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal,
    "identity": Identity,
    # Keras 3's short and legacy aliases.
    "uniform": RandomUniform,
    "normal": RandomNormal,
    "one": Ones,
    "zero": Zeros,
    "IdentityInitializer": Identity,
    "OrthogonalInitializer": Orthogonal,
}
_REGISTRY.update(_ALIASES)


def _from_value(value) -> Callable:
    """An initializer returning ``value`` (an array or tensor) for its exact shape, as Keras."""
    tensor = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)

    def initialize(shape, dtype=None):
        if tuple(shape) != tuple(tensor.shape):
            raise ValueError(
                f"An array initializer gives its own shape {tuple(tensor.shape)}. "
                f"Received: shape={tuple(shape)}"
            )
        return tensor.detach().to(backend.standardize_dtype(dtype)).clone()

    return initialize


def get(identifier) -> Initializer:
    """Resolves an initializer name, config dict, class, instance, array or callable
    ``f(shape, dtype)``.

    Example:
        >>> get("he_normal")((4, 3)).shape
        torch.Size([4, 3])
    """
    if identifier is None:
        return None
    if isinstance(identifier, (str, dict)):
        return deserialize_object(identifier, _REGISTRY, "initializer")
    if isinstance(identifier, (np.ndarray, np.generic, torch.Tensor)):
        return _from_value(identifier)
    if isinstance(identifier, type):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(
        f"Could not interpret initializer. Expected a name, a config or a callable. "
        f"Received: initializer={identifier!r}"
    )


def serialize(initializer) -> dict | None:
    return serialize_object(initializer, "keras.initializers")


deserialize = get
