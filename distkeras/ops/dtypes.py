"""Keras's dtype vocabulary and type promotion, and conversion of op inputs to torch tensors.

Keras names dtypes by strings ("float32", "int32", "bool", ...) and promotes them on a lattice
adapted from JAX, where Python ``int`` and ``float`` are *weak* types: they take the dtype of
the tensor they meet (``int8 + 1 -> int8``, ``bfloat16 + 1.0 -> bfloat16``) and resolve to
32 bits (``floatx``'s width for floats) when they meet nothing. Keras also caps promotion
results at 32 bits on non-TensorFlow backends: ``result_type("int64", "int64")`` is ``int32``.

Ops convert their inputs as Keras's torch backend does (``convert_to_tensor``): Python floats
become floatx, Python ints int32 (int64 beyond 32 bits), bools bool, numpy arrays keep their
dtype (float64 stays float64), lists take the promoted dtype of their items.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from distkeras import backend

BOOL_TYPES = ("bool",)
INT_TYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64")
FLOAT_TYPES = ("bfloat16", "float16", "float32", "float64")
COMPLEX_TYPES = ("complex64", "complex128")
FLOAT8_TYPES = ("float8_e4m3fn", "float8_e5m2")
ALLOWED_DTYPES = BOOL_TYPES + INT_TYPES + FLOAT_TYPES + COMPLEX_TYPES + FLOAT8_TYPES + ("string",)

# Keras names -> torch dtypes. torch lacks usable uint16/uint32, so Keras's torch backend
# widens them to the next signed type; we do the same so results match.
_TORCH = {
    "bool": torch.bool,
    "uint8": torch.uint8,
    "uint16": torch.int32,
    "uint32": torch.int64,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
    "complex64": torch.complex64,
    "complex128": torch.complex128,
    "float8_e4m3fn": torch.float8_e4m3fn,
    "float8_e5m2": torch.float8_e5m2,
}
_FROM_TORCH = {
    torch.uint16: "uint16",
    torch.uint32: "uint32",
    torch.uint64: "uint64",
    **{v: k for k, v in _TORCH.items() if k not in ("uint16", "uint32")},
}
_PYTHON = {bool: "bool", int: "int32", float: "float32", complex: "complex64", str: "string"}

# The promotion lattice: each dtype and the dtypes directly above it. "int" and "float" are
# the weak Python scalar types.
_ABOVE = {
    "bool": ("int",),
    "int": ("uint8", "int8", "complex64"),
    "uint8": ("int16", "uint16"),
    "uint16": ("int32", "uint32"),
    "uint32": ("int64", "uint64"),
    "uint64": ("float",),
    "int8": ("int16",),
    "int16": ("int32",),
    "int32": ("int64",),
    "int64": ("float",),
    "float": ("bfloat16", "float16"),
    "bfloat16": ("float32",),
    "float16": ("float32",),
    "float32": ("float64", "complex64"),
    "float64": ("complex128",),
    "complex64": ("complex128",),
    "complex128": (),
}


def _upper_bounds() -> dict[str, frozenset]:
    bounds: dict[str, frozenset] = {}

    def visit(node: str) -> frozenset:
        if node not in bounds:
            above = {node}
            for parent in _ABOVE[node]:
                above |= visit(parent)
            bounds[node] = frozenset(above)
        return bounds[node]

    for node in _ABOVE:
        visit(node)
    return bounds


_UPPER = _upper_bounds()
# Outside TensorFlow, Keras never promotes to 64 bits (JAX's default); explicit float64 inputs
# still give float64 where an op keeps its input dtype.
_CAP_64 = {"int64": "int32", "uint64": "uint32", "float64": "float32", "complex128": "complex64"}


def standardize_dtype(dtype) -> str:
    """A dtype as Keras names it: ``None`` -> floatx; torch/numpy dtypes, Python types, names.

    Example:
        >>> standardize_dtype(torch.float32), standardize_dtype(int)
        ('float32', 'int32')
    """
    if dtype is None:
        return backend.floatx()
    if isinstance(dtype, torch.dtype):
        name = _FROM_TORCH.get(dtype)
    elif isinstance(dtype, type) and dtype in _PYTHON:
        name = _PYTHON[dtype]
    elif isinstance(dtype, str):
        name = _PYTHON[int] if dtype == "int" else dtype
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None)
    if name not in ALLOWED_DTYPES:
        raise ValueError(f"Invalid dtype: {dtype!r}. Expected one of {ALLOWED_DTYPES}.")
    return name


def to_torch_dtype(dtype) -> torch.dtype:
    """The torch dtype Keras's torch backend uses for ``dtype`` (any form)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    name = standardize_dtype(dtype)
    if name not in _TORCH:
        raise ValueError(f"Unsupported dtype for torch: {dtype!r}")
    return _TORCH[name]


