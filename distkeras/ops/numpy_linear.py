"""Products, sorting and searching of ``keras.ops.numpy`` (dot, matmul, einsum, sort, unique, ...).

Products return Keras's promoted dtype (``result_type`` of the inputs; int8 x int8 gives int32).
Integer products run in integer arithmetic on CPU (exact); CUDA has no integer matmul kernels,
so there they run in float64, exact up to 2**53. ``unique`` has a data-dependent output shape
unless ``size`` is given: it runs eagerly only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import torch

from distkeras import backend
from distkeras.ops.dispatch import keras_op
from distkeras.ops.dtypes import (
    cast,
    convert_all,
    convert_to_tensor,
    result_type,
    standardize_dtype,
    to_torch_dtype,
)

__all__ = [
    "argpartition",
    "argsort",
    "correlate",
    "cross",
    "dot",
    "einsum",
    "inner",
    "kron",
    "matmul",
    "outer",
    "searchsorted",
    "slogdet",
    "sort",
    "tensordot",
    "trapezoid",
    "unique",
    "vdot",
    "vectorize",
]


# ---------------------------------------------------------------- products
def _compute_dtype(result: str, device: torch.device) -> str:
    """The dtype a product runs in: its result dtype where torch has the kernel."""
    if result == "bool":
        return backend.floatx()
    if result.startswith(("int", "uint")) and device.type != "cpu":
        return "float64"
    if result == "float16" and device.type == "cpu":
        return "float32"
    return result


def _product(fn: Callable, *xs, result: str | None = None) -> torch.Tensor:
    xs = convert_all(*xs)
    if result is None:
        result = result_type(*(x.dtype for x in xs))
    compute = _compute_dtype(result, xs[0].device)
    out = fn(*(cast(x, compute) for x in xs))
    if result == "bool":
        out = out != 0
    return cast(out, result)


def _int8_pair(*xs) -> str | None:
    # Keras (following JAX) accumulates int8 x int8 products in int32 to avoid overflow.
    dtypes = {result_type(x.dtype) for x in xs}
    return "int32" if dtypes == {"int8"} else None


@keras_op("numpy")
def matmul(x1, x2) -> torch.Tensor:
    x1, x2 = convert_all(x1, x2)
    return _product(torch.matmul, x1, x2, result=_int8_pair(x1, x2))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim <= 2:
        return torch.matmul(a, b)
    # numpy's N-D dot: sum over the last axis of a and the second-to-last of b (not batched).
    return torch.tensordot(a, b, dims=([-1], [-2]))


@keras_op("numpy")
def dot(x1, x2) -> torch.Tensor:
    return _product(_dot, x1, x2)


@keras_op("numpy")
def inner(x1, x2) -> torch.Tensor:
    return _product(torch.inner, x1, x2)


@keras_op("numpy")
def vdot(x1, x2) -> torch.Tensor:
    return _product(lambda a, b: torch.vdot(a.reshape(-1), b.reshape(-1)), x1, x2)


@keras_op("numpy")
def outer(x1, x2) -> torch.Tensor:
    x1, x2 = convert_all(x1, x2)
    return torch.outer(x1.reshape(-1), x2.reshape(-1))


@keras_op("numpy")
def kron(x1, x2) -> torch.Tensor:
    return torch.kron(*convert_all(x1, x2))


def _tensordot_axes(axes):
    if isinstance(axes, int):
        return axes
    first, second = axes
    first = (first,) if isinstance(first, int) else tuple(first)
    second = (second,) if isinstance(second, int) else tuple(second)
    return first, second


@keras_op("numpy")
def tensordot(x1, x2, axes=2) -> torch.Tensor:
    dims = _tensordot_axes(axes)
    return _product(lambda a, b: torch.tensordot(a, b, dims=dims), x1, x2)


@keras_op("numpy")
def einsum(subscripts: str, *operands, **kwargs) -> torch.Tensor:
    if kwargs:
        raise NotImplementedError(f"einsum: keyword arguments {sorted(kwargs)} are not supported.")
    operands = convert_all(*operands)
    # Keras's torch backend keeps torch's own promotion here (64-bit inputs stay 64-bit).
    result = _int8_pair(*operands) or standardize_dtype(
        functools.reduce(torch.promote_types, (x.dtype for x in operands))
    )
    return _product(lambda *xs: torch.einsum(subscripts, *xs), *operands, result=result)


@keras_op("numpy")
def cross(x1, x2, axisa: int = -1, axisb: int = -1, axisc: int = -1, axis: int | None = None):
    x1, x2 = convert_all(x1, x2)
    if axis is not None:
        axisa = axisb = axisc = axis
    dtype = result_type(x1.dtype, x2.dtype)
    a, b = torch.movedim(cast(x1, dtype), axisa, -1), torch.movedim(cast(x2, dtype), axisb, -1)
    if a.shape[-1] not in (2, 3) or b.shape[-1] not in (2, 3):
        raise ValueError(
            "Incompatible dimensions for cross product (dimension must be 2 or 3). Received: "
            f"x1.shape={tuple(x1.shape)}, x2.shape={tuple(x2.shape)}"
        )
    if a.shape[-1] == 2 and b.shape[-1] == 2:  # numpy returns the z component only
        return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    a, b = (torch.nn.functional.pad(t, (0, 3 - t.shape[-1])) for t in (a, b))
    a0, a1, a2 = a.unbind(-1)
    b0, b1, b2 = b.unbind(-1)
    out = torch.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], dim=-1)
    return torch.movedim(out, -1, axisc)


@keras_op("numpy")
def correlate(x1, x2, mode: str = "valid") -> torch.Tensor:
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"mode must be 'valid', 'same' or 'full'. Received: mode={mode!r}")
    x1, x2 = convert_all(x1, x2)
    dtype = result_type(x1.dtype, x2.dtype)
    # Keras computes in float: int64 inputs in float64, the other non-float types in float32.
    if dtype == "int64":
        dtype = "float64"
    elif dtype not in ("bfloat16", "float16", "float64"):
        dtype = "float32"
    x1, x2 = cast(x1, dtype), cast(x2, dtype)
    n1, n2 = x1.shape[-1], x2.shape[-1]
    batch = torch.broadcast_shapes(x1.shape[:-1], x2.shape[:-1])
    a = x1.broadcast_to(batch + (n1,)).reshape(1, -1, n1)
    v = x2.broadcast_to(batch + (n2,)).reshape(-1, 1, n2)
    # One grouped conv1d per signal pair gives the full cross-correlation, lags -(n2-1)..n1-1.
    full = torch.nn.functional.conv1d(a, v, groups=a.shape[1], padding=n2 - 1)
    full = full.reshape(batch + (n1 + n2 - 1,))
    keep = {"full": n1 + n2 - 1, "same": max(n1, n2), "valid": max(n1, n2) - min(n1, n2) + 1}
    start = (full.shape[-1] - keep[mode]) // 2
    return full[..., start : start + keep[mode]]


@keras_op("numpy")
def trapezoid(y, x=None, dx=1.0, axis: int = -1) -> torch.Tensor:
    y = convert_to_tensor(y)
    # As Keras's torch backend: float data keeps its dtype (float64 too), others give floatx.
    dtype = y.dtype
    if x is not None:
        x = convert_to_tensor(x, device=y.device)
        dtype = torch.promote_types(dtype, x.dtype)
    if not dtype.is_floating_point:
        dtype = to_torch_dtype(backend.floatx())
    if x is None:
        return torch.trapezoid(y.to(dtype), dx=float(dx), dim=axis)
    return torch.trapezoid(y.to(dtype), x=x.to(dtype), dim=axis)


@keras_op("numpy")
def slogdet(x) -> tuple[torch.Tensor, torch.Tensor]:
    x = convert_to_tensor(x)
    if not x.is_floating_point():  # torch's slogdet takes floats only: integers as floatx
        x = cast(x, backend.floatx())
    if x.dtype in (torch.float16, torch.bfloat16):  # no half kernels: compute in float32
        return tuple(out.to(x.dtype) for out in torch.linalg.slogdet(x.float()))
    return tuple(torch.linalg.slogdet(x))


# ---------------------------------------------------------------- sorting and searching
def _sortable(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.uint8) if x.dtype == torch.bool else x


@keras_op("numpy")
def sort(x, axis: int | None = -1) -> torch.Tensor:
    x = convert_to_tensor(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return cast(torch.sort(_sortable(x), dim=axis, stable=True).values, x.dtype)


@keras_op("numpy")
def argsort(x, axis: int | None = -1) -> torch.Tensor:
    x = convert_to_tensor(x)
    if axis is None:
        x, axis = x.reshape(-1), -1
    return cast(torch.argsort(_sortable(x), dim=axis, stable=True), "int32")


@keras_op("numpy")
def argpartition(x, kth: int, axis: int | None = -1) -> torch.Tensor:
    x = convert_to_tensor(x)
    if axis is None:
        x, axis = x.reshape(-1), -1
    # Negation needs a signed type: widen bool and unsigned ints (values are kept exactly).
    if x.dtype in (torch.bool, torch.uint8):
        x = x.to(torch.int32)
    x = torch.movedim(x, axis, -1)
    n = x.shape[-1]
    kth = kth % n if kth < 0 else kth
    # The kth+1 smallest in ascending order, then every other index (same order as Keras).
    bottom = torch.topk(-x, kth + 1).indices
    rest = torch.ones_like(x, dtype=torch.int32).scatter(-1, bottom, 0)
    top = torch.topk(rest, n - kth - 1).indices
    out = torch.cat([bottom, top], dim=-1)
    return cast(torch.movedim(out, -1, axis), "int32")


@keras_op("numpy")
def searchsorted(sorted_sequence, values, side: str = "left") -> torch.Tensor:
    sorted_sequence, values = convert_all(sorted_sequence, values)
    if sorted_sequence.ndim != 1:
        raise ValueError(
            "`searchsorted` only supports 1-D sorted sequences. You can use "
            "`ops.vectorized_map` to extend it to N-D sequences. Received: "
            f"sorted_sequence.shape={tuple(sorted_sequence.shape)}"
        )
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right'. Received: side={side!r}")
    dtype = result_type(sorted_sequence.dtype, values.dtype)
    out_int32 = sorted_sequence.shape[0] <= 2**31 - 1
    return torch.searchsorted(
        _sortable(cast(sorted_sequence, dtype)), _sortable(cast(values, dtype)), side=side,
        out_int32=out_int32,
    )  # fmt: skip


@keras_op("numpy")
def unique(x, sorted: bool = True, return_index: bool = False, return_inverse: bool = False,
           return_counts: bool = False, axis: int | None = None, size: int | None = None,
           fill_value=None):  # fmt: skip
    x = convert_to_tensor(x)
    dim = 0 if axis is None else axis % x.ndim
    values, inverse, counts = torch.unique(
        x, sorted=sorted, return_inverse=True, return_counts=True, dim=axis
    )
    n = values.shape[dim]
    flat_inverse = inverse.reshape(-1)
    # First occurrence of each unique value: the smallest position mapping to it.
    positions = torch.arange(flat_inverse.numel(), device=x.device)
    index = torch.full((n,), flat_inverse.numel(), dtype=torch.int64, device=x.device)
    index = index.scatter_reduce(0, flat_inverse, positions, reduce="amin")
    if size is not None:
        values, counts, index = _fit_size(values, counts, index, dim, size, fill_value)
    out = [values]
    if return_index:
        out.append(index)
    if return_inverse:
        out.append(inverse)
    if return_counts:
        out.append(counts)
    return out[0] if len(out) == 1 else tuple(out)


def _fit_size(values, counts, index, dim: int, size: int, fill_value):
    """Truncates or pads the unique values to ``size`` along ``dim`` (JAX's static-size form);
    padded values are ``fill_value`` (default 0), counts 0 and indices 1, as in Keras."""
    n = values.shape[dim]
    if n >= size:
        return values.narrow(dim, 0, size), counts[:size], index[:size]
    pad_shape = list(values.shape)
    pad_shape[dim] = size - n
    fill = 0 if fill_value is None else fill_value
    filler = torch.full(pad_shape, fill, dtype=values.dtype, device=values.device)
    values = torch.cat([values, filler], dim=dim)
    counts = torch.nn.functional.pad(counts, (0, size - n), value=0)
    index = torch.nn.functional.pad(index, (0, size - n), value=1)
    return values, counts, index


# ---------------------------------------------------------------- vectorize
_ARG = r"\(\w*(?:,\w+)*\)"


def _parse_signature(signature: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """numpy's generalized-ufunc signature, e.g. "(m,n),(n)->(m)", as core dimension names."""
    signature = signature.replace(" ", "")
    if not re.fullmatch(rf"{_ARG}(?:,{_ARG})*->{_ARG}(?:,{_ARG})*", signature):
        raise ValueError(f"Not a valid gufunc signature: {signature!r}")
    ins, outs = signature.split("->")

    def parse(part: str) -> list[tuple[str, ...]]:
        return [tuple(d for d in g.split(",") if d) for g in re.findall(r"\((.*?)\)", part)]

    return parse(ins), parse(outs)


@keras_op("numpy")
def vectorize(pyfunc: Callable, *, excluded=None, signature: str | None = None) -> Callable:
    if not callable(pyfunc):
        raise ValueError(f"Expected argument `pyfunc` to be a callable. Received: pyfunc={pyfunc}")
    excluded = set(excluded or ())
    core_in = _parse_signature(signature)[0] if signature else None

    @functools.wraps(pyfunc)
    def wrapped(*args, **kwargs):
        slots = [i for i in range(len(args)) if i not in excluded]
        slots += [k for k in kwargs if k not in excluded]
        tensors = convert_all(*(args[s] if isinstance(s, int) else kwargs[s] for s in slots))
        cores = [len(c) for c in core_in] if core_in else [0] * len(tensors)
        if len(cores) != len(tensors):
            raise TypeError(
                f"wrong number of positional arguments: expected {len(cores)}, got {len(tensors)}"
            )
        batch = torch.broadcast_shapes(*(t.shape[: t.ndim - c] for t, c in zip(tensors, cores)))
        flat = [
            t.broadcast_to(batch + t.shape[t.ndim - c :]).reshape(-1, *t.shape[t.ndim - c :])
            for t, c in zip(tensors, cores)
        ]

        def call(*values):
            call_args, call_kwargs = list(args), dict(kwargs)
            for s, v in zip(slots, values):
                if isinstance(s, int):
                    call_args[s] = v
                else:
                    call_kwargs[s] = v
            return pyfunc(*call_args, **call_kwargs)

        out = torch.vmap(call)(*flat)
        unflatten = lambda o: o.reshape(batch + o.shape[1:])  # noqa: E731
        return tuple(map(unflatten, out)) if isinstance(out, tuple) else unflatten(out)

    return wrapped
