"""The Lambda layer and how it stores functions in configs (Keras 3's format).

A named function is stored by module and name and rebuilt from custom objects; a Python
``lambda`` is stored as marshalled bytecode, which only loads outside safe mode.
"""

from __future__ import annotations

import builtins
import codecs
import inspect
import marshal
import math
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

from distkeras import activations, backend
from distkeras.layers.base import Layer
from distkeras.utils import serialization

__all__ = ["Lambda"]

_UNSAFE_LAMBDA_MESSAGE = (
    "Lambda layer config: `{arg}` is a Python lambda stored as marshalled bytecode. Loading it "
    "runs code from the file, which can do anything on this machine, so it is refused by "
    "default. If you trust the file's source, load it with "
    "`distkeras.models.load_model(path, safe_mode=False)` (or wrap `from_config` in "
    "`distkeras.utils.serialization.safe_mode_scope(False)`). Safer: replace the lambda by a "
    "named function registered with `@distkeras.utils.register_keras_serializable()`."
)


def _registered_name(fn) -> str:
    for key, value in serialization._GLOBAL_CUSTOM_OBJECTS.items():
        if value is fn and ">" in key:
            return key
    return fn.__name__


def _serialize_callable(layer: str, arg: str, fn) -> dict:
    """Keras 3's format: bytecode for lambdas, module and name for named functions."""
    if isinstance(fn, types.FunctionType) and fn.__name__ == "<lambda>":
        code = codecs.encode(marshal.dumps(fn.__code__), "base64").decode("ascii")
        closure = None
        if fn.__closure__:
            closure = tuple(cell.cell_contents for cell in fn.__closure__)
        return {
            "class_name": "__lambda__",
            "config": {"code": code, "defaults": fn.__defaults__, "closure": closure},
        }
    if hasattr(fn, "get_config") and not isinstance(fn, types.FunctionType):
        return serialization.serialize_object(fn)
    if getattr(fn, "__name__", None) is None:
        raise ValueError(
            f"Lambda layer '{layer}': cannot serialize `{arg}`: it is neither a function nor an "
            f"object with get_config. Received: {arg}={fn!r}"
        )
    return {
        "module": getattr(fn, "__module__", None),
        "class_name": "function",
        "config": fn.__name__,
        "registered_name": _registered_name(fn),
    }


def _lambda_globals() -> dict:
    # A loaded lambda sees the modules Lambda code usually refers to, not the saver's globals.
    import distkeras

    return {
        "__builtins__": builtins,
        "torch": torch,
        "F": F,
        "np": np,
        "numpy": np,
        "math": math,
        "distkeras": distkeras,
        "keras": distkeras,
    }


def _load_lambda(arg: str, config: dict):
    if serialization.in_safe_mode():
        raise ValueError(_UNSAFE_LAMBDA_MESSAGE.format(arg=arg))
    try:
        code = marshal.loads(codecs.decode(config["code"].encode("ascii"), "base64"))
    except (ValueError, EOFError, TypeError) as err:
        raise ValueError(
            f"Lambda layer config: the bytecode of `{arg}` cannot be read by Python "
            f"{sys.version_info.major}.{sys.version_info.minor}; bytecode only loads in the "
            f"Python version that saved it. ({err})"
        ) from err
    defaults = config.get("defaults")
    closure = config.get("closure")
    return types.FunctionType(
        code,
        _lambda_globals(),
        code.co_name,
        None if defaults is None else tuple(defaults),
        None if closure is None else tuple(types.CellType(v) for v in closure),
    )


def _deserialize_callable(arg: str, spec):
    if spec is None or callable(spec):
        return spec
    if isinstance(spec, dict) and spec.get("class_name") == "__lambda__":
        return _load_lambda(arg, spec["config"])
    if isinstance(spec, dict) and spec.get("class_name") not in (None, "function"):
        cls = serialization.get_custom_object(spec["class_name"])
        if cls is None:
            raise ValueError(
                f"Lambda layer config: unknown class {spec['class_name']!r} for `{arg}`. "
                "Pass it in custom_objects={...}."
            )
        return cls.from_config(spec.get("config") or {})
    if isinstance(spec, str):
        name, module, registered = spec, None, None
    else:
        name, module, registered = spec["config"], spec.get("module"), spec.get("registered_name")
    for key in (registered, name):
        fn = serialization.get_custom_object(key) if key else None
        if fn is not None:
            return fn
    if module and module.split(".")[0] in ("keras", "distkeras"):
        try:
            return activations.get(name)
        except ValueError:
            pass
    # Outside safe mode a function of an already imported module may be used; in safe mode
    # that is refused because a crafted file could name e.g. torch.save with `arguments`.
    if module and not serialization.in_safe_mode():
        fn = getattr(sys.modules.get(module), name, None)
        if callable(fn):
            return fn
    raise ValueError(
        f"Lambda layer config: could not find function {name!r} (module {module!r}) for "
        f"`{arg}`. Pass it with custom_objects={{{name!r}: {name}}} or decorate it with "
        "`@distkeras.utils.register_keras_serializable()`."
    )


