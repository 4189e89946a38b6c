"""Weight and activity regularizers with Keras's formulas.

``L2(0.01)(w)`` is ``0.01 * sum(w**2)`` (no 1/2 factor); ``L1L2`` adds both terms.
"""

from __future__ import annotations

import torch

from distkeras.utils.serialization import deserialize_object, serialize_object


def _check_factor(name: str, value) -> float:
    if not isinstance(value, (int, float)) or value < 0:
        raise ValueError(
            f"Argument `{name}` must be a non-negative number. Received: {name}={value!r}"
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
        self.l1 = _check_factor("l1", l1)

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
        self.l2 = _check_factor("l2", l2)

    def __call__(self, x):
        return self.l2 * torch.sum(torch.square(x))

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1 * sum(abs(w)) + l2 * sum(w**2)``; both factors default to 0 as in Keras."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _check_factor("l1", l1)
        self.l2 = _check_factor("l2", l2)

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
        if self.mode == "columns":
            x = x.T
        x = x / torch.linalg.norm(x, dim=1, keepdim=True).clamp_min(1e-12)
        product = x @ x.T
        size = product.shape[0]
        off_diag = product * (1.0 - torch.eye(size, device=x.device, dtype=x.dtype))
        return self.factor * torch.sum(torch.abs(off_diag)) / (size * (size - 1) or 1)

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


def l1(l1: float = 0.01) -> L1:
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    return L2(l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    # Keras's l1_l2 shortcut defaults both factors to 0.01, unlike the L1L2 class.
    return L1L2(l1, l2)


_REGISTRY = {
    "L1": L1,
    "L2": L2,
    "L1L2": L1L2,
    "OrthogonalRegularizer": OrthogonalRegularizer,
    "l1": L1,
    "l2": L2,
    "l1_l2": L1L2,
    "orthogonal_regularizer": OrthogonalRegularizer,
}


def get(identifier):
    """Resolves a regularizer name, config dict, instance or callable."""
    if identifier is None:
        return None
    if isinstance(identifier, (str, dict)):
        return deserialize_object(identifier, _REGISTRY, "regularizer")
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret regularizer. Received: regularizer={identifier!r}")


def serialize(regularizer):
    return serialize_object(regularizer, "keras.regularizers")


deserialize = get
