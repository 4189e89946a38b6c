"""Reductions and statistics of ``keras.ops.numpy`` (sum, mean, quantile, nan-aware variants).

Output dtypes are Keras's: sums and products of bool and small integers accumulate in int32,
means and statistics of integers give float32 (``result_type(x, float)``), index results are
int32. ``axis`` is an int, a tuple/list of ints, or None (all axes); an empty tuple reduces
nothing, as in numpy.
"""

from __future__ import annotations

import builtins

import torch

from distkeras import backend
from distkeras.ops.dispatch import keras_op
from distkeras.ops.dtypes import cast, convert_all, convert_to_tensor, result_type
from distkeras.ops.dtypes import standardize_dtype as _std

__all__ = [
    "all",
    "any",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "average",
    "bincount",
    "corrcoef",
    "count_nonzero",
    "cumprod",
    "cumsum",
    "digitize",
    "histogram",
    "max",
    "mean",
    "median",
    "min",
    "nanargmax",
    "nanargmin",
    "nancumprod",
    "nancumsum",
    "nanmax",
    "nanmean",
    "nanmedian",
    "nanmin",
    "nanpercentile",
    "nanprod",
    "nanquantile",
    "nanstd",
    "nansum",
    "nanvar",
    "percentile",
    "prod",
    "ptp",
    "quantile",
    "std",
    "sum",
    "var",
]

Axis = "int | tuple[int, ...] | list[int] | None"
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


def _quantile(fn, x, q, axis, method, keepdims):
    x, q = convert_all(x, q)
    compute, out = _moment_dtypes(x)
    x = cast(x, compute)
    q = q.to(x.dtype)
    if method not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ValueError(
            "Invalid value for argument `method`. Expected one of 'linear', 'lower', "
            f"'higher', 'midpoint', 'nearest'. Received: method={method!r}"
        )
    if axis is None:
        axes = list(range(x.ndim))
    else:
        axes = sorted(a % x.ndim for a in ([axis] if isinstance(axis, int) else axis))
    others = [d for d in range(x.ndim) if d not in axes]
    # Reduced axes go last and merge into one, as torch.quantile reduces one axis.
    flat = x.permute(others + axes).reshape([x.shape[d] for d in others] + [-1])
    result = fn(flat, q, dim=-1, interpolation=method)
    if keepdims:
        lead = 1 if q.ndim > 0 else 0
        for a in axes:
            result = result.unsqueeze(a + lead)
    return cast(result, out)


@keras_op("numpy")
def quantile(x, q, axis: Axis = None, method: str = "linear", keepdims: bool = False):
    """The ``q``-th quantile(s) (``q`` in [0, 1]) over ``axis``."""
    return _quantile(torch.quantile, x, q, axis, method, keepdims)


@keras_op("numpy")
def nanquantile(x, q, axis: Axis = None, method: str = "linear", keepdims: bool = False):
    """The ``q``-th quantile(s) of the non-NaN elements over ``axis``."""
    return _quantile(torch.nanquantile, x, q, axis, method, keepdims)


def _percent(q, like) -> torch.Tensor:
    return convert_to_tensor(q, dtype=backend.floatx(), device=like.device) / 100.0


@keras_op("numpy")
def percentile(x, q, axis: Axis = None, method: str = "linear", keepdims: bool = False):
    """The ``q``-th percentile(s) (``q`` in [0, 100]) over ``axis``."""
    x = convert_to_tensor(x)
    return _quantile(torch.quantile, x, _percent(q, x), axis, method, keepdims)


@keras_op("numpy")
def nanpercentile(x, q, axis: Axis = None, method: str = "linear", keepdims: bool = False):
    """The ``q``-th percentile(s) of the non-NaN elements over ``axis``."""
    x = convert_to_tensor(x)
    return _quantile(torch.nanquantile, x, _percent(q, x), axis, method, keepdims)


