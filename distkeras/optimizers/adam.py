"""Adam with Keras's epsilon placement and bias correction."""

from __future__ import annotations

import math

import torch

from distkeras.optimizers.base import Optimizer


class Adam(Optimizer):
    """Adam: adaptive moment estimation (Kingma & Ba, 2014), as Keras computes it.

    With ``t`` the 1-based step: ``m += (g - m) * (1 - beta_1)``,
    ``v += (g**2 - v) * (1 - beta_2)``, ``alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)``
    and ``w -= alpha * m / (sqrt(v) + epsilon)``: epsilon is added to the *uncorrected*
    ``sqrt(v)``, unlike torch.optim.Adam. ``amsgrad=True`` uses ``v_hat = max(v_hat, v)``.

    Args:
        learning_rate: float, schedule or callable. Defaults to 0.001.
        beta_1: decay rate of the first moment. Defaults to 0.9.
        beta_2: decay rate of the second moment. Defaults to 0.999.
        epsilon: small constant for numerical stability. Defaults to 1e-7.
        amsgrad: whether to use the AMSGrad variant. Defaults to False.
        **kwargs: the base arguments (weight_decay, clipnorm, clipvalue, global_clipnorm,
            use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps, name); see ``Optimizer``.

    Example:

    >>> opt = distkeras.optimizers.Adam(learning_rate=0.1)
    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> w.grad = torch.tensor([1.0, -1.0])
    >>> opt.step([w])
    >>> w.detach()  # the first Adam step moves each weight by about lr
    tensor([-0.1000,  0.1000])
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            **kwargs,
        )
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        self._add_slots(["momentum", "velocity"])
        if self.amsgrad:
            self._add_slots(["velocity_hat"])

    def _update_group(self, params, grads, slots, lr, step) -> None:
        b1, b2 = float(self.beta_1), float(self.beta_2)
        alpha = lr * math.sqrt(1 - b2**step) / (1 - b1**step)
        m, v = slots["momentum"], slots["velocity"]
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        if self.amsgrad:
            torch._foreach_maximum_(slots["velocity_hat"], v)
            v = slots["velocity_hat"]
        denom = torch._foreach_sqrt(v)
        torch._foreach_add_(denom, float(self.epsilon))
        torch._foreach_addcdiv_(params, m, denom, value=-alpha)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "amsgrad": self.amsgrad,
            }
        )
        return config
