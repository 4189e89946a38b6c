"""Reductions of ``keras.ops.numpy``: sums, products, means, extremes, cumulative and nan-aware.

Output dtypes are Keras's: sums and products of bool and small integers accumulate in int32,
means and statistics of integers give float32 (``result_type(x, float)``), index results are
int32. ``axis`` is an int, a tuple/list of ints, or None (all axes); an empty tuple reduces
nothing, as in numpy.
"""

from __future__ import annotations

import torch

from distkeras import backend
from distkeras.ops.dispatch import keras_op
from distkeras.ops.dtypes import cast, convert_to_tensor, result_type
from distkeras.ops.dtypes import standardize_dtype as _std

__all__ = [
    "all",
    "any",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "count_nonzero",
    "cumprod",
    "cumsum",
    "max",
    "mean",
    "min",
    "nanargmax",
    "nanargmin",
    "nancumprod",
    "nancumsum",
    "nanmax",
    "nanmean",
    "nanmin",
    "nanprod",
    "nanstd",
    "nansum",
    "nanvar",
    "prod",
    "ptp",
    "std",
    "sum",
    "var",
]

Axis = int | tuple[int, ...] | list[int] | None
_SMALL_INTS = ("bool", "uint8", "int8", "int16")


def _dims(axis):
    """Keras's axis as torch's ``dim``: None, an int, or a tuple."""
    if axis is None or isinstance(axis, int):
        return axis
    return tuple(axis)


def _no_axes(axis) -> bool:
    return axis is not None and not isinstance(axis, int) and len(axis) == 0


def _tensor(x) -> torch.Tensor:
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], torch.Tensor):
        return torch.stack([convert_to_tensor(v) for v in x])
    return convert_to_tensor(x)


def _keep_all_dims(result: torch.Tensor, x: torch.Tensor, keepdims: bool) -> torch.Tensor:
    """A full reduction with ``keepdims=True`` keeps every axis, with length 1 (numpy)."""
    return result.reshape((1,) * x.ndim) if keepdims else result


def _floatx_dtype() -> torch.dtype:
    return backend.standardize_dtype(backend.floatx())


