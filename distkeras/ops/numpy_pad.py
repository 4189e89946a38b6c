"""``pad`` of ``keras.ops.numpy`` with all of numpy's modes, on any rank and dtype.

Re-exported by :mod:`distkeras.ops.numpy_shape`. torch's own reflect/replicate padding works
on floats and the last 1-3 axes only, and Keras's torch backend maps "symmetric" to
"replicate" (a different result); here every mode follows ``numpy.pad``, one axis at a time.
"""

from __future__ import annotations

import torch

from distkeras.ops.dispatch import keras_op
from distkeras.ops.dtypes import convert_to_tensor

__all__ = ["pad"]

_GATHER_MODES = ("edge", "reflect", "symmetric", "wrap", "circular")
_STAT_MODES = ("maximum", "minimum", "mean", "median")
_MODES = ("constant", "empty", "linear_ramp", *_GATHER_MODES, *_STAT_MODES)


def _pad_widths(pad_width, ndim: int) -> list[tuple[int, int]]:
    """numpy's pad_width forms (int, (n,), (before, after), one pair per axis), broadcast to
    one (before, after) pair per axis as numpy does."""
    widths = convert_to_tensor(pad_width).to(torch.int64)
    try:
        widths = torch.broadcast_to(widths, (ndim, 2))
    except RuntimeError:
        raise ValueError(
            f"`pad_width` must give (before, after) for each of the {ndim} axes. "
            f"Received: pad_width={pad_width}"
        ) from None
    if bool((widths < 0).any()):
        raise ValueError(f"`pad_width` cannot be negative. Received: pad_width={pad_width}")
    return [(int(b), int(a)) for b, a in widths.tolist()]


def _source_index(n: int, before: int, after: int, mode: str, device) -> torch.Tensor:
    """For each output position along one axis, the input position numpy's mode reads."""
    i = torch.arange(-before, n + after, device=device)
    if mode == "edge":
        return i.clamp(0, n - 1)
    if mode in ("wrap", "circular"):
        return i.remainder(n)
    if mode == "symmetric":  # mirror including the edge: ... 1 0 | 0 1 2 | 2 1 ...
        i = i.remainder(2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    if n == 1:  # reflect: mirror excluding the edge: ... 2 1 | 0 1 2 | 1 0 ...
        return torch.zeros_like(i)
    i = i.remainder(2 * (n - 1))
    return torch.where(i >= n, 2 * (n - 1) - i, i)


def _as_dtype(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # numpy rounds statistics (half to even) before storing them in an integer array.
    if not dtype.is_floating_point and dtype != torch.bool:
        values = torch.round(values)
    return values.to(dtype)


def _statistic(x: torch.Tensor, axis: int, mode: str) -> torch.Tensor:
    if mode == "maximum":
        return x.amax(dim=axis, keepdim=True)
    if mode == "minimum":
        return x.amin(dim=axis, keepdim=True)
    wide = x.to(torch.float64) if not x.is_floating_point() else x
    if mode == "mean":
        return _as_dtype(wide.mean(dim=axis, keepdim=True), x.dtype)
    # numpy's median averages the two middle values (torch.median takes the lower one).
    return _as_dtype(torch.quantile(wide, 0.5, dim=axis, keepdim=True), x.dtype)


def _ramp(edge: torch.Tensor, width: int, axis: int, toward_edge: bool) -> torch.Tensor:
    """numpy's linear_ramp from end value 0 to the edge value, excluding the edge itself."""
    shape = [1] * edge.ndim
    shape[axis] = width
    frac = torch.arange(width, dtype=torch.float64, device=edge.device).reshape(shape) / width
    if not toward_edge:
        frac = frac.flip(axis)
    values = edge.to(torch.float64) * frac
    if not edge.dtype.is_floating_point and edge.dtype != torch.bool:
        values = torch.floor(values)  # numpy's integer linspace rounds toward -inf
    return values.to(edge.dtype)


def _pad_axis(x: torch.Tensor, axis: int, before: int, after: int, mode: str) -> torch.Tensor:
    n = x.shape[axis]
    if n == 0:
        raise ValueError(f"pad: cannot pad the empty axis {axis} with mode={mode!r}")
    if mode in _GATHER_MODES:
        return torch.index_select(x, axis, _source_index(n, before, after, mode, x.device))
    if mode in _STAT_MODES:
        stat = _statistic(x, axis, mode)
        low, high = stat, stat
    else:  # linear_ramp
        low, high = x.narrow(axis, 0, 1), x.narrow(axis, n - 1, 1)
    parts = []
    if before:
        parts.append(
            _ramp(low, before, axis, True) if mode == "linear_ramp" else _repeat(low, axis, before)
        )
    parts.append(x)
    if after:
        parts.append(
            _ramp(high, after, axis, False) if mode == "linear_ramp" else _repeat(high, axis, after)
        )
    return torch.cat(parts, dim=axis)


def _repeat(stat: torch.Tensor, axis: int, width: int) -> torch.Tensor:
    shape = list(stat.shape)
    shape[axis] = width
    return stat.expand(shape)


@keras_op("numpy")
def pad(x, pad_width, mode: str = "constant", constant_values=None) -> torch.Tensor:
    x = convert_to_tensor(x)
    if mode not in _MODES:
        raise ValueError(f"pad: mode must be one of {_MODES}. Received: mode={mode!r}")
    if constant_values is not None and mode != "constant":
        raise ValueError(
            "Argument `constant_values` can only be provided when `mode == 'constant'`. "
            f"Received: mode={mode}"
        )
    widths = _pad_widths(pad_width, x.ndim)
    if mode in ("constant", "empty"):  # numpy leaves "empty" padding undefined: zeros here
        flat = [w for pair in reversed(widths) for w in pair]  # torch pads the last axis first
        value = 0 if constant_values is None else constant_values
        if isinstance(value, torch.Tensor):
            value = value.item()
        return torch.nn.functional.pad(x, flat, mode="constant", value=value)
    for axis, (before, after) in enumerate(widths):
        if before or after:
            x = _pad_axis(x, axis, before, after, mode)
    return x
