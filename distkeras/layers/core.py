"""Core layers: Dense, Activation, Embedding, Lambda, Masking."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distkeras import activations, constraints, initializers, regularizers
from distkeras.layers.base import Layer

__all__ = ["Dense", "Activation"]


def check_positive_int(layer: str, name: str, value) -> int:
    """Validates a positive integer argument; the error names layer, argument and value."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"{layer}: argument `{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return value


class Dense(Layer):
    """Densely connected layer: ``activation(inputs @ kernel + bias)``.

    The kernel is ``(input_dim, units)`` in ``get_weights``; it is stored transposed,
    ``(units, input_dim)``, which is the layout ``torch.nn.functional.linear`` takes.

    Example:
        >>> layer = Dense(32, activation="relu")
        >>> layer(torch.ones(4, 16)).shape
        torch.Size([4, 32])
    """

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = check_positive_int("Dense", "units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.supports_masking = True

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"Dense layer '{self.name}' needs a known last input dimension. "
                f"Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            shape=(input_dim, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
            to_storage=torch.t,
            to_keras=torch.t,
        )
        self.bias = (
            self.add_weight(
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
            if self.use_bias
            else None
        )

    def call(self, inputs):
        return self.activation(F.linear(inputs, self.kernel, self.bias))

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
            kernel_constraint=constraints.serialize(self.kernel_constraint),
            bias_constraint=constraints.serialize(self.bias_constraint),
        )
        return config


class Activation(Layer):
    """Applies an activation function by name or callable.

    Example:
        >>> Activation("relu")(torch.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.supports_masking = True

    def call(self, inputs):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config