@keras_op("numpy")
def median(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Median over ``axis``, averaging the middle pair of an even count (numpy's rule)."""
    return _quantile(torch.quantile, x, 0.5, axis, "linear", keepdims)


@keras_op("numpy")
def nanmedian(x, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    """Median of the non-NaN elements over ``axis``."""
    x = convert_to_tensor(x)
    if _no_axes(axis):
        return x
    return _quantile(torch.nanquantile, x, 0.5, axis, "linear", keepdims)


@keras_op("numpy")
def average(x, axis: int | None = None, weights=None) -> torch.Tensor:
    """Weighted mean over ``axis``; 1-D ``weights`` lie along ``axis`` (numpy's rule)."""
    x = convert_to_tensor(x)
    resolve = [x.dtype, float]
    if weights is not None:
        weights = convert_to_tensor(weights, device=x.device)
        resolve.append(weights.dtype)
    dtype = result_type(*resolve)
    x = cast(x, dtype)
    if _no_axes(axis):
        return x
    if weights is None:
        return torch.mean(x) if axis is None else torch.mean(x, _dims(axis))
    weights = cast(weights, dtype)
    if weights.shape != x.shape:
        if axis is None or weights.ndim != 1:
            raise ValueError(
                "Axis must be specified when shapes of x and weights differ, and weights "
                f"must then be 1-D. Received: x.shape={tuple(x.shape)}, "
                f"weights.shape={tuple(weights.shape)}, axis={axis}"
            )
        shape = [1] * x.ndim
        shape[axis] = -1
        weights = weights.reshape(shape)
    dims = _dims(axis)
    total = torch.sum(x * weights) if dims is None else torch.sum(x * weights, dim=dims)
    norm = torch.sum(weights.expand_as(x)) if dims is None else torch.sum(weights, dim=dims)
    if norm.ndim < total.ndim:  # 1-D weights summed along axis alone: broadcast
        norm = norm.reshape(norm.shape + (1,) * (total.ndim - norm.ndim))
    return total / norm


@keras_op("numpy")
def count_nonzero(x, axis: Axis = None) -> torch.Tensor:
    """Number of non-zero elements over ``axis``, int32."""
    x = convert_to_tensor(x)
    if _no_axes(axis):
        return torch.ne(x, 0).to(torch.int32)
    return torch.count_nonzero(x, dim=_dims(axis)).to(torch.int32)


@keras_op("numpy")
def bincount(x, weights=None, minlength: int = 0, sparse: bool = False) -> torch.Tensor:
    """Counts of each non-negative integer in ``x`` (1-D, or each row of a 2-D ``x``)."""
    if sparse:
        raise ValueError("Unsupported value `sparse=True`: distkeras has no sparse tensors.")
    x = convert_to_tensor(x)
    if weights is not None:
        weights = convert_to_tensor(weights, device=x.device)
        dtype = result_type(x.dtype, weights.dtype)
    else:
        dtype = "int32"
    if x.ndim == 1:
        return cast(torch.bincount(x, weights, minlength), dtype)
    if x.ndim != 2:
        raise ValueError(f"bincount expects a 1-D or 2-D input. Received: x.shape={x.shape}")
    # All rows at once: shift row i's values by i * length and count the flat result.
    length = builtins.max(int(minlength), int(x.max()) + 1 if x.numel() else 0)
    offsets = torch.arange(x.shape[0], device=x.device).unsqueeze(1) * length
    flat_weights = None if weights is None else weights.reshape(-1)
    counts = torch.bincount((x + offsets).reshape(-1), flat_weights, x.shape[0] * length)
    return cast(counts.reshape(x.shape[0], length), dtype)


@keras_op("numpy")
def digitize(x, bins) -> torch.Tensor:
    """Index of the bin each value falls in (``bins[i-1] <= x < bins[i]``), int32."""
    x, bins = convert_all(x, bins)
    if x.dtype == torch.bool:
        x = x.to(torch.uint8)
    return torch.bucketize(x, bins, right=True).to(torch.int32)


@keras_op("numpy")
def corrcoef(x) -> torch.Tensor:
    """Pearson correlation coefficients of the rows of ``x``."""
    x = convert_to_tensor(x)
    if x.dtype == torch.bool:
        x = x.to(_floatx_dtype())
    elif x.dtype == torch.int64:
        x = x.to(torch.float64)
    return torch.corrcoef(x)


@keras_op("numpy")
def histogram(x, bins: int = 10, range: tuple | None = None):
    """Counts of ``x`` in ``bins`` equal bins over ``range`` (default: x's min and max).

    Returns:
        ``(hist, bin_edges)``, both in x's float dtype.
    """
    if not isinstance(bins, int):
        raise TypeError(f"Argument `bins` must be of type `int`. Received: bins={bins}")
    if bins < 0:
        raise ValueError(f"Argument `bins` should be a non-negative integer. Received: {bins}")
    if range:
        if len(range) < 2 or not isinstance(range, tuple):
            raise ValueError(f"Argument `range` must be a tuple of two elements. Received: {range}")
        if range[1] < range[0]:
            raise ValueError(
                "The second element of `range` must be greater than the first. "
                f"Received: range={range}"
            )
    x = convert_to_tensor(x)
    if x.ndim > 1:
        raise ValueError(f"Input tensor must be 1-dimensional. Received: input.shape={x.shape}")
    if not x.dtype.is_floating_point:
        x = x.to(_floatx_dtype())
    if x.device.type == "cpu":
        result = torch.histogram(x, bins=bins, range=range)
        return result.hist, result.bin_edges
    # torch.histogram runs on CPU only; histc bins the same way on any device.
    low, high = range if range else (x.min(), x.max())
    low, high = torch.as_tensor(low, dtype=x.dtype), torch.as_tensor(high, dtype=x.dtype)
    low, high = (low - 0.5, high + 0.5) if bool(low == high) else (low, high)
    hist = torch.histc(x, bins=bins, min=float(low), max=float(high))
    edges = torch.linspace(float(low), float(high), bins + 1, dtype=x.dtype, device=x.device)
    return hist.to(x.dtype), edges
