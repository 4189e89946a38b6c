"""Small ``keras.utils`` helpers: data tuples, graph sources, ``Config``, ``clear_session``."""

from __future__ import annotations

import copy
import gc
import json

import torch

from distkeras import backend


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """``x``, ``(x, y)`` or ``(x, y, sample_weight)``: the tuple fit() reads (a single ``x``
    that is itself a tuple or list is wrapped, so it is not read as ``(x, y)``)."""
    if y is None:
        return (x,) if isinstance(x, (tuple, list)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_x_y_sample_weight(data):
    """The inverse of :func:`pack_x_y_sample_weight`: always ``(x, y, sample_weight)``."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return (data, None, None)
    if len(data) in (1, 2, 3):
        return (*data, *(None,) * (3 - len(data)))
    raise ValueError(
        "Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`, "
        f"found: {data}"
    )


def is_keras_tensor(x) -> bool:
    """True for the symbolic tensors functional models are built from."""
    from distkeras.layers.input import KerasTensor

    return isinstance(x, KerasTensor)


def get_source_inputs(tensor) -> list:
    """The ``Input`` tensors a symbolic tensor is computed from, each once, in graph order."""
    from distkeras.layers.input import InputLayer

    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return tensor
    layer, node_index, _ = history
    if not layer._inbound_nodes:
        return [tensor]
    node = layer._inbound_nodes[node_index]
    if isinstance(layer, InputLayer):
        return list(node.output_tensors)
    sources: list = []
    for parent in node.input_tensors:
        for source in get_source_inputs(parent):
            if all(source is not seen for seen in sources):
                sources.append(source)
    return sources


def standardize_dtype(dtype) -> str:
    """A dtype (string, torch or numpy dtype, Python type) as Keras's dtype name."""
    if dtype is None:
        return backend.floatx()
    if dtype is int:  # Python ints are int32 on Keras's torch backend
        return "int32"
    if dtype is float:
        return "float32"
    if dtype is bool:
        return "bool"
    return backend.dtype_name(backend.standardize_dtype(dtype))


def clear_session(free_memory: bool = True) -> None:
    """Resets the automatic layer names (``dense``, ``dense_1``, ...) and frees memory.

    With ``free_memory``, runs the garbage collector and empties torch's CUDA cache, as
    Keras's torch backend does.
    """
    from distkeras.utils import naming

    naming.reset_names()
    if free_memory:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class Config:
    """A dict of named values with attribute access, JSON output and freezing, as
    ``keras.utils.Config``.

    Example:
        >>> config = Config(learning_rate=0.1)
        >>> config.seed = 123
        >>> config["learning_rate"], config.seed
        (0.1, 123)
    """

    __attrs__ = None

    def __init__(self, **kwargs):
        self._config = kwargs
        self._frozen = False
        self.__attrs__ = set(dir(self))

    @property
    def frozen(self) -> bool:
        return self._frozen

    def freeze(self) -> None:
        """Refuses every later change."""
        self._frozen = True

    def unfreeze(self) -> None:
        self._frozen = False

    def _raise_if_frozen(self) -> None:
        if self._frozen:
            raise ValueError("Cannot mutate attribute(s) because the config is frozen.")

    def as_dict(self) -> dict:
        return copy.copy(self._config)

    def to_json(self) -> str:
        return json.dumps(self._config)

    def keys(self):
        return self._config.keys()

    def values(self):
        return self._config.values()

    def items(self):
        return self._config.items()

    def pop(self, *args):
        self._raise_if_frozen()
        return self._config.pop(*args)

    def update(self, *args, **kwargs):
        self._raise_if_frozen()
        return self._config.update(*args, **kwargs)

    def get(self, keyname, value=None):
        return self._config.get(keyname, value)

    def __setattr__(self, name, value):
        attrs = object.__getattribute__(self, "__attrs__")
        if attrs is None or name in attrs:
            return object.__setattr__(self, name, value)
        self._raise_if_frozen()
        self._config[name] = value

    def __getattr__(self, name):
        attrs = object.__getattribute__(self, "__attrs__")
        if attrs is None or name in attrs:
            return object.__getattribute__(self, name)
        if name in self._config:
            return self._config[name]
        raise AttributeError(f"Unknown attribute: '{name}'")

    def __setitem__(self, key, item):
        self._raise_if_frozen()
        self._config[key] = item

    def __getitem__(self, key):
        return self._config[key]

    def __delitem__(self, key):
        self._raise_if_frozen()
        del self._config[key]

    def __contains__(self, item):
        return item in self._config

    def __len__(self):
        return len(self._config)

    def __iter__(self):
        return iter(self._config)

    def __repr__(self):
        return f"<Config {self._config}>"
