"""``Sequential``: a plain stack of layers, each feeding the next."""

from __future__ import annotations

import torch

from distkeras.layers.base import Layer
from distkeras.layers.input import InputLayer, KerasTensor
from distkeras.models.functional import conform_input
from distkeras.models.model import Model


class Sequential(Model):
    """A linear stack of layers.

    The input shape comes from an ``Input`` as first element, ``input_shape=``/``input_dim=``
    on the first layer, ``build(input_shape)``, or the first batch of data.

    Example:
        >>> model = Sequential()
        >>> model.add(Dense(32, activation="relu", input_dim=784))
        >>> model.add(Dense(10, activation="softmax"))
    """

    @property
    def _convert_input_args(self) -> bool:
        # A model that takes text (its Input or first layer is a string one) keeps it numpy.
        if self._input_layer is not None:
            return self._input_layer.input_dtype != "string"
        return not self._stack or getattr(self._stack[0], "_convert_input_args", True)

    def __init__(self, layers=None, trainable: bool = True, name: str | None = None, **kwargs):
        Model.__init__(self, trainable=trainable, name=name, **kwargs)
        self._stack = torch.nn.ModuleList()
        self._input_layer: InputLayer | None = None
        # Symbolic output of each layer once the input shape is known (shapes for summary()).
        self._symbolic_outputs: list[KerasTensor] = []
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[Layer]:
        return list(self._stack)

    def _sublayers(self):
        return list(self._stack)

    def add(self, layer) -> None:
        """Appends a layer (or an ``Input`` as first element)."""
        if isinstance(layer, KerasTensor):
            layer = layer._keras_history[0]
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError(f"Sequential model '{self.name}': an Input can only come first.")
            self._input_layer = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential model '{self.name}' only accepts distkeras layers. "
                f"Received: {layer!r} of type {type(layer).__name__}"
            )
        if any(existing.name == layer.name for existing in self._stack):
            raise ValueError(
                f"Sequential model '{self.name}' already has a layer named {layer.name!r}; "
                "layer names in a model must be unique."
            )
        if not self._stack and self._input_layer is None and layer._batch_input_shape:
            self._input_layer = InputLayer(
                batch_shape=layer._batch_input_shape, dtype=_input_dtype(layer)
            )
        self._stack.append(layer)
        if self._input_layer is not None:
            self._extend_graph()

    def pop(self) -> Layer:
        """Removes and returns the last layer."""
        if not self._stack:
            raise TypeError(f"Sequential model '{self.name}' has no layers to pop.")
        layer = self._stack[-1]
        del self._stack[-1]
        self._symbolic_outputs = self._symbolic_outputs[: len(self._stack)]
        return layer

    def _extend_graph(self) -> None:
        """Runs the layers not yet traced on symbolic tensors: builds them, records shapes."""
        x = self._symbolic_outputs[-1] if self._symbolic_outputs else self._input_layer.output
        for layer in list(self._stack)[len(self._symbolic_outputs) :]:
            x = layer(x)
            if not isinstance(x, KerasTensor):
                raise TypeError(
                    f"Layer '{layer.name}' in Sequential model '{self.name}' returned "
                    f"{type(x).__name__}; a Sequential layer must return a single tensor."
                )
            self._symbolic_outputs.append(x)
        self.built = True

    def build(self, input_shape=None) -> None:
        if input_shape is None:
            if self._input_layer is None:
                raise ValueError(
                    f"Sequential model '{self.name}' cannot be built without an input shape: "
                    "pass input_shape to the first layer, start with Input(), or call "
                    "build(input_shape)."
                )
        elif self._input_layer is None:
            first = self._stack[0] if len(self._stack) else None
            self._input_layer = InputLayer(
                batch_shape=(None, *tuple(input_shape)[1:]),
                dtype=_input_dtype(first) if first else None,
            )
        self._extend_graph()

    @property
    def inputs(self):
        return [self._input_layer.output] if self._input_layer is not None else []

    @property
    def outputs(self):
        return self._symbolic_outputs[-1:] if self._symbolic_outputs else []

    @property
    def input(self):
        if not self.inputs:
            # ValueError, not AttributeError: torch.nn.Module would mask the latter.
            raise ValueError(f"Sequential model '{self.name}' has no defined input yet.")
        return self.inputs[0]

    @property
    def output(self):
        if not self.outputs:
            raise ValueError(f"Sequential model '{self.name}' has no defined output yet.")
        return self.outputs[0]

    def call(self, inputs, training=None, mask=None):
        # Every step passes here: read the submodules from _modules directly (each
        # nn.Module.__getattr__ costs about half a microsecond).
        modules = self._modules
        stack, input_layer = modules["_stack"], modules.get("_input_layer")
        if input_layer is None or len(self._symbolic_outputs) < len(stack):
            self.build(tuple(inputs.shape))
            input_layer = self._input_layer
        if isinstance(inputs, torch.Tensor) or hasattr(inputs, "__array__"):
            # A clear error naming the expected shape instead of a matmul failure deep inside,
            # and Keras's cast to the Input's dtype.
            inputs = conform_input(self, input_layer.output, inputs)
        x = inputs
        for layer in stack:
            x = layer(x)
        return x

    def get_config(self) -> dict:
        from distkeras.models.serialization import sequential_config

        return sequential_config(self)

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None):
        from distkeras.models.serialization import sequential_from_config

        return sequential_from_config(config, custom_objects, cls=cls)


def _input_dtype(layer: Layer) -> str | None:
    # Embedding takes integer ids: its Input must not be float.
    return getattr(layer, "_input_dtype", None)
