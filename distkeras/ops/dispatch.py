"""The one dispatch point every op goes through: eager on tensors, a graph node on symbols.

Each public op is a plain function on torch tensors decorated with :func:`keras_op`. Called on
tensors, numpy arrays or Python scalars it runs eagerly (the wrapper adds one cheap scan of its
arguments). Called while a functional model is being built, with a ``KerasTensor`` anywhere in
its arguments, it hands the call to the symbolic handler that ``distkeras.layers`` registers:
that handler records a node of the generic operation layer, whose output shape and dtype come
from the same placeholder runs symbolic layer calls use. Ops therefore import nothing from
``layers`` and need no shape functions of their own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

# Set by distkeras.layers at import: the KerasTensor type(s) and the function that turns an op
# call on them into a graph node: handler(op, args, kwargs) -> KerasTensor structure.
_SYMBOLIC_TYPES: tuple[type, ...] = ()
_SYMBOLIC_HANDLER: Callable | None = None

# (Keras submodule, op name) -> the public op, for deserializing op nodes of saved models.
OPS_REGISTRY: dict[tuple[str, str], Callable] = {}


def register_symbolic_handler(types: tuple[type, ...], handler: Callable) -> None:
    """Called once by ``distkeras.layers``: which types are symbolic and who handles them."""
    global _SYMBOLIC_TYPES, _SYMBOLIC_HANDLER
    _SYMBOLIC_TYPES, _SYMBOLIC_HANDLER = tuple(types), handler


def _is_symbolic(value) -> bool:
    kind = type(value)
    if kind in _SYMBOLIC_TYPES:
        return True
    if kind is list or kind is tuple:  # concatenate([a, b]), stack((a, b)), ...
        return any(type(v) in _SYMBOLIC_TYPES or _is_symbolic_nested(v) for v in value)
    if kind is dict:
        return any(_is_symbolic(v) for v in value.values())
    return False


def _is_symbolic_nested(value) -> bool:
    kind = type(value)
    return (kind is list or kind is tuple or kind is dict) and _is_symbolic(value)


def any_symbolic(args, kwargs) -> bool:
    """True when a KerasTensor appears in the arguments (top level or inside lists/dicts)."""
    if not _SYMBOLIC_TYPES:
        return False
    for value in args:
        if _is_symbolic(value):
            return True
    return any(_is_symbolic(value) for value in kwargs.values()) if kwargs else False


def keras_op(module: str, name: str | None = None) -> Callable:
    """Makes ``fn`` a public op of Keras submodule ``module`` ("numpy", "nn", "linalg",
    "image", "core", "math"), named ``name`` (default ``fn.__name__``).

    The returned function keeps ``fn``'s signature and docstring, and carries ``op_name``,
    ``op_module`` and ``eager`` (the undecorated function) for the symbolic handler.
    """

    def decorate(fn: Callable) -> Callable:
        op_name = name or fn.__name__

        @functools.wraps(fn)
        def op(*args, **kwargs):
            if _SYMBOLIC_TYPES and any_symbolic(args, kwargs):
                return _SYMBOLIC_HANDLER(op, args, kwargs)
            return fn(*args, **kwargs)

        op.op_name = op_name
        op.op_module = module
        op.eager = fn
        OPS_REGISTRY[(module, op_name)] = op
        return op

    return decorate
