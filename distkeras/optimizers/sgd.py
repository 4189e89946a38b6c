"""Stochastic gradient descent with Keras's momentum and Nesterov formulas."""

from __future__ import annotations

import torch

from distkeras.optimizers.base import Optimizer


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum.

    Without momentum ``w -= lr * g``. With momentum ``m = momentum * m - lr * g; w += m``;
    with ``nesterov=True`` the weight moves by ``momentum * m - lr * g`` instead.

    Args:
        learning_rate: float, schedule or callable. Defaults to 0.01.
        momentum: float in [0, 1]. 0 is plain gradient descent. Defaults to 0.0.
        nesterov: whether to use Nesterov momentum. Defaults to False.
        **kwargs: the base arguments (weight_decay, clipnorm, clipvalue, global_clipnorm,
            use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name); see ``Optimizer``.

    Example:

    >>> opt = distkeras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> w.grad = torch.ones(3)
    >>> opt.step([w])
    >>> w.detach()
    tensor([0.9000, 0.9000, 0.9000])
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            **kwargs,
        )
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)):
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: {momentum=}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: {momentum=}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        if self.momentum != 0:
            self._add_slots(["momentum"])

    def _update_group(self, params, grads, slots, lr, step) -> None:
        if self.momentum == 0:
            torch._foreach_add_(params, grads, alpha=-lr)
            return
        m = slots["momentum"]
        torch._foreach_mul_(m, self.momentum)
        torch._foreach_add_(m, grads, alpha=-lr)
        if self.nesterov:
            torch._foreach_add_(params, m, alpha=self.momentum)
            torch._foreach_add_(params, grads, alpha=-lr)
        else:
            torch._foreach_add_(params, m)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config
