"""``Pipeline``: layers applied one after another, as a plain layer (Keras 3.15's class).

Unlike a ``Sequential`` model it is just a layer, typically an augmentation pipeline. As in
Keras its ``call`` defaults to ``training=True``: called on its own (not inside a model that
says otherwise), random augmentation layers in it are active. Each layer gets the mask the
previous one produced.
"""

from __future__ import annotations

import torch

from distkeras.layers.base import CALL_CONTEXT, Layer

__all__ = ["Pipeline"]


def _symbolic(value) -> bool:
    from distkeras.layers.input import KerasTensor  # (input imports layers.base)

    return isinstance(value, KerasTensor)


class Pipeline(Layer):
    """Applies a series of layers to an input.

    Args:
        layers: the layers, in order.
        name: the layer's name.

    Example:
        >>> pipeline = Pipeline([layers.Rescaling(1 / 255), layers.Dropout(0.1)])
        >>> pipeline(torch.ones(2, 8, 8, 3)).shape
        torch.Size([2, 8, 8, 3])
    """

    def __init__(self, layers, name: str | None = None):
        super().__init__(name=name)
        layers = list(layers)
        for layer in layers:
            if not isinstance(layer, Layer):
                raise ValueError(
                    f"Pipeline: every entry of `layers` must be a layer. Received: {layer!r}"
                )
        # Keras's attribute name: weight files put the layers' groups under it.
        self._pipeline_layers = torch.nn.ModuleList(layers)

    @property
    def layers(self) -> list[Layer]:
        return list(self._pipeline_layers)

    def __call__(self, *args, **kwargs):
        # Keras's call signature default: training=True when nothing outside says otherwise.
        # Not on a symbolic call: the node it records must inherit the model's flag, or the
        # augmentation would stay on in predict().
        first = args[0] if args else kwargs.get("inputs")
        if "training" not in kwargs and CALL_CONTEXT.depth == 0 and not _symbolic(first):
            kwargs["training"] = True
        return super().__call__(*args, **kwargs)

    def forward(self, *args, **kwargs):
        return self.__call__(*args, **kwargs)

    def call(self, inputs, training=True, mask=None):
        outputs = inputs
        for layer in self._pipeline_layers:
            kwargs = {}
            if layer._call_takes_mask:
                kwargs["mask"] = mask
            if layer._call_takes_training and training is not None:
                kwargs["training"] = training
            outputs = layer(inputs, **kwargs)
            inputs = outputs
            mask = getattr(outputs, "_keras_mask", None)
        return outputs

    def compute_mask(self, inputs, mask=None):
        return None  # the last layer's mask is already on the output

    def get_config(self) -> dict:
        from distkeras.models.serialization import serialize_layer

        return {
            "layers": [serialize_layer(layer) for layer in self._pipeline_layers],
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict):
        from distkeras.models.serialization import deserialize_layer

        layers = config.get("layers")
        if not isinstance(layers, (list, tuple)):
            raise ValueError(
                "`Pipeline` config must contain a `layers` key mapping to a list of serialized "
                f"layers. Received config with layers={layers}."
            )
        config = dict(config)
        config["layers"] = [deserialize_layer(layer) for layer in layers]
        return cls(**config)
