"""``TorchModuleWrapper``: any ``torch.nn.Module`` as a layer (Keras 3's torch-backend class).

The module's parameters are the layer's weights (trainable when they require gradients), so
fit trains them, the gradient all-reduce and the start-of-fit broadcast reach them, and
``get_weights``/``set_weights`` see them in ``named_parameters`` order. Files store the
module's whole ``state_dict`` (buffers such as BatchNorm statistics included) under its own
keys, as Keras does. The config holds the pickled module (``torch.save``, base64), exactly as
Keras writes it; rebuilding from it unpickles, so it is refused in safe mode.

While training the module is in ``train()`` mode, otherwise ``eval()``. Randomness inside
the module (``torch.nn.Dropout``) comes from torch's global generator: unlike distkeras's own
random layers, its draws depend on how the batch is split across workers.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import torch

from distkeras import backend
from distkeras.layers.base import Layer, WeightSpec
from distkeras.utils import serialization

__all__ = ["TorchModuleWrapper"]

_UNSAFE = (
    "Requested the deserialization of a `torch.nn.Module` object via `torch.load()`. This "
    "carries a potential risk of arbitrary code execution and thus it is disallowed by "
    "default. If you trust the source of the artifact, you can override this error by passing "
    "`safe_mode=False` to the loading function (distkeras.models.load_model(path, "
    "safe_mode=False)), or rebuilding inside "
    "`distkeras.utils.serialization.safe_mode_scope(False)`."
)


class TorchModuleWrapper(Layer):
    """Wraps a ``torch.nn.Module`` so it can be used in distkeras models.

    Args:
        module: the ``torch.nn.Module`` (lazy modules must be initialized first).
        name: the layer's name.
        output_shape: the output shape, if it should not be inferred by running the module.

    Example:
        >>> layer = TorchModuleWrapper(torch.nn.Linear(4, 2))
        >>> model = distkeras.Sequential([distkeras.Input((4,)), layer])
        >>> [tuple(w.shape) for w in model.get_weights()]
        [(2, 4), (2,)]
    """

    def __init__(self, module, name: str | None = None, output_shape=None, **kwargs):
        if not isinstance(module, torch.nn.Module):
            raise ValueError(
                "TorchModuleWrapper: argument `module` must be a torch.nn.Module. "
                f"Received: module={module!r}"
            )
        super().__init__(name=name, **kwargs)
        lazy = isinstance(module, torch.nn.modules.lazy.LazyModuleMixin)
        if lazy and module.has_uninitialized_params():
            raise ValueError(
                "LazyModules are not supported unless they are already initialized. "
                f"Received uninitialized LazyModule: module={module}"
            )
        self.module = module.to(backend.get_device())
        self._track_module_parameters()
        self.output_shape_arg = None if output_shape is None else tuple(output_shape)

    def _track_module_parameters(self) -> None:
        for name, param in self.module.named_parameters():
            self._weight_specs.append(
                WeightSpec(name=name, param=param, trainable=param.requires_grad)
            )
        self.built = True

    def call(self, *args, training=None, **kwargs):
        self.module.train(training is not False)
        return self.module(*args, **kwargs)

    def compute_output_shape(self, input_shape):
        if self.output_shape_arg is None:
            return super().compute_output_shape(input_shape)
        return self.output_shape_arg

    # --------------------------------------------------------------------- weights
    def save_own_variables(self, store: dict) -> None:
        """The module's ``state_dict``, under its own keys, in sorted key order."""
        state = self.module.state_dict()
        for key in sorted(state):
            store[key] = backend.to_numpy(state[key])

    def load_own_variables(self, store: dict) -> None:
        state = self.module.state_dict()
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in store]
        values = list(store.values())
        if not set(keys) <= set(state) and all(k.isdigit() for k in keys):
            # Numbered datasets: written in sorted state_dict key order.
            keys = [sorted(state)[int(k)] for k in keys]
        new_state = {}
        for key, value in zip(keys, values):
            ref = state.get(key)
            tensor = torch.as_tensor(np.asarray(value))
            new_state[key] = tensor if ref is None else tensor.to(ref.dtype)
        self.module.load_state_dict(new_state)

    # ---------------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        buffer = io.BytesIO()
        torch.save(self.module, buffer)
        config["module"] = base64.b64encode(buffer.getvalue()).decode("ascii")
        config["output_shape"] = (
            None if self.output_shape_arg is None else list(self.output_shape_arg)
        )
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects=None, safe_mode: bool | None = None):
        config = dict(config)
        if "module" in config and not isinstance(config["module"], torch.nn.Module):
            effective = safe_mode if safe_mode is not None else serialization.in_safe_mode()
            if effective is not False:
                raise ValueError(_UNSAFE)
            data = base64.b64decode(config["module"].encode("ascii"))
            config["module"] = torch.load(
                io.BytesIO(data), weights_only=False, map_location=backend.get_device()
            )
        return super().from_config(config)
