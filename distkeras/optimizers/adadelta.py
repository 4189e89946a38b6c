"""Adadelta with Keras's defaults (learning_rate 0.001, rho 0.95, epsilon 1e-7)."""

from __future__ import annotations

import torch

from distkeras.optimizers.base import Optimizer


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012): step sizes from running averages of gradients and updates.

    ``E[g2] = rho * E[g2] + (1 - rho) * g**2``;
    ``d = sqrt(E[dx2] + eps) / sqrt(E[g2] + eps) * g``;
    ``E[dx2] = rho * E[dx2] + (1 - rho) * d**2``; ``w -= lr * d``. Use ``learning_rate=1.0``
    for the paper's exact form.

    Args:
        learning_rate: float, schedule or callable. Defaults to 0.001.
        rho: the decay rate. Defaults to 0.95.
        epsilon: small constant for numerical stability. Defaults to 1e-7.
        **kwargs: the base arguments; see ``Optimizer``.

    Example:

    >>> opt = distkeras.optimizers.Adadelta(learning_rate=1.0)
    >>> w = torch.nn.Parameter(torch.zeros(3))
    >>> w.grad = torch.ones(3)
    >>> opt.step([w])
    """

    def __init__(
        self,
        learning_rate=0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            **kwargs,
        )
        self.rho = rho
        self.epsilon = epsilon

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        self._add_slots(["accumulated_grad", "accumulated_delta_var"])

    def _update_group(self, params, grads, slots, lr, step) -> None:
        rho, eps = float(self.rho), float(self.epsilon)
        acc_g, acc_d = slots["accumulated_grad"], slots["accumulated_delta_var"]
        torch._foreach_mul_(acc_g, rho)
        torch._foreach_addcmul_(acc_g, grads, grads, value=1 - rho)
        delta = torch._foreach_add(acc_d, eps)
        torch._foreach_sqrt_(delta)
        denom = torch._foreach_add(acc_g, eps)
        torch._foreach_sqrt_(denom)
        torch._foreach_mul_(delta, grads)
        torch._foreach_div_(delta, denom)
        torch._foreach_mul_(acc_d, rho)
        torch._foreach_addcmul_(acc_d, delta, delta, value=1 - rho)
        torch._foreach_add_(params, delta, alpha=-lr)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"rho": self.rho, "epsilon": self.epsilon})
        return config
