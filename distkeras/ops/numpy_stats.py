"""Statistics of ``keras.ops.numpy``: quantiles, medians, weighted averages, counts, bins.

Dtypes follow Keras: quantiles and medians of integers give float32, counts and bin indices
int32. Where Keras's torch backend departs from numpy (``average``'s 1-D weights, ``bincount``
of 2-D input with rows of different ranges) we follow numpy, as Keras's other backends do.
"""

from __future__ import annotations

import builtins

import torch

from distkeras import backend
from distkeras.ops.dispatch import keras_op
from distkeras.ops.dtypes import cast, convert_all, convert_to_tensor, result_type
from distkeras.ops.numpy_reduce import Axis, _dims, _floatx_dtype, _moment_dtypes, _no_axes

__all__ = [
    "average",
    "bincount",
    "corrcoef",
    "digitize",
    "histogram",
    "median",
    "nanmedian",
    "nanpercentile",
    "nanquantile",
    "percentile",
    "quantile",
]


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
