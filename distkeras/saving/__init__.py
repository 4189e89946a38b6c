"""``distkeras.saving``: Keras 3's saving namespace.

Registering custom objects, (de)serializing any Keras object to the dict Keras 3 writes, and
``load_model`` / ``save_model``. Each name forwards to the module that owns the object kind, so
``keras.saving.X`` and ``distkeras.saving.X`` read the same configs.
"""

from __future__ import annotations

from collections.abc import Callable

from distkeras import (
    activations,
    constraints,
    initializers,
    losses,
    metrics,
    optimizers,
    regularizers,
)
from distkeras.layers.base import Layer
from distkeras.models.saving import load_model, load_weights, save_model, save_weights
from distkeras.models.serialization import deserialize_layer, serialize_layer
from distkeras.utils import serialization as _serialization
from distkeras.utils.serialization import (
    CustomObjectScope,
    custom_object_scope,
    register_keras_serializable,
)

__all__ = [
    "CustomObjectScope",
    "custom_object_scope",
    "deserialize_keras_object",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "load_model",
    "load_weights",
    "register_keras_serializable",
    "save_model",
    "save_weights",
    "serialize_keras_object",
]


def get_custom_objects() -> dict:
    """The global registry that ``register_keras_serializable`` fills; assigning into it
    (``get_custom_objects()["MyLayer"] = MyLayer``) registers an object, as in Keras."""
    return _serialization._GLOBAL_CUSTOM_OBJECTS


def get_registered_name(obj) -> str:
    """``"package>Name"`` for a registered object, else its ``__name__``."""
    for key, value in _serialization._GLOBAL_CUSTOM_OBJECTS.items():
        if value is obj and ">" in key:
            return key
    return obj.__name__


def get_registered_object(name: str, custom_objects: dict | None = None, module_objects=None):
    """The object registered (or passed in ``custom_objects``/``module_objects``) as ``name``,
    or None."""
    with custom_object_scope(custom_objects):
        found = _serialization.get_custom_object(name)
    if found is None and module_objects:
        found = module_objects.get(name)
    return found


# (base class, Keras module written into configs, the deserializer of that kind)
def _kinds() -> list[tuple[type, str, Callable]]:
    return [
        (Layer, "keras.layers", None),
        (losses.Loss, "keras.losses", losses.deserialize),
        (metrics.Metric, "keras.metrics", metrics.deserialize),
        (optimizers.Optimizer, "keras.optimizers", optimizers.deserialize),
        (initializers.Initializer, "keras.initializers", initializers.get),
        (regularizers.Regularizer, "keras.regularizers", regularizers.get),
        (constraints.Constraint, "keras.constraints", constraints.get),
    ]


def serialize_keras_object(obj):
    """Any Keras object as the ``{"module", "class_name", "config", "registered_name"}`` dict
    Keras 3 writes; Python values (numbers, strings, lists, dicts) pass through, functions
    are stored by their registered name."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(serialize_keras_object(v) for v in obj)
    if isinstance(obj, dict):
        return {k: serialize_keras_object(v) for k, v in obj.items()}
    if isinstance(obj, Layer):
        return serialize_layer(obj)
    for base, module, _ in _kinds()[1:]:
        if isinstance(obj, base):
            spec = _serialization.serialize_object(obj, module)
            if type(obj).__module__.startswith("distkeras."):
                return spec
            return {**spec, "module": type(obj).__module__, "registered_name": _name_of(obj)}
    if callable(obj) and hasattr(obj, "__name__"):
        name = get_registered_name(obj)
        return {
            "module": "builtins",
            "class_name": "function",
            "config": name,
            "registered_name": "function",
        }
    raise TypeError(
        f"serialize_keras_object: cannot serialize {type(obj).__name__} object {obj!r}; "
        "expected a Keras object (layer, loss, metric, optimizer, initializer, regularizer, "
        "constraint), a function or a Python value."
    )


def _name_of(obj) -> str:
    return get_registered_name(type(obj))


def deserialize_keras_object(config, custom_objects: dict | None = None, safe_mode=True, **kwargs):
    """Rebuilds what :func:`serialize_keras_object` (or Keras 3) wrote.

    A string is looked up among registered objects and activations. A dict is dispatched on
    its ``module`` (``keras.layers``, ``keras.losses``, ...), falling back to custom objects.
    """
    if kwargs:
        raise TypeError(
            f"deserialize_keras_object got unsupported arguments {sorted(kwargs)}; it takes "
            "config, custom_objects and safe_mode."
        )
    with _serialization.safe_mode_scope(safe_mode), custom_object_scope(custom_objects):
        return _deserialize(config, custom_objects)


def _deserialize(config, custom_objects):
    if config is None or isinstance(config, (bool, int, float)):
        return config
    if isinstance(config, str):
        found = _serialization.get_custom_object(config)
        return found if found is not None else activations.get(config)
    if isinstance(config, (list, tuple)):
        return type(config)(_deserialize(v, custom_objects) for v in config)
    if not isinstance(config, dict) or "class_name" not in config:
        if isinstance(config, dict):
            return {k: _deserialize(v, custom_objects) for k, v in config.items()}
        raise TypeError(f"deserialize_keras_object: cannot read {config!r}")
    if config["class_name"] == "function":
        return _deserialize(config["config"], custom_objects)
    module = config.get("module") or ""
    for _, kind_module, deserializer in _kinds():
        # Keras writes "keras.layers" for its own classes, the defining module otherwise
        # ("keras.src.backend.torch.optimizers.torch_adam"): match on the kind's package.
        if module == kind_module or f".{kind_module.split('.')[1]}" in module:
            if deserializer is None:
                return deserialize_layer(config, custom_objects)
            return deserializer(config)
    registered = config.get("registered_name") or config["class_name"]
    cls = _serialization.get_custom_object(registered) or _serialization.get_custom_object(
        config["class_name"]
    )
    if cls is None:
        return deserialize_layer(config, custom_objects)
    if isinstance(cls, type) and issubclass(cls, Layer):
        return deserialize_layer(config, custom_objects)
    return cls.from_config(config.get("config") or {})
