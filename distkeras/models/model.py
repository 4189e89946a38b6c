"""``Model``: a layer with training, inference, summary and saving.

``Model(inputs=..., outputs=...)`` builds a functional graph model (:class:`Functional`), as
in Keras; subclassing ``Model`` and defining ``call`` gives a subclassed model.
"""

from __future__ import annotations

import numpy as np

from distkeras.layers.base import Layer
from distkeras.training.trainer import Trainer


class Model(Trainer, Layer):
    """A trainable group of layers.

    Example (functional):
        >>> inputs = distkeras.Input((784,))
        >>> outputs = distkeras.layers.Dense(10, activation="softmax")(inputs)
        >>> model = distkeras.Model(inputs=inputs, outputs=outputs)

    Example (subclassed):
        >>> class MLP(distkeras.Model):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = distkeras.layers.Dense(32, activation="relu")
        ...         self.out = distkeras.layers.Dense(10)
        ...     def call(self, inputs):
        ...         return self.out(self.hidden(inputs))
    """

    def __new__(cls, *args, **kwargs):
        # Keras's convention: Model(inputs, outputs) is a functional model, and so is
        # CustomModel(inputs, outputs) for a Model subclass: a functional model of that class.
        if _functional_arguments(args, kwargs):
            from distkeras.models.functional import Functional

            if cls is Model:
                return super().__new__(Functional)
            if not issubclass(cls, Functional):
                return super().__new__(_functional_class(cls))
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        if args or "inputs" in kwargs or "outputs" in kwargs:
            raise TypeError(
                f"{type(self).__name__}: a subclassed model takes no inputs/outputs; "
                "use distkeras.Model(inputs=..., outputs=...) for a functional model."
            )
        Layer.__init__(self, **kwargs)
        Trainer.__init__(self)

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None):
        """A functional config (``layers``, ``input_layers``, ``output_layers``) rebuilds the
        graph, as a model of ``cls`` when it is a subclass; other configs go to ``cls``."""
        if isinstance(config, dict) and {"layers", "input_layers", "output_layers"} <= set(config):
            from distkeras.models.serialization import functional_from_config

            return functional_from_config(config, custom_objects, cls=None if cls is Model else cls)
        return super().from_config(config)

    @property
    def layers(self) -> list[Layer]:
        return self._sublayers()

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name or index, as ``keras.Model.get_layer``."""
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(
                    f"Model '{self.name}' has {len(self.layers)} layers. Received: index={index}"
                )
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name!r}. Existing layers are: {[lay.name for lay in self.layers]}."
        )

    def build(self, input_shape) -> None:
        """Builds a subclassed model by calling it once on zeros of ``input_shape``."""
        if self.built:
            return
        import torch

        from distkeras import backend

        def zeros(shape):
            if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
                return [zeros(s) for s in shape]
            concrete = [1 if d is None else d for d in shape]
            return torch.zeros(concrete, device=backend.get_device())

        self.built = True
        with torch.no_grad():
            self(zeros(input_shape))

    def summary(
        self,
        line_length: int | None = None,
        positions=None,
        print_fn=None,
        expand_nested: bool = False,
        show_trainable: bool = False,
        layer_range=None,
    ) -> None:
        """Prints Keras's summary table (layer, output shape, params, totals)."""
        from distkeras.models.summary import print_summary

        print_summary(
            self,
            line_length=line_length,
            positions=positions,
            print_fn=print_fn,
            expand_nested=expand_nested,
            show_trainable=show_trainable,
            layer_range=layer_range,
        )

    # ---------------------------------------------------------------------------- saving
    def save(self, filepath, overwrite: bool = True, include_optimizer: bool = True) -> None:
        """Writes a ``.keras`` zip (config.json, metadata.json, model.weights.h5)."""
        from distkeras.models import saving

        saving.save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Writes the weights to a ``.weights.h5`` file (atomically)."""
        from distkeras.models import saving

        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch: bool = False) -> None:
        """Reads weights written by ``save_weights`` (or Keras 3's ``save_weights``)."""
        from distkeras.models import saving

        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def to_json(self, **kwargs) -> str:
        import json

        from distkeras.models import saving

        return json.dumps(saving.serialize_model(self), **kwargs)

    def get_config(self) -> dict:
        # A subclassed model's config is its constructor's business; Keras does the same.
        return Layer.get_config(self)

    def get_weights(self) -> list[np.ndarray]:
        return Layer.get_weights(self)

    def set_weights(self, weights) -> None:
        Layer.set_weights(self, weights)


_FUNCTIONAL_CLASSES: dict[type, type] = {}


def _functional_class(cls: type) -> type:
    """``cls`` with the functional graph behind its ``call``: its overrides come first.

    Keras rewrites the user's class bases to the same effect; a derived class (made once per
    user class) leaves the user's class untouched. It keeps the user's name and module, so
    ``isinstance``, ``type(model).__name__`` and serialization read as the user wrote them.
    """
    from distkeras.models.functional import Functional

    if "call" in vars(cls):
        raise TypeError(
            f"{cls.__name__}(inputs, outputs): a Model subclass that defines call() cannot also "
            "be built from inputs and outputs; drop call() or construct it without them."
        )
    made = _FUNCTIONAL_CLASSES.get(cls)
    if made is None:
        made = type(cls.__name__, (cls, Functional), {"__module__": cls.__module__})
        made.__qualname__ = cls.__qualname__
        _FUNCTIONAL_CLASSES[cls] = made
    return made


def _functional_arguments(args, kwargs) -> bool:
    """Keras's test for ``Model(inputs, outputs)`` (also as keywords)."""
    return (
        len(args) == 2
        or (len(args) == 1 and "outputs" in kwargs)
        or ("inputs" in kwargs and "outputs" in kwargs)
    )
