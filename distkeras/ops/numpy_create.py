"""Tensor creation and window functions of ``keras.ops.numpy`` (arange, eye, hanning, ...).

New tensors go to distkeras's device. Without ``dtype`` they are floatx, except where Keras
derives the dtype from the arguments (``arange``, ``linspace``, ``*_like``, ``array``).
"""

from __future__ import annotations

import math

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
    "arange",
    "array",
    "bartlett",
    "blackman",
    "copy",
    "empty",
    "empty_like",
    "eye",
    "full",
    "full_like",
    "geomspace",
    "hamming",
    "hanning",
    "identity",
    "kaiser",
    "linspace",
    "logspace",
    "ones",
    "ones_like",
    "tri",
    "vander",
    "zeros",
    "zeros_like",
]


def _shape(shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, int) else tuple(int(d) for d in shape)


def _floatx_or(dtype) -> torch.dtype:
    return to_torch_dtype(dtype if dtype is not None else backend.floatx())


def _like_dtype(x: torch.Tensor, dtype) -> torch.dtype:
    return x.dtype if dtype is None else to_torch_dtype(dtype)


# ---------------------------------------------------------------- constant tensors
@keras_op("numpy")
def zeros(shape, dtype=None) -> torch.Tensor:
    return torch.zeros(_shape(shape), dtype=_floatx_or(dtype), device=backend.get_device())


@keras_op("numpy")
def ones(shape, dtype=None) -> torch.Tensor:
    return torch.ones(_shape(shape), dtype=_floatx_or(dtype), device=backend.get_device())


@keras_op("numpy")
def empty(shape, dtype=None) -> torch.Tensor:
    return torch.empty(_shape(shape), dtype=_floatx_or(dtype), device=backend.get_device())


@keras_op("numpy")
def full(shape, fill_value, dtype=None) -> torch.Tensor:
    dtype = _floatx_or(dtype)
    fill = convert_to_tensor(fill_value, dtype)
    return torch.broadcast_to(fill, _shape(shape)).clone()


@keras_op("numpy")
def zeros_like(x, dtype=None) -> torch.Tensor:
    x = convert_to_tensor(x)
    return torch.zeros_like(x, dtype=_like_dtype(x, dtype))


@keras_op("numpy")
def ones_like(x, dtype=None) -> torch.Tensor:
    x = convert_to_tensor(x)
    return torch.ones_like(x, dtype=_like_dtype(x, dtype))


@keras_op("numpy")
def empty_like(x, dtype=None) -> torch.Tensor:
    x = convert_to_tensor(x)
    return torch.empty_like(x, dtype=_like_dtype(x, dtype))


@keras_op("numpy")
def full_like(x, fill_value, dtype=None) -> torch.Tensor:
    x = convert_to_tensor(x)
    fill = convert_to_tensor(fill_value, _like_dtype(x, dtype), x.device)
    return torch.broadcast_to(fill, x.shape).clone()


@keras_op("numpy")
def array(x, dtype=None) -> torch.Tensor:
    return convert_to_tensor(x, dtype)


@keras_op("numpy")
def copy(x) -> torch.Tensor:
    return torch.clone(convert_to_tensor(x))