def _serialize_value(value):
    """Arguments/masks as Keras writes them: tensors, arrays and tuples tagged."""
    if isinstance(value, torch.Tensor):
        value = backend.to_numpy(value)
        return {
            "class_name": "__tensor__",
            "config": {"value": value.tolist(), "dtype": str(value.dtype)},
        }
    if isinstance(value, np.ndarray):
        return {
            "class_name": "__numpy__",
            "config": {"value": value.tolist(), "dtype": str(value.dtype)},
        }
    if isinstance(value, tuple):
        return {
            "class_name": "__tuple__",
            "config": {"value": [_serialize_value(v) for v in value]},
        }
    if isinstance(value, list):
        return [_serialize_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _serialize_value(v) for k, v in value.items()}
    return value


def _deserialize_value(value):
    if isinstance(value, list):
        return [_deserialize_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("class_name")
    if kind in ("__tensor__", "__numpy__") and set(value) <= {"class_name", "config"}:
        array = np.asarray(value["config"]["value"], dtype=value["config"]["dtype"])
        return torch.as_tensor(array) if kind == "__tensor__" else array
    if kind == "__tuple__" and set(value) <= {"class_name", "config"}:
        return tuple(_deserialize_value(v) for v in value["config"]["value"])
    return {k: _deserialize_value(v) for k, v in value.items()}


def _accepted_params(fn) -> set:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # builtins such as torch.relu have no signature
        return set()


class Lambda(Layer):
    """Wraps a function as a layer: ``function(inputs, **arguments)``.

    The function may take ``training`` and ``mask`` keyword arguments; they are passed when it
    does. ``get_config`` stores a named function by module and name (rebuilt from
    ``custom_objects`` or ``register_keras_serializable``) and a Python ``lambda`` as marshalled
    bytecode, which loads only with ``safe_mode=False`` and the same Python version, as in Keras.

    Args:
        function: the callable; takes the input tensor (or list) first.
        output_shape: shape without batch dimension, or ``f(input_shape) -> shape``; inferred
            by running the function when None.
        mask: None (output unmasked), a callable ``mask(inputs, mask)`` or a fixed mask tensor.
        arguments: extra keyword arguments for ``function``.

    Example:
        >>> square = Lambda(lambda x: x**2)
        >>> square(torch.tensor([[1.0, -2.0]]))
        tensor([[1., 4.]])
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: `function` must be callable. Received: function={function!r}")
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(
                f"Lambda: `arguments` must be a dict of keyword arguments. "
                f"Received: arguments={arguments!r}"
            )
        if output_shape is not None and not callable(output_shape):
            if not isinstance(output_shape, (list, tuple)) or not all(
                d is None or (isinstance(d, int) and d >= 0) for d in output_shape
            ):
                raise ValueError(
                    "Lambda: `output_shape` must be a tuple of dimensions (without the batch "
                    f"dimension) or a callable. Received: output_shape={output_shape!r}"
                )
            output_shape = tuple(output_shape)
        self.function = function
        self.arguments = dict(arguments or {})
        self.mask = mask
        self._output_shape = output_shape
        self.supports_masking = mask is not None
        params = _accepted_params(function)
        self._fn_expects_training_arg = "training" in params
        self._fn_expects_mask_arg = "mask" in params

    def call(self, inputs, mask=None, training=None):
        kwargs = dict(self.arguments)
        if self._fn_expects_mask_arg:
            kwargs["mask"] = mask
        if self._fn_expects_training_arg:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            return super().compute_output_shape(input_shape)
        if callable(self._output_shape):
            return self._output_shape(input_shape)
        first = (
            input_shape[0]
            if input_shape and isinstance(input_shape[0], (list, tuple))
            else input_shape
        )
        return (first[0], *self._output_shape)

    def get_config(self):
        config = super().get_config()
        config["function"] = _serialize_callable(self.name, "function", self.function)
        if self._output_shape is not None:
            config["output_shape"] = (
                _serialize_callable(self.name, "output_shape", self._output_shape)
                if callable(self._output_shape)
                else list(self._output_shape)
            )
        if self.mask is not None:
            config["mask"] = (
                _serialize_callable(self.name, "mask", self.mask)
                if callable(self.mask)
                else _serialize_value(self.mask)
            )
        config["arguments"] = _serialize_value(self.arguments)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["function"] = _deserialize_callable("function", config["function"])
        shape = config.get("output_shape")
        if isinstance(shape, (dict, str)):
            config["output_shape"] = _deserialize_callable("output_shape", shape)
        mask = config.get("mask")
        if isinstance(mask, dict) and mask.get("class_name") not in ("__tensor__", "__numpy__"):
            config["mask"] = _deserialize_callable("mask", mask)
        elif mask is not None:
            config["mask"] = _deserialize_value(mask)
        if "arguments" in config:
            config["arguments"] = _deserialize_value(config["arguments"])
        return super().from_config(config)
