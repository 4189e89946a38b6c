"""Mixed precision, mirroring ``keras.mixed_precision``.

``set_global_policy("mixed_bfloat16")`` or ``"mixed_float16"`` keeps weights in float32 and runs
layer computations in the lower precision (torch autocast); ``"mixed_float16"`` also scales
the loss so small gradients do not underflow.
"""

from __future__ import annotations

import torch

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
        return {"float32": "float32", "mixed_float16": "float16",
                "mixed_bfloat16": "bfloat16"}[self.name]

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


__all__ = ["DTypePolicy", "Policy", "set_global_policy", "global_policy"]
