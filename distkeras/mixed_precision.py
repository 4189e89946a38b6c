"""Mixed precision, mirroring ``keras.mixed_precision``.

``set_global_policy("mixed_bfloat16")`` or ``"mixed_float16"`` keeps weights in float32 and runs
layer computations in the lower precision (torch autocast); ``"mixed_float16"`` also scales
the loss so small gradients do not underflow.
"""

from __future__ import annotations

import contextlib

import torch

from distkeras import backend

_POLICIES = {
    "float32": None,
    "mixed_float16": torch.float16,
    "mixed_bfloat16": torch.bfloat16,
}


class DTypePolicy:
    """A named precision policy.

    Example:
        >>> distkeras.mixed_precision.set_global_policy("mixed_bfloat16")
    """

    def __init__(self, name: str = "float32"):
        if name not in _POLICIES:
            raise ValueError(
                f"Unknown dtype policy. Expected one of {sorted(_POLICIES)}. Received: {name!r}"
            )
        self.name = name

    @property
    def compute_dtype(self) -> str:
        return {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}[
            self.name
        ]

    @property
    def variable_dtype(self) -> str:
        return "float32"

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self.name}">'


Policy = DTypePolicy
_GLOBAL = DTypePolicy("float32")


def set_global_policy(policy) -> None:
    global _GLOBAL
    _GLOBAL = policy if isinstance(policy, DTypePolicy) else DTypePolicy(policy)


def global_policy() -> DTypePolicy:
    return _GLOBAL


def autocast_dtype() -> torch.dtype | None:
    """The dtype the trainer autocasts to, or None for full precision."""
    return _POLICIES[_GLOBAL.name]


def autocast():
    """A context running layer computations in the policy's compute dtype (or a no-op)."""
    dtype = autocast_dtype()
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(backend.get_device().type, dtype=dtype)


class DynamicLossScale:
    """Keras's dynamic loss scaling (``LossScaleOptimizer``'s defaults), on device tensors.

    The loss is multiplied by ``scale`` before backward; gradients are unscaled before the
    optimizer step. A step whose gradients overflowed is skipped and halves the scale; after
    ``dynamic_growth_steps`` finite steps in a row the scale doubles.

    Example:
        >>> loss_scale = DynamicLossScale(torch.device("cpu"))
        >>> (loss * loss_scale.scale).backward()
        >>> found_inf = loss_scale.unscale_([p.grad for p in params])
    """

    def __init__(
        self, device: torch.device, initial_scale: float = 2.0**15, dynamic_growth_steps: int = 2000
    ):
        self.scale = torch.full((), float(initial_scale), dtype=torch.float32, device=device)
        self.growth_tracker = torch.zeros((), dtype=torch.int32, device=device)
        self.dynamic_growth_steps = int(dynamic_growth_steps)

    def unscale_(self, grads: list[torch.Tensor]) -> torch.Tensor:
        """Divides ``grads`` by the scale in place; returns 1.0 if any was not finite."""
        found_inf = torch.zeros((), dtype=torch.float32, device=self.scale.device)
        if grads:
            torch._amp_foreach_non_finite_check_and_unscale_(
                grads, found_inf, self.scale.reciprocal()
            )
        return found_inf

    def update(self, found_inf: torch.Tensor) -> None:
        """Halves the scale after an overflow; doubles it after enough finite steps."""
        torch._amp_update_scale_(
            self.scale, self.growth_tracker, found_inf, 2.0, 0.5, self.dynamic_growth_steps
        )


__all__ = ["DTypePolicy", "Policy", "set_global_policy", "global_policy"]
