"""Weight and activity regularizers with Keras's formulas.

``L2(0.01)(w)`` is ``0.01 * sum(w**2)`` (no 1/2 factor); ``L1L2`` adds both terms.
"""

from __future__ import annotations

import math

import torch

from distkeras.utils.serialization import deserialize_object, serialize_object


def _check_factor(name: str, value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"Argument `{name}` must be a non-negative finite number. Received: {name}={value!r}"
        )
    return float(value)


class Regularizer:
    """Base class: ``__call__(weight)`` returns a scalar penalty tensor."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(())

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


class L1(Regularizer):
    """``l1 * sum(abs(w))``.

    Example:
        >>> Dense(8, kernel_regularizer=distkeras.regularizers.L1(0.01))
    """

    def __init__(self, l1: float = 0.01):
        self.l1 = _check_factor("l1", 0.01 if l1 is None else l1)

    def __call__(self, x):
        return self.l1 * torch.sum(torch.abs(x))

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(w**2)``.

    Example:
        >>> Dense(8, kernel_regularizer=distkeras.regularizers.L2(0.01))
    """

    def __init__(self, l2: float = 0.01):
        self.l2 = _check_factor("l2", 0.01 if l2 is None else l2)

    def __call__(self, x):
        return self.l2 * torch.sum(torch.square(x))

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1 * sum(abs(w)) + l2 * sum(w**2)``; both factors default to 0 as in Keras."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _check_factor("l1", 0.0 if l1 is None else l1)
        self.l2 = _check_factor("l2", 0.0 if l2 is None else l2)

    def __call__(self, x):
        penalty = x.new_zeros(())
        if self.l1:
            penalty = penalty + self.l1 * torch.sum(torch.abs(x))
        if self.l2:
            penalty = penalty + self.l2 * torch.sum(torch.square(x))
        return penalty

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Penalises non-orthogonal rows (or columns) of a 2D kernel, as Keras's."""

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        if mode not in ("rows", "columns"):
            raise ValueError(f"Argument `mode` must be rows or columns. Received: mode={mode!r}")
        self.factor = _check_factor("factor", factor)
        self.mode = mode

    def __call__(self, x):
        if x.ndim != 2:
            raise ValueError(
                f"OrthogonalRegularizer needs a rank-2 weight. Received: shape={tuple(x.shape)}"
            )
        if self.mode == "columns":
            x = x.T
        # Keras normalises each vector by max(norm, 1e-7).
        x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-7)
        product = x @ x.T
        size = product.shape[0]
        off_diag = product * (1.0 - torch.eye(size, device=x.device, dtype=x.dtype))
        # factor * mean |cosine| over the size*(size-1)/2 distinct pairs (each counted twice).
        return self.factor * torch.sum(torch.abs(off_diag)) / (size * (size - 1) or 1)

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


# Keras 3 exports these lowercase names as the classes themselves: ``l1_l2()`` is
# ``L1L2()`` with both factors 0 (unlike tf.keras's 0.01 shortcut).
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer


_REGISTRY = {
    "L1": L1,
    "L2": L2,
    "L1L2": L1L2,
    "OrthogonalRegularizer": OrthogonalRegularizer,
    "l1": L1,
    "l2": L2,
    "l1l2": L1L2,
    "l1_l2": L1L2,
    "orthogonal_regularizer": OrthogonalRegularizer,
}


def get(identifier):
    """Resolves a regularizer name, config dict, class, instance or callable.

    Example:
        >>> get("l2")(torch.ones(2, 2))  # 0.01 * 4
        tensor(0.0400)
    """
    if identifier is None:
        return None
    if isinstance(identifier, str) and identifier == "l1_l2":
        # As Keras's L1L2 docstring documents, the string gives 0.01 for both factors.
        return L1L2(l1=0.01, l2=0.01)
    if isinstance(identifier, (str, dict)):
        return deserialize_object(identifier, _REGISTRY, "regularizer")
    if isinstance(identifier, type):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret regularizer. Received: regularizer={identifier!r}")


def serialize(regularizer):
    return serialize_object(regularizer, "keras.regularizers")


deserialize = get
