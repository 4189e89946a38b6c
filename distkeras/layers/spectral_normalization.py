"""``Wrapper`` (the base class of layers that wrap a layer) and ``SpectralNormalization``.

SpectralNormalization follows Keras 3: while training, each call runs ``power_iterations``
steps of the power method on the wrapped kernel (reshaped to ``(-1, out)`` in Keras layout),
stores the new estimate of the leading right singular vector in the non-trainable
``vector_u`` and *assigns* ``kernel / sigma`` to the wrapped layer's kernel before calling it;
at inference the wrapped layer runs on its kernel as it is. An all-zero kernel is left alone
(Keras's ``cond``; here a ``where``, so no host sync). Weights come in Keras's order:
the kernel (tracked by the wrapper too), ``vector_u``, then the wrapped layer's other weights.
"""

from __future__ import annotations

import torch

from distkeras import backend, initializers
from distkeras.layers.base import CALL_CONTEXT, Layer, WeightSpec
from distkeras.layers.input_spec import InputSpec
from distkeras.utils.serialization import serialize_object

__all__ = ["Wrapper", "SpectralNormalization"]


class Wrapper(Layer):
    """Abstract base class of layers that take another layer and augment it.

    Args:
        layer: the layer to wrap.
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Layer {layer} supplied to Wrapper isn't a supported layer type. Please "
                "ensure wrapped layer is a valid distkeras layer."
            )
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer._build_if_needed(input_shape)

    def get_config(self):
        config = super().get_config()
        config["layer"] = serialize_object(self.layer, "keras.layers")
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None):
        # The models' deserializer: it also reads what Keras writes (quantization_config...).
        from distkeras.models.serialization import deserialize_layer

        config = dict(config)
        layer = deserialize_layer(config.pop("layer"), custom_objects)
        return cls(layer, **config)


def _l2_normalize(x: torch.Tensor) -> torch.Tensor:
    # Keras's ops.normalize(axis=None): x * min(rsqrt(sum(x^2)), 1/epsilon).
    inv = torch.rsqrt(torch.sum(x * x)).clamp(max=1.0 / backend.epsilon())
    return x * inv


class SpectralNormalization(Wrapper):
    """Constrains the spectral norm of a layer's kernel (``kernel`` or ``embeddings``).

    Args:
        layer: a layer with a ``kernel`` (Dense, ConvND, EinsumDense...) or ``embeddings``.
        power_iterations: power-method steps per training call (> 0).

    Example:
        >>> layer = SpectralNormalization(Dense(10))
        >>> layer(torch.ones(2, 4), training=True).shape
        torch.Size([2, 10])
    """

    def __init__(self, layer, power_iterations: int = 1, **kwargs):
        super().__init__(layer, **kwargs)
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, int):
            raise ValueError(
                "`power_iterations` should be an integer greater than zero. Received: "
                f"`power_iterations={power_iterations!r}`"
            )
        if power_iterations <= 0:
            raise ValueError(
                "`power_iterations` should be greater than zero. Received: "
                f"`power_iterations={power_iterations}`"
            )
        self.power_iterations = power_iterations

    def build(self, input_shape):
        super().build(input_shape)
        self.input_spec = InputSpec(min_ndim=1, axes={-1: input_shape[-1]})
        specs = {s.name: s for s in self.layer._weight_specs}
        spec = specs.get("kernel") or specs.get("embeddings")
        if spec is None:
            raise ValueError(
                f"{type(self.layer).__name__} object has no attribute 'kernel' nor 'embeddings'"
            )
        # Keras tracks the wrapped kernel as the wrapper's own first weight too.
        self._weight_specs.append(
            WeightSpec(
                name=spec.name,
                param=spec.param,
                trainable=spec.trainable,
                to_keras=spec.to_keras,
                to_storage=spec.to_storage,
            )
        )
        self._kernel_spec = spec
        self.kernel_shape = spec.keras_shape()
        self.vector_u = self.add_weight(
            shape=(1, self.kernel_shape[-1]),
            initializer=initializers.TruncatedNormal(stddev=0.02),
            trainable=False,
            name="vector_u",
            dtype=backend.dtype_name(spec.param.dtype),
        )

    @property
    def kernel(self) -> torch.Tensor:
        """The wrapped layer's kernel in Keras layout."""
        return self._kernel_spec.keras_value()

    def normalized_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(new vector_u, kernel / sigma)`` in Keras layout, without gradients."""
        with torch.no_grad():
            kernel = self._kernel_spec.keras_value()
            weights = kernel.reshape(-1, self.kernel_shape[-1])
            vector_u = self.vector_u.detach()
            for _ in range(self.power_iterations):
                vector_v = _l2_normalize(vector_u @ weights.t())
                vector_u = _l2_normalize(vector_v @ weights)
            sigma = vector_v @ weights @ vector_u.t()
            return vector_u.to(self.vector_u.dtype), (kernel / sigma).reshape(kernel.shape)

    def _update(self) -> None:
        spec = self._kernel_spec
        with torch.no_grad():
            kernel = spec.keras_value()
            new_u, new_kernel = self.normalized_weights()
            all_zero = torch.all(kernel == 0)
            new_u = torch.where(all_zero, self.vector_u, new_u)
            new_kernel = torch.where(all_zero, kernel, new_kernel).to(kernel.dtype)
            self.vector_u.copy_(new_u)
            stored = spec.to_storage(new_kernel) if spec.to_storage else new_kernel
            spec.param.copy_(stored.reshape(spec.param.shape))

    def call(self, inputs, training=None):
        if training and not CALL_CONTEXT.symbolic:
            self._update()
        output = self.layer(inputs)
        # Keras casts the output to the input dtype; integer ids (an Embedding) stay floats.
        if inputs.is_floating_point() and output.dtype != inputs.dtype:
            output = output.to(inputs.dtype)
        return output

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config["power_iterations"] = self.power_iterations
        return config
