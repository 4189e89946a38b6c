"""Config (de)serialization helpers shared by every public object, and custom objects.

A config is a plain JSON-able dict. Objects are stored as
``{"class_name": ..., "config": {...}}``, the same shape Keras 3 writes, so files stay portable.
"""

from __future__ import annotations

import contextlib
import threading

_GLOBAL_CUSTOM_OBJECTS: dict[str, object] = {}
_SCOPE = threading.local()


def register_keras_serializable(package: str = "Custom", name: str | None = None):
    """Class/function decorator: makes ``load_model`` able to rebuild the object by name."""

    def decorator(obj):
        key = name or obj.__name__
        _GLOBAL_CUSTOM_OBJECTS[key] = obj
        _GLOBAL_CUSTOM_OBJECTS[f"{package}>{key}"] = obj
        return obj

    return decorator


@contextlib.contextmanager
def custom_object_scope(custom_objects: dict | None):
    """Makes ``custom_objects`` visible to deserialization inside the ``with`` block."""
    previous = getattr(_SCOPE, "objects", None)
    merged = dict(previous or {})
    merged.update(custom_objects or {})
    _SCOPE.objects = merged
    try:
        yield
    finally:
        _SCOPE.objects = previous


CustomObjectScope = custom_object_scope


def get_custom_object(name: str):
    scoped = getattr(_SCOPE, "objects", None) or {}
    if name in scoped:
        return scoped[name]
    return _GLOBAL_CUSTOM_OBJECTS.get(name)


def serialize_object(obj, module: str | None = None) -> dict | str | None:
    """``{"module", "class_name", "config", "registered_name"}`` as Keras 3 writes it.

    A plain function (a custom activation or loss) is stored by its name.
    """
    if obj is None:
        return None
    if not hasattr(obj, "get_config"):
        return getattr(obj, "__name__", repr(obj))
    return {
        "module": module,
        "class_name": type(obj).__name__,
        "config": obj.get_config(),
        "registered_name": None,
    }


def deserialize_object(spec, registry: dict, kind: str):
    """Builds an object from a name or a ``{"class_name", "config"}`` dict.

    ``registry`` maps Keras class names (and short aliases) to classes; custom objects are
    looked up too. Errors name the kind of object and the known names.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        cls = registry.get(spec) or get_custom_object(spec)
        if cls is None:
            raise ValueError(
                f"Unknown {kind}. Expected one of {sorted(registry)}. Received: {kind}={spec!r}"
            )
        return cls() if isinstance(cls, type) else cls
    if isinstance(spec, dict) and "class_name" in spec:
        name = spec["class_name"]
        cls = registry.get(name) or get_custom_object(name)
        if cls is None:
            raise ValueError(
                f"Unknown {kind} class {name!r}. Known: {sorted(registry)}. "
                "Pass custom classes with custom_objects={...}."
            )
        return cls.from_config(spec.get("config") or {})
    return spec


def in_safe_mode() -> bool:
    """Whether deserialization must refuse to run code stored in a file (the default)."""
    return getattr(_SCOPE, "safe_mode", True)


@contextlib.contextmanager
def safe_mode_scope(safe_mode: bool):
    """``load_model(safe_mode=False)`` runs deserialization inside this with False."""
    previous = in_safe_mode()
    _SCOPE.safe_mode = bool(safe_mode)
    try:
        yield
    finally:
        _SCOPE.safe_mode = previous