def _weak(name: str) -> str:
    if name == "bool":
        return name
    for kind in ("float", "int", "complex"):
        if kind in name:
            return "float" if kind == "complex" else kind
    raise ValueError(f"Invalid value for argument `dtype`. Received: dtype={name}")


@functools.lru_cache(maxsize=1024)
def _least_upper_bound(*nodes: str) -> str:
    unknown = [n for n in nodes if n not in _UPPER]
    if unknown:
        raise ValueError(f"dtype={unknown[0]!r} is not a valid dtype for Keras type promotion.")
    common = frozenset.intersection(*(_UPPER[n] for n in nodes))
    # The least bound is the common bound that every other common bound lies above.
    least = [c for c in common if common <= _UPPER[c]]
    if len(least) != 1:
        raise ValueError(
            f"Input dtypes {nodes} have no available implicit dtype promotion path. Try "
            "explicitly casting inputs to the desired output type."
        )
    return least[0]


def _resolve_weak(name: str, bits: str) -> str:
    """A weak result takes floatx's width, for ints as for floats (Keras's rule)."""
    kind = "f" if name == "bfloat16" else name[0]
    if kind == "b":
        return "bool"
    return {"i": "int", "u": "uint"}.get(kind, "float") + bits


@functools.lru_cache(maxsize=4096)
def _promote(floatx: str, *keyed: tuple[str, bool]) -> str:
    names = [name for name, _ in keyed]
    weak = [is_weak for _, is_weak in keyed]
    if len(keyed) == 1:
        out, out_weak = names[0], weak[0]
    elif len(set(names)) == 1 and not all(weak):
        out, out_weak = names[0], False
    elif all(weak):  # only Python scalars: promote their strong types, stay weak
        out, out_weak = _least_upper_bound(*sorted(set(names))), True
    else:
        out = _least_upper_bound(*sorted({_weak(n) if w else n for n, w in keyed}))
        out_weak = out in ("int", "float")
    if out_weak and out != "bool":
        out = _resolve_weak(out, floatx[-2:])
    return _CAP_64.get(out, out)


def result_type(*dtypes) -> str:
    """The dtype Keras's type promotion gives for ``dtypes`` (``keras.backend.result_type``).

    Each argument is a dtype in any form; the Python types ``int`` and ``float`` are weak.
    ``None`` stands for floatx, and no argument at all gives floatx.

    Example:
        >>> result_type("bfloat16", int), result_type("int32", "float16"), result_type(int)
        ('bfloat16', 'float16', 'int32')
    """
    if not dtypes:
        return backend.floatx()
    keyed = []
    for dtype in dtypes:
        if dtype is None:
            dtype = backend.floatx()
        name = standardize_dtype(dtype)
        if name in FLOAT8_TYPES:
            raise ValueError(
                "There is no implicit conversions from float8 dtypes to others. You must cast "
                f"it internally. Received: {dtypes}"
            )
        keyed.append((name, dtype is int or dtype is float))
    return _promote(backend.floatx(), *keyed)


