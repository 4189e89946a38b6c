"""Adamax: Adam with the infinity norm, Keras's formula."""

from __future__ import annotations

import torch

from distkeras.optimizers.base import Optimizer


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, 2014, section 7.1), as Keras computes it.

    ``m += (g - m) * (1 - beta_1)``, ``u = max(beta_2 * u, |g|)`` and
    ``w -= lr * m / ((1 - beta_1**t) * (u + epsilon))`` with ``t`` the 1-based step.

    Args:
        learning_rate: float, schedule or callable. Defaults to 0.001.
        beta_1: decay rate of the first moment. Defaults to 0.9.
        beta_2: decay rate of the infinity norm. Defaults to 0.999.
        epsilon: small constant for numerical stability. Defaults to 1e-7.
        **kwargs: the base arguments; see ``Optimizer``.

    Example:

    >>> opt = distkeras.optimizers.Adamax(learning_rate=0.1)
    >>> w = torch.nn.Parameter(torch.zeros(1))
    >>> w.grad = torch.tensor([3.0])
    >>> opt.step([w])
    >>> w.detach()
    tensor([-0.1000])
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            **kwargs,
        )
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        self._add_slots(["momentum", "norm"])

    def _update_group(self, params, grads, slots, lr, step) -> None:
        b1 = float(self.beta_1)
        m, u = slots["momentum"], slots["norm"]
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_mul_(u, float(self.beta_2))
        torch._foreach_maximum_(u, torch._foreach_abs(grads))
        denom = torch._foreach_add(u, float(self.epsilon))
        torch._foreach_addcdiv_(params, m, denom, value=-lr / (1 - b1**step))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
