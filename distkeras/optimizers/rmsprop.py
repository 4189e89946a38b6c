"""RMSprop with Keras's epsilon placement (inside the root) and momentum form."""

from __future__ import annotations

import torch

from distkeras.optimizers.base import Optimizer


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square, as Keras computes it.

    ``v = rho * v + (1 - rho) * g**2`` and ``w -= lr * g / sqrt(v + epsilon)`` (epsilon inside
    the root, unlike torch.optim.RMSprop). ``centered=True`` also tracks the mean gradient
    ``mg`` and divides by ``sqrt(v - mg**2 + epsilon)``. With ``momentum > 0`` the increment
    goes through a buffer that already holds the learning rate: ``b = momentum * b +
    lr * g / sqrt(...)``; ``w -= b``.

    Args:
        learning_rate: float, schedule or callable. Defaults to 0.001.
        rho: discounting factor of the squared-gradient average. Defaults to 0.9.
        momentum: momentum of the increment; 0 disables it. Defaults to 0.0.
        epsilon: small constant for numerical stability. Defaults to 1e-7.
        centered: normalise by the estimated variance instead. Defaults to False.
        **kwargs: the base arguments; see ``Optimizer``.

    Example:

    >>> opt = distkeras.optimizers.RMSprop(learning_rate=0.1)
    >>> w = torch.nn.Parameter(torch.tensor([10.0]))
    >>> w.grad = w.detach().clone()  # gradient of w**2 / 2
    >>> opt.step([w])
    >>> w.detach()
    tensor([9.6838])
    """

    def __init__(
        self,
        learning_rate=0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            **kwargs,
        )
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        # Keras creates each kind for all variables before the next kind (not interleaved).
        self._add_slots(["velocity"])
        if self.momentum > 0:
            self._add_slots(["momentum"])
        if self.centered:
            self._add_slots(["average_gradient"])

    def _update_group(self, params, grads, slots, lr, step) -> None:
        rho = float(self.rho)
        v = slots["velocity"]
        torch._foreach_mul_(v, rho)
        torch._foreach_addcmul_(v, grads, grads, value=1 - rho)
        if self.centered:
            mg = slots["average_gradient"]
            torch._foreach_lerp_(mg, grads, 1 - rho)
            denom = torch._foreach_addcmul(v, mg, mg, value=-1.0)
            torch._foreach_add_(denom, float(self.epsilon))
        else:
            denom = torch._foreach_add(v, float(self.epsilon))
        torch._foreach_sqrt_(denom)
        if self.momentum > 0:
            buf = slots["momentum"]
            torch._foreach_mul_(buf, float(self.momentum))
            torch._foreach_addcdiv_(buf, grads, denom, value=lr)
            torch._foreach_sub_(params, buf)
        else:
            torch._foreach_addcdiv_(params, grads, denom, value=-lr)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "rho": self.rho,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "centered": self.centered,
            }
        )
        return config
