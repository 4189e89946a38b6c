"""Core layers: Dense, Activation, Embedding, Lambda, Masking."""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from distkeras import activations, backend, constraints, initializers, regularizers
from distkeras.layers.base import Layer
from distkeras.layers.lambda_layer import Lambda

__all__ = ["Dense", "Activation", "Embedding", "Lambda", "Masking"]


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
        return activations.apply(self.activation, F.linear(inputs, self.kernel, self.bias))

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
        return activations.apply(self.activation, inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config


class Embedding(Layer):
    """Turns non-negative integer ids into dense vectors: ``embeddings[ids]``.

    The ``embeddings`` weight is ``(input_dim, output_dim)``. Float inputs holding integers are
    cast to integers, as Keras does. With ``mask_zero=True`` id 0 is padding: the output carries
    the mask ``ids != 0`` for the layers after it (so ``input_dim`` should be vocabulary + 1).
    ``input_length`` is accepted for old code and ignored, as in Keras 3.

    Example:
        >>> layer = Embedding(1000, 64, mask_zero=True)
        >>> out = layer(torch.tensor([[4, 20, 0]]))
        >>> out.shape, out._keras_mask
        (torch.Size([1, 3, 64]), tensor([[ True,  True, False]]))
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero: bool = False,
        weights=None,
        **kwargs,
    ):
        if kwargs.pop("input_length", None) is not None:
            warnings.warn(
                "Embedding: argument `input_length` is deprecated (as in Keras 3). Just remove it.",
                stacklevel=2,
            )
        super().__init__(**kwargs)
        self.input_dim = check_positive_int("Embedding", "input_dim", input_dim)
        self.output_dim = check_positive_int("Embedding", "output_dim", output_dim)
        # Keras's "uniform" alias is RandomUniform(-0.05, 0.05).
        if embeddings_initializer in ("uniform", "normal"):
            embeddings_initializer = f"random_{embeddings_initializer}"
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        if not isinstance(mask_zero, (bool, np.bool_)):
            raise TypeError(
                f"Embedding: `mask_zero` must be a bool. Received: mask_zero={mask_zero!r}"
            )
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        # A Sequential's implicit Input for this layer holds integer ids.
        self._input_dtype = "int32"
        if weights is not None:
            self._build_if_needed((None,))
            self.set_weights(
                weights if isinstance(weights, list) and len(weights) == 1 else [weights]
            )

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
            name="embeddings",
        )

    def call(self, inputs, mask=None):
        # Declaring `mask` makes the base class ask compute_mask for the output mask.
        if inputs.dtype not in (torch.int32, torch.int64):
            inputs = inputs.long()
        try:
            return F.embedding(inputs, self.embeddings)
        except IndexError as err:
            # Checking the ids up front would cost a host sync per step; torch's own check
            # (CPU) is free, so translate its message instead.
            raise ValueError(
                f"Embedding layer '{self.name}' received ids outside [0, input_dim) with "
                f"input_dim={self.input_dim}. Make input_dim the vocabulary size (plus 1 when "
                "id 0 is padding)."
            ) from err

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        # Keras returns a backend tensor for numpy ids too.
        if not isinstance(inputs, torch.Tensor):
            inputs = backend.convert_to_tensor(inputs)
        return inputs != 0

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape), self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            embeddings_initializer=initializers.serialize(self.embeddings_initializer),
            embeddings_regularizer=regularizers.serialize(self.embeddings_regularizer),
            activity_regularizer=regularizers.serialize(self.activity_regularizer),
            embeddings_constraint=constraints.serialize(self.embeddings_constraint),
            mask_zero=self.mask_zero,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # Keys newer Keras versions write; only their "off" values are supported here.
        for key in ("lora_rank", "lora_alpha", "quantization_config"):
            if config.pop(key, None) is not None:
                raise ValueError(
                    f"Embedding: `{key}` is not supported by distkeras. Received: "
                    f"{key}={config.get(key)!r}"
                )
        return super().from_config(config)


class Masking(Layer):
    """Masks timesteps whose features all equal ``mask_value``.

    The output mask is ``any(inputs != mask_value, axis=-1)``; masked timesteps of the output
    are set to zero, as in Keras.

    Example:
        >>> x = torch.tensor([[[1.0, 2.0], [0.0, 0.0]]])
        >>> Masking(mask_value=0.0)(x)._keras_mask
        tensor([[ True, False]])
    """

    def __init__(self, mask_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float)):
            raise TypeError(
                f"Masking: `mask_value` must be a number. Received: mask_value={mask_value!r}"
            )
        self.mask_value = mask_value
        self.supports_masking = True

    def call(self, inputs):
        keep = torch.any(inputs != self.mask_value, dim=-1, keepdim=True)
        outputs = inputs * keep.to(inputs.dtype)
        outputs._keras_mask = keep.squeeze(-1)
        return outputs

    def compute_mask(self, inputs, mask=None):
        # The incoming mask is replaced, not combined, as in Keras.
        if not isinstance(inputs, torch.Tensor):
            inputs = backend.convert_to_tensor(inputs)
        return torch.any(inputs != self.mask_value, dim=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["mask_value"] = self.mask_value
        return config