def dtype_of(x) -> str:
    """Keras's dtype name for a tensor, array, Python scalar or (weakly) a list of them."""
    dtype = getattr(x, "dtype", None)
    if dtype is not None:
        return standardize_dtype(dtype)
    return standardize_dtype(type(x))


def _flatten(x, out: list) -> list:
    if isinstance(x, (list, tuple)):
        for item in x:
            _flatten(item, out)
    else:
        out.append(x)
    return out


def _int_dtype(x: int) -> torch.dtype:
    return torch.int64 if x < -(2**31) or x >= 2**31 else torch.int32


def convert_to_tensor(x, dtype=None, device=None) -> torch.Tensor:
    """``x`` as a torch tensor, converted as Keras's torch backend converts op inputs.

    Tensors keep their dtype and device (cast when ``dtype`` is given); Python bool -> bool,
    int -> int32 (int64 outside 32 bits), float -> floatx; numpy arrays keep their dtype
    (uint32 widens to int64); lists and tuples take ``result_type`` of their items. New tensors
    go to ``device`` (default: the device distkeras places tensors on).
    """
    if isinstance(x, torch.Tensor):
        return x if dtype is None else x.to(to_torch_dtype(dtype))
    value = getattr(x, "value", None)  # a Keras-style variable wrapping a Parameter
    if isinstance(value, torch.Tensor) and not isinstance(x, np.ndarray):
        return value if dtype is None else value.to(to_torch_dtype(dtype))
    device = backend.get_device() if device is None else device
    if isinstance(x, (bool, int, float, complex)):
        if dtype is not None:
            dt = to_torch_dtype(dtype)
        elif isinstance(x, bool):
            dt = torch.bool
        elif isinstance(x, int):
            dt = _int_dtype(x)
        elif isinstance(x, float):
            dt = _TORCH[backend.floatx()]
        else:
            dt = torch.complex64
        return torch.as_tensor(x, dtype=dt, device=device)
    if isinstance(x, (list, tuple)):
        items = _flatten(x, [])
        if any(isinstance(item, torch.Tensor) for item in items):
            return torch.stack([convert_to_tensor(item, dtype, device) for item in x])
        if dtype is None:
            dtype = result_type(*[getattr(i, "dtype", type(i)) for i in items])
        if all(isinstance(i, (bool, int, float, complex)) for i in items):
            # torch reads Python numbers itself and raises where they overflow the dtype
            # ([2**40, 1] -> int32), as Keras does; numpy would wrap them silently.
            return torch.as_tensor(x, dtype=to_torch_dtype(dtype), device=device)
        return torch.as_tensor(np.asarray(x), dtype=to_torch_dtype(dtype), device=device)
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"Cannot convert an object array to a tensor. Received: {arr!r:.200}")
    if arr.dtype == np.uint32:
        arr = arr.astype(np.int64)
    if arr.dtype.name == "bfloat16":  # ml_dtypes arrays: torch cannot read them directly
        arr, dtype = arr.astype(np.float32), dtype or "bfloat16"
    dt = to_torch_dtype(dtype if dtype is not None else arr.dtype)
    return torch.as_tensor(arr, dtype=dt, device=device)


def convert_all(*xs, dtype=None) -> list[torch.Tensor]:
    """Converts several op inputs; non-tensors go to the device of the first tensor among
    them, so a Python scalar never forces a host-device copy of the tensor it meets."""
    device = next((x.device for x in xs if isinstance(x, torch.Tensor)), None)
    return [convert_to_tensor(x, dtype, device) for x in xs]


def is_float(dtype: torch.dtype) -> bool:
    return dtype.is_floating_point


def cast(x: torch.Tensor, dtype) -> torch.Tensor:
    dt = to_torch_dtype(dtype)
    return x if x.dtype == dt else x.to(dt)
