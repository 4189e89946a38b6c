"""Nadam: Adam with Nesterov momentum and Keras's momentum-cache schedule."""

from __future__ import annotations

import math

import torch

from distkeras.optimizers.base import Optimizer


class Nadam(Optimizer):
    """Nadam (Dozat, 2015), as Keras computes it.

    With ``t`` the 1-based step, ``u_t = beta_1 * (1 - 0.5 * 0.96**t)`` and the running
    product ``U_t = u_1 * ... * u_t``: ``m += (g - m) * (1 - beta_1)``,
    ``v += (g**2 - v) * (1 - beta_2)``,
    ``m_hat = u_{t+1} * m / (1 - U_t * u_{t+1}) + (1 - u_t) * g / (1 - U_t)``,
    ``v_hat = v / (1 - beta_2**t)`` and ``w -= lr * m_hat / (sqrt(v_hat) + epsilon)``.

    Args:
        learning_rate: float, schedule or callable. Defaults to 0.001.
        beta_1: decay rate of the first moment. Defaults to 0.9.
        beta_2: decay rate of the second moment. Defaults to 0.999.
        epsilon: small constant for numerical stability. Defaults to 1e-7.
        **kwargs: the base arguments; see ``Optimizer``.

    Example:

    >>> opt = distkeras.optimizers.Nadam(learning_rate=0.01)
    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> w.grad = torch.ones(2)
    >>> opt.step([w])
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
        # The momentum-cache product U_t, a host float; saved as Keras's `u_product` variable.
        self._u_product = 1.0

    def build(self, variables) -> None:
        if self.built:
            return
        variables = list(variables)
        super().build(variables)
        self._add_slots(["momentum", "velocity"])
        dtype = variables[0].dtype if variables else torch.float32
        self._add_scalar_state("_u_product", dtype)

    def _momentum_cache(self, t: int) -> float:
        return float(self.beta_1) * (1.0 - 0.5 * 0.96**t)

    def _prepare_step(self, step: int) -> None:
        self._u_product *= self._momentum_cache(step)

    def _update_group(self, params, grads, slots, lr, step) -> None:
        b1, b2 = float(self.beta_1), float(self.beta_2)
        u_t, u_next = self._momentum_cache(step), self._momentum_cache(step + 1)
        u_prod = self._u_product
        m, v = slots["momentum"], slots["velocity"]
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        m_hat = torch._foreach_mul(m, u_next / (1 - u_prod * u_next))
        torch._foreach_add_(m_hat, grads, alpha=(1 - u_t) / (1 - u_prod))
        # sqrt(v / (1 - b2**t)) == sqrt(v) / sqrt(1 - b2**t): one fewer pass over v.
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, math.sqrt(1 - b2**step))
        torch._foreach_add_(denom, float(self.epsilon))
        torch._foreach_addcdiv_(params, m_hat, denom, value=-lr)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
