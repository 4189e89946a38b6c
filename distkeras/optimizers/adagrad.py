"""Adagrad with Keras's initial accumulator and epsilon placement."""

from __future__ import annotations

import torch

from distkeras.optimizers.base import Optimizer


class Adagrad(Optimizer):
    """Adagrad: per-parameter rates scaled by the accumulated squared gradients.

    ``a += g**2`` (``a`` starts at ``initial_accumulator_value``) and
    ``w -= lr * g / sqrt(a + epsilon)``.

    Args:
        learning_rate: float, schedule or callable. Defaults to 0.001.
        initial_accumulator_value: starting value of the accumulators, >= 0. Defaults to 0.1.
        epsilon: small constant for numerical stability. Defaults to 1e-7.
        **kwargs: the base arguments; see ``Optimizer``.

    Example:

    >>> opt = distkeras.optimizers.Adagrad(learning_rate=0.1, initial_accumulator_value=0.0)
    >>> w = torch.nn.Parameter(torch.zeros(1))
    >>> w.grad = torch.tensor([2.0])
    >>> opt.step([w])
    >>> w.detach()
    tensor([-0.1000])
    """

    def __init__(
        self,
        learning_rate=0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            **kwargs,
        )
        if initial_accumulator_value < 0:
            raise ValueError(
                "`initial_accumulator_value` must be non-negative. "
                f"Received: initial_accumulator_value={initial_accumulator_value}"
            )
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        self._add_slots(["accumulator"], initial_value=float(self.initial_accumulator_value))

    def _update_group(self, params, grads, slots, lr, step) -> None:
        acc = slots["accumulator"]
        torch._foreach_addcmul_(acc, grads, grads)
        denom = torch._foreach_add(acc, float(self.epsilon))
        torch._foreach_sqrt_(denom)
        torch._foreach_addcdiv_(params, grads, denom, value=-lr)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon,
            }
        )
        return config