@keras_op("numpy")
def sum(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Sum over ``axis``; bool and small integers accumulate in int32."""
    x = _tensor(x)
    if _no_axes(axis):
        return x
    dtype = _std(x.dtype)
    dtype = "int32" if dtype in _SMALL_INTS else dtype
    if axis is None:
        return cast(_keep_all_dims(torch.sum(x), x, keepdims), dtype)
    return cast(torch.sum(x, dim=_dims(axis), keepdim=keepdims), dtype)


@keras_op("numpy")
def prod(x, axis: Axis = None, keepdims: bool = False, dtype=None) -> torch.Tensor:
    """Product over ``axis``; bool and small integers accumulate in int32."""
    x = convert_to_tensor(x)
    if dtype is None:
        dtype = result_type(x.dtype)
        dtype = "int32" if dtype in _SMALL_INTS else dtype
    else:
        dtype = _std(dtype)
    compute = "float32" if dtype == "float16" and x.device.type == "cpu" else dtype
    compute_torch = backend.standardize_dtype(compute)
    if axis is None:
        return cast(_keep_all_dims(torch.prod(x, dtype=compute_torch), x, keepdims), dtype)
    axes = [a % x.ndim for a in ([axis] if isinstance(axis, int) else axis)]
    for a in sorted(axes, reverse=True):  # torch.prod takes one axis at a time
        x = torch.prod(x, dim=a, keepdim=keepdims, dtype=compute_torch)
    return cast(x, dtype)


@keras_op("numpy")
def mean(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Arithmetic mean over ``axis``; integer and bool inputs give float32."""
    x = _tensor(x)
    if _no_axes(axis):
        return x
    name = _std(x.dtype)
    compute = result_type(name, "float32") if name != "float64" else "float64"
    out_dtype = compute if name in _SMALL_INTS or "int" in name else name
    dims = _dims(axis)
    xc = cast(x, compute)
    result = torch.mean(xc) if dims is None else torch.mean(xc, dims, keepdims)
    if dims is None:
        result = _keep_all_dims(result, x, keepdims)
    return cast(result, out_dtype)


def _moment_dtypes(x: torch.Tensor) -> tuple[str, str]:
    """(compute, result) dtypes of var-like statistics."""
    name = _std(x.dtype)
    compute = "float64" if name == "float64" else result_type(name, "float32")
    return compute, result_type(name, float)


@keras_op("numpy")
def var(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Population variance (no Bessel correction) over ``axis``."""
    x = convert_to_tensor(x)
    compute, out = _moment_dtypes(x)
    if _no_axes(axis):
        return torch.zeros_like(x, dtype=backend.standardize_dtype(out))
    result = torch.var(cast(x, compute), dim=_dims(axis), keepdim=keepdims, correction=0)
    return cast(result, out)


@keras_op("numpy")
def std(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Population standard deviation (no Bessel correction) over ``axis``."""
    x = convert_to_tensor(x)
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        x = x.to(torch.float32)
    return torch.std(x, dim=_dims(axis), keepdim=keepdims, correction=0)


def _extreme(x, axis, keepdims, initial, reduce, combine, what):
    x = convert_to_tensor(x)
    if x.numel() == 0:
        if initial is None:
            raise ValueError(f"Cannot compute the {what} of an empty tensor.")
        shape = (1,) * x.ndim if keepdims else ()
        return torch.full(shape, initial, dtype=x.dtype, device=x.device)
    if _no_axes(axis):
        result = x
    elif axis is None:
        result = _keep_all_dims(reduce(x), x, keepdims)
    else:
        result = reduce(x, dim=_dims(axis), keepdim=keepdims)
    if initial is not None:
        result = combine(result, torch.as_tensor(initial, dtype=result.dtype, device=x.device))
    return result


@keras_op("numpy")
def max(x, axis: Axis = None, keepdims: bool = False, initial=None) -> torch.Tensor:
    """Maximum over ``axis``, at least ``initial`` when given."""
    return _extreme(x, axis, keepdims, initial, torch.amax, torch.maximum, "max")


@keras_op("numpy")
def min(x, axis: Axis = None, keepdims: bool = False, initial=None) -> torch.Tensor:
    """Minimum over ``axis``, at most ``initial`` when given."""
    return _extreme(x, axis, keepdims, initial, torch.amin, torch.minimum, "min")


@keras_op("numpy")
def amax(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Maximum over ``axis`` (NaN wins)."""
    return _extreme(x, axis, keepdims, None, torch.amax, None, "max")


@keras_op("numpy")
def amin(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Minimum over ``axis`` (NaN wins)."""
    return _extreme(x, axis, keepdims, None, torch.amin, None, "min")


@keras_op("numpy")
def ptp(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Range (max - min) over ``axis``."""
    x = convert_to_tensor(x)
    if _no_axes(axis):
        return torch.zeros_like(x)
    return amax(x, axis, keepdims) - amin(x, axis, keepdims)


def _truth(fn):
    def op(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
        x = convert_to_tensor(x)
        if _no_axes(axis):
            return x.to(torch.bool)
        return fn(x, dim=_dims(axis), keepdim=keepdims).to(torch.bool)

    return op


@keras_op("numpy")
def all(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Whether every element over ``axis`` is truthy."""
    return _truth(torch.all)(x, axis, keepdims)


@keras_op("numpy")
def any(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Whether some element over ``axis`` is truthy."""
    return _truth(torch.any)(x, axis, keepdims)


def _arg(fn, x, axis, keepdims):
    x = convert_to_tensor(x)
    if x.dtype == torch.bool:  # torch's argmax has no bool kernel
        x = x.to(torch.uint8)
    return fn(x, dim=axis, keepdim=keepdims).to(torch.int32)


@keras_op("numpy")
def argmax(x, axis: int | None = None, keepdims: bool = False) -> torch.Tensor:
    """Index of the first maximum along ``axis`` (of the flattened input when None), int32."""
    return _arg(torch.argmax, x, axis, keepdims)


@keras_op("numpy")
def argmin(x, axis: int | None = None, keepdims: bool = False) -> torch.Tensor:
    """Index of the first minimum along ``axis`` (of the flattened input when None), int32."""
    return _arg(torch.argmin, x, axis, keepdims)


def _nanarg(fn, fill, x, axis, keepdims):
    x = convert_to_tensor(x)
    if not x.dtype.is_floating_point:
        return _arg(fn, x, axis, keepdims)
    nan = torch.isnan(x)
    index = _arg(fn, torch.where(nan, fill, x), axis, keepdims)
    all_nan = nan.all() if axis is None else nan.all(dim=axis, keepdim=keepdims)
    if axis is None and keepdims:
        all_nan = all_nan.reshape(index.shape)
    return torch.where(all_nan, torch.full_like(index, -1), index)


@keras_op("numpy")
def nanargmax(x, axis: int | None = None, keepdims: bool = False) -> torch.Tensor:
    """argmax ignoring NaNs; -1 where a slice is all NaN."""
    return _nanarg(torch.argmax, float("-inf"), x, axis, keepdims)


@keras_op("numpy")
def nanargmin(x, axis: int | None = None, keepdims: bool = False) -> torch.Tensor:
    """argmin ignoring NaNs; -1 where a slice is all NaN."""
    return _nanarg(torch.argmin, float("inf"), x, axis, keepdims)


def _cumulative(fn, x, axis, dtype):
    x = convert_to_tensor(x)
    if axis is None:
        x, axis = x.flatten(), 0
    dtype = result_type(_std(dtype) if dtype is not None else x.dtype)
    if dtype == "bool":
        dtype = "int32"
    if dtype == "float16" and x.device.type == "cpu":  # no float16 kernel on CPU
        return fn(x, dim=axis, dtype=torch.float32).to(torch.float16)
    return fn(x, dim=axis, dtype=backend.standardize_dtype(dtype))


@keras_op("numpy")
def cumsum(x, axis: int | None = None, dtype=None) -> torch.Tensor:
    """Cumulative sum along ``axis`` (of the flattened input when None)."""
    return _cumulative(torch.cumsum, x, axis, dtype)


@keras_op("numpy")
def cumprod(x, axis: int | None = None, dtype=None) -> torch.Tensor:
    """Cumulative product along ``axis`` (of the flattened input when None)."""
    return _cumulative(torch.cumprod, x, axis, dtype)


def _nan_as(x, value: float) -> torch.Tensor:
    """NaNs replaced by ``value``; infinities kept (numpy's nan-functions keep them)."""
    x = convert_to_tensor(x)
    if not x.dtype.is_floating_point:
        return x
    return torch.where(torch.isnan(x), torch.full_like(x, value), x)


@keras_op("numpy")
def nancumsum(x, axis: int | None = None, dtype=None) -> torch.Tensor:
    """Cumulative sum treating NaNs as 0."""
    return _cumulative(torch.cumsum, _nan_as(x, 0.0), axis, dtype)


@keras_op("numpy")
def nancumprod(x, axis: int | None = None, dtype=None) -> torch.Tensor:
    """Cumulative product treating NaNs as 1."""
    return _cumulative(torch.cumprod, _nan_as(x, 1.0), axis, dtype)


@keras_op("numpy")
def nansum(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Sum treating NaNs as 0; bool and small integers accumulate in int32."""
    x = _tensor(x)
    dtype = _std(x.dtype)
    dtype = "int32" if dtype in _SMALL_INTS else dtype
    if _no_axes(axis):
        return cast(_nan_as(x, 0.0), dtype)
    return sum(_nan_as(x, 0.0).to(backend.standardize_dtype(dtype)), axis, keepdims)


@keras_op("numpy")
def nanprod(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Product treating NaNs as 1."""
    x = convert_to_tensor(x)
    if _no_axes(axis):
        return _nan_as(x, 1.0)
    return prod(_nan_as(x, 1.0), axis, keepdims)


def _nan_extreme(x, axis, keepdims, fill, reduce):
    x = convert_to_tensor(x)
    if _no_axes(axis):
        return x
    if not x.dtype.is_floating_point:
        return amax(x, axis, keepdims) if reduce is torch.amax else amin(x, axis, keepdims)
    nan = torch.isnan(x)
    out = _extreme(torch.where(nan, fill, x), axis, keepdims, None, reduce, None, "nanmax")
    all_nan = _extreme(nan, axis, keepdims, None, torch.all, None, "nanmax")
    return torch.where(all_nan, torch.full_like(out, float("nan")), out)


@keras_op("numpy")
def nanmax(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Maximum ignoring NaNs; NaN where a slice is all NaN."""
    return _nan_extreme(x, axis, keepdims, float("-inf"), torch.amax)


@keras_op("numpy")
def nanmin(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Minimum ignoring NaNs; NaN where a slice is all NaN."""
    return _nan_extreme(x, axis, keepdims, float("inf"), torch.amin)


@keras_op("numpy")
def nanmean(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Mean of the non-NaN elements."""
    x = convert_to_tensor(x)
    if _no_axes(axis):
        return x
    x = cast(x, result_type(_std(x.dtype), float))
    result = torch.nanmean(x, dim=_dims(axis), keepdim=keepdims)
    return _keep_all_dims(result, x, keepdims) if axis is None else result


@keras_op("numpy")
def nanvar(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Population variance of the non-NaN elements."""
    x = convert_to_tensor(x)
    x = cast(x, result_type(_std(x.dtype), float))
    if _no_axes(axis):
        return torch.where(torch.isnan(x), x, torch.zeros_like(x))
    dims = _dims(axis)
    valid = ~torch.isnan(x)
    center = torch.nanmean(x, dim=dims, keepdim=True)
    deviation = torch.where(valid, x - center, torch.zeros_like(x))
    squares = deviation.real**2 + deviation.imag**2 if x.is_complex() else deviation**2
    if dims is None:
        result = squares.sum() / valid.sum()
        return _keep_all_dims(result, x, keepdims)
    return squares.sum(dim=dims, keepdim=keepdims) / valid.sum(dim=dims, keepdim=keepdims)


@keras_op("numpy")
def nanstd(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Population standard deviation of the non-NaN elements."""
    return torch.sqrt(nanvar(x, axis, keepdims))


@keras_op("numpy")
def count_nonzero(x, axis: Axis = None) -> torch.Tensor:
    """Number of non-zero elements over ``axis``, int32."""
    x = convert_to_tensor(x)
    if _no_axes(axis):
        return torch.ne(x, 0).to(torch.int32)
    return torch.count_nonzero(x, dim=_dims(axis)).to(torch.int32)
