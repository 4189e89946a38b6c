"""Optimizers with Keras 3's names, defaults and formulas, on multi-tensor torch math.

``distkeras.optimizers.get("adam")`` (any case), a config dict or an instance; ``serialize``
and ``deserialize`` speak Keras's ``{"class_name", "config"}`` form.
"""

from __future__ import annotations

from distkeras.optimizers import schedules
from distkeras.optimizers.adadelta import Adadelta
from distkeras.optimizers.adagrad import Adagrad
from distkeras.optimizers.adam import Adam
from distkeras.optimizers.adamax import Adamax
from distkeras.optimizers.adamw import AdamW
from distkeras.optimizers.base import Optimizer
from distkeras.optimizers.nadam import Nadam
from distkeras.optimizers.rmsprop import RMSprop
from distkeras.optimizers.sgd import SGD
from distkeras.utils.serialization import custom_object_scope, get_custom_object, serialize_object

_CLASSES = (Optimizer, SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam)
# Keras resolves built-in names case-insensitively: "adam", "Adam" and "ADAM" all work.
_REGISTRY = {cls.__name__.lower(): cls for cls in _CLASSES}


def _lookup(name: str):
    cls = _REGISTRY.get(name.lower()) or get_custom_object(name)
    if cls is None:
        known = sorted(n for n in _REGISTRY if n != "optimizer")
        raise ValueError(
            f"Unknown optimizer. Expected one of {known}. Received: optimizer={name!r}"
        )
    return cls


def serialize(optimizer: Optimizer) -> dict:
    """The optimizer as ``{"module", "class_name", "config", "registered_name"}``."""
    return serialize_object(optimizer, "keras.optimizers")


def deserialize(config: dict, custom_objects: dict | None = None) -> Optimizer:
    """Builds an optimizer from :func:`serialize`'s output (or a Keras-written config)."""
    with custom_object_scope(custom_objects):
        if isinstance(config, str):
            return _lookup(config)()
        if not isinstance(config, dict) or "class_name" not in config:
            raise ValueError(
                "Could not deserialize optimizer: expected a dict with 'class_name' and "
                f"'config'. Received: config={config!r}"
            )
        cls = _lookup(config["class_name"])
        return cls.from_config(dict(config.get("config") or {}), custom_objects=custom_objects)


def get(identifier) -> Optimizer | None:
    """Resolves a name (``"adam"``), a config dict or an ``Optimizer`` instance.

    Example:

    >>> distkeras.optimizers.get("rmsprop").get_config()["rho"]
    0.9
    """
    if identifier is None:
        return None
    if isinstance(identifier, (str, dict)):
        obj = deserialize(identifier)
    else:
        obj = identifier
    if isinstance(obj, Optimizer):
        return obj
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}")


__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "Nadam",
    "schedules",
    "get",
    "serialize",
    "deserialize",
]