# ---------------------------------------------------------------- identity-like matrices
def _diagonal_mask(n: int, m: int, k: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    rows = torch.arange(n, device=device)[:, None]
    cols = torch.arange(m, device=device)[None, :]
    return rows, cols - k


def _check_int(name: str, value) -> None:
    if isinstance(value, float) or getattr(value, "is_floating_point", lambda: False)():
        raise TypeError(f"Argument `{name}` must be an integer. Received: {name}={value!r}")


@keras_op("numpy")
def eye(N, M=None, k: int = 0, dtype=None) -> torch.Tensor:
    _check_int("N", N)
    _check_int("M", M)
    n = int(N)
    m = n if M is None else int(M)
    rows, cols = _diagonal_mask(n, m, int(k or 0), backend.get_device())
    return (rows == cols).to(_floatx_or(dtype))


@keras_op("numpy")
def identity(n, dtype=None) -> torch.Tensor:
    return eye.eager(n, dtype=dtype)


@keras_op("numpy")
def tri(N, M=None, k: int = 0, dtype=None) -> torch.Tensor:
    n = int(N)
    m = n if M is None else int(M)
    rows, cols = _diagonal_mask(n, m, int(k), backend.get_device())
    return (cols <= rows).to(_floatx_or(dtype))


@keras_op("numpy")
def vander(x, N: int | None = None, increasing: bool = False) -> torch.Tensor:
    x = convert_to_tensor(x)
    if x.ndim != 1:
        raise ValueError(f"Input tensor must be 1-dimensional. Received: input.shape={x.shape}")
    if N is not None and (not isinstance(N, int) or N < 0):
        raise ValueError(f"Argument `N` must be a nonnegative int. Received: N={N!r}")
    if not isinstance(increasing, bool):
        raise TypeError(f"Argument `increasing` must be a bool. Received: {increasing!r}")
    return cast(torch.vander(x, N=N, increasing=increasing), result_type(x.dtype))


# ---------------------------------------------------------------- ranges
def _weak_dtype(value):
    """A dtype for promotion: tensors/arrays by dtype, Python scalars as weak types."""
    return getattr(value, "dtype", type(value))


@keras_op("numpy")
def arange(start, stop=None, step=None, dtype=None) -> torch.Tensor:
    if dtype is None:
        given = [v for v in (start, stop, step) if v is not None]
        dtype = result_type(*[_weak_dtype(v) for v in given])
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    start, stop, step = (v.item() if hasattr(v, "item") else v for v in (start, stop, step))
    return torch.arange(start, stop, step, dtype=to_torch_dtype(dtype), device=backend.get_device())


def _space_dtype(start, stop, dtype) -> str:
    if dtype is not None:
        return standardize_dtype(dtype)
    return result_type(_weak_dtype(start), _weak_dtype(stop), float)


def _unit_steps(num: int, endpoint: bool, dtype: torch.dtype, device) -> torch.Tensor:
    """Fractions of the way from start to stop, computed in float64 for accuracy."""
    div = (num - 1) if endpoint else num
    steps = torch.arange(num, dtype=torch.float64, device=device)
    return steps / div if div > 0 else steps * 0


def _move_num_axis(out: torch.Tensor, axis: int) -> torch.Tensor:
    return out if axis == 0 else torch.movedim(out, 0, axis)


def _ends64(start, stop) -> tuple[torch.Tensor, torch.Tensor]:
    """start and stop in float64 (the accuracy numpy computes ranges in), on their device."""
    start64, stop64 = convert_all(start, stop, dtype="float64")
    return start64, stop64.to(start64.device)


def _linspace(start, stop, num, endpoint, dtype: str, axis: int):
    if num < 0:
        raise ValueError(f"Number of samples must be non-negative. Received: num={num}")
    start64, stop64 = _ends64(start, stop)
    device = start64.device
    start64, stop64 = torch.broadcast_tensors(start64, stop64)
    frac = _unit_steps(num, endpoint, torch.float64, device).reshape(-1, *([1] * start64.ndim))
    out = start64 + frac * (stop64 - start64)
    if endpoint and num > 1:  # exactly ``stop`` at the end, as numpy guarantees
        out[-1] = stop64
    div = (num - 1) if endpoint else num
    step = (stop64 - start64) / div if div > 0 else torch.full_like(start64, math.nan)
    return _move_num_axis(out, axis), step


@keras_op("numpy")
def linspace(start, stop, num: int = 50, endpoint: bool = True, retstep: bool = False,
             dtype=None, axis: int = 0):  # fmt: skip
    dtype = _space_dtype(start, stop, dtype)
    out, step = _linspace(start, stop, num, endpoint, dtype, axis)
    out = _to_dtype(out, dtype)
    if retstep:
        # numpy and Keras's torch backend give the step as a Python float for scalar ends.
        return out, (step.item() if step.ndim == 0 else _to_dtype(step, dtype))
    return out


def _to_dtype(x: torch.Tensor, dtype: str) -> torch.Tensor:
    torch_dtype = to_torch_dtype(dtype)
    if not torch_dtype.is_floating_point and torch_dtype != torch.bool:
        x = torch.floor(x)  # numpy's integer linspace rounds toward -inf
    return x.to(torch_dtype)


@keras_op("numpy")
def logspace(start, stop, num: int = 50, endpoint: bool = True, base=10, dtype=None,
             axis: int = 0) -> torch.Tensor:  # fmt: skip
    dtype = _space_dtype(start, stop, dtype)
    exponents, _ = _linspace(start, stop, num, endpoint, dtype, 0)
    out = torch.pow(convert_to_tensor(base, "float64", exponents.device), exponents)
    return _to_dtype(_move_num_axis(out, axis), dtype)


@keras_op("numpy")
def geomspace(start, stop, num: int = 50, endpoint: bool = True, dtype=None,
              axis: int = 0) -> torch.Tensor:  # fmt: skip
    dtype = _space_dtype(start, stop, dtype)
    start64, stop64 = _ends64(start, stop)
    # Checked on real data only: shape inference runs on meta tensors, which have no values.
    if start64.device.type != "meta" and bool((start64 == 0).any() | (stop64 == 0).any()):
        raise ValueError("Geometric sequence cannot include zero.")
    sign = torch.sign(start64)
    exponents, _ = _linspace(
        torch.log10(start64.abs()), torch.log10(stop64.abs()), num, endpoint, dtype, 0
    )
    out = sign * torch.pow(10.0, exponents)
    return _to_dtype(_move_num_axis(out, axis), dtype)


# ---------------------------------------------------------------- windows
def _window_length(x) -> int:
    length = convert_to_tensor(x)
    if length.ndim != 0 or length.is_floating_point():
        raise TypeError(f"The window length must be an integer scalar. Received: x={x!r}")
    return int(length)


def _window(x, fn, **kwargs) -> torch.Tensor:
    m = _window_length(x)
    dtype = to_torch_dtype(backend.floatx())
    return fn(m, sym=True, dtype=dtype, device=backend.get_device(), **kwargs)


@keras_op("numpy")
def bartlett(x) -> torch.Tensor:
    return _window(x, torch.signal.windows.bartlett)


@keras_op("numpy")
def blackman(x) -> torch.Tensor:
    return _window(x, torch.signal.windows.blackman)


@keras_op("numpy")
def hamming(x) -> torch.Tensor:
    return _window(x, torch.signal.windows.hamming)


@keras_op("numpy")
def hanning(x) -> torch.Tensor:
    return _window(x, torch.signal.windows.hann)


@keras_op("numpy")
def kaiser(x, beta) -> torch.Tensor:
    return _window(x, torch.signal.windows.kaiser, beta=float(beta))
