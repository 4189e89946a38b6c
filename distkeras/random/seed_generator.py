"""``SeedGenerator`` and the seeds random functions draw, with Keras 3's semantics.

An int seed gives the same numbers on every call; a ``SeedGenerator`` gives a new seed per
call and a reproducible sequence from its initial seed; ``seed=None`` draws from a global
``SeedGenerator`` that ``distkeras.utils.set_random_seed`` recreates. An unseeded generator's
initial seed comes from Python's ``random``, so a program that seeds Python's ``random`` is
reproducible. The state is kept as host integers: drawing a seed never reads the device.
"""

from __future__ import annotations

import random as python_random

import torch

from distkeras.utils import naming

_INT32 = 2**31


def _wrap_int32(value: int) -> int:
    """Two's-complement int32 overflow, as Keras's int32 seed tensors wrap."""
    return (value + _INT32) % (2 * _INT32) - _INT32


def make_default_seed() -> int:
    """The initial seed of an unseeded generator: drawn from Python's ``random``, as Keras."""
    return python_random.randint(1, int(1e9))


class SeedGenerator:
    """Generates a new seed on each call of a random function that receives it.

    Random functions given an int seed are stateless (the same values each call); pass a
    ``SeedGenerator`` to get new values on each call, reproducibly from its seed.

    Args:
        seed: the initial seed (an int), or None to draw one from Python's ``random``.
        name: optional name.

    Example:
        >>> seed_gen = distkeras.random.SeedGenerator(seed=42)
        >>> values = distkeras.random.normal(shape=(2, 3), seed=seed_gen)
        >>> new_values = distkeras.random.normal(shape=(2, 3), seed=seed_gen)
    """

    def __init__(self, seed: int | None = None, name: str | None = None, **kwargs):
        kwargs.pop("backend", None)  # Keras's backend override: there is one backend here
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
        self.name = name if name is not None else naming.uniquify("seed_generator")
        self._initial_seed = seed
        if seed is None:
            seed = make_default_seed()
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"Argument `seed` must be an integer. Received: seed={seed}")
        self._seed = _wrap_int32(seed)
        self._key_seed = seed  # what per-sample training draws key on (never advances)
        self._counter = 0
        # Set by the training step (training/randomness.py) for an unseeded generator owned by
        # a model: a key shared by all workers, so per-sample draws agree across them.
        self._stream_key: int | None = None

    @property
    def state(self) -> torch.Tensor:
        """``[seed, counter]`` as an int32 tensor, as Keras's ``seed_generator_state``."""
        return torch.tensor([self._seed, self._counter], dtype=torch.int32)

    def next(self, ordered: bool = True) -> torch.Tensor:
        """The current ``[seed, counter]``; advances the state (Keras's two update rules)."""
        current = self.state
        self._advance(ordered)
        return current

    def _advance(self, ordered: bool) -> None:
        if ordered:
            self._counter = _wrap_int32(self._counter + 1)
        else:  # Keras's sequence of near-unique numbers below 933199 (int32 arithmetic)
            self._seed = _wrap_int32((self._seed + 1) * 5387) % 933199
            self._counter = _wrap_int32((self._counter + 1) * 5387) % 933199

    def _draw(self, ordered: bool = True) -> int:
        """The next seed as one uint32 (what seeds a torch generator), state advanced."""
        value = (self._seed + self._counter) & 0xFFFFFFFF
        self._advance(ordered)
        return value

    def get_config(self) -> dict:
        return {"seed": self._initial_seed, "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> SeedGenerator:
        return cls(**config)


_GLOBAL: SeedGenerator | None = None


def global_seed_generator() -> SeedGenerator:
    """The generator behind ``seed=None``, created at first use (as in Keras)."""
    global _GLOBAL
    if _GLOBAL is None:
        _GLOBAL = SeedGenerator()
    return _GLOBAL


def reset_global_seed_generator() -> None:
    """``set_random_seed`` calls this: the next unseeded draw recreates the generator."""
    global _GLOBAL
    _GLOBAL = None


def draw_seed(seed) -> int:
    """The uint32 that seeds one draw: from an int, a ``SeedGenerator`` or None (global)."""
    if isinstance(seed, SeedGenerator):
        return seed._draw()
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed & 0xFFFFFFFF
    if seed is None:
        return global_seed_generator()._draw(ordered=False)
    raise ValueError(
        "Argument `seed` must be either an integer or an instance of `SeedGenerator`. "
        f"Received: seed={seed} (of type {type(seed)})"
    )
