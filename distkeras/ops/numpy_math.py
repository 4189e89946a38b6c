"""Elementwise math, comparisons, logic and bit ops of ``keras.ops.numpy`` on torch tensors.

Inputs are converted as Keras's torch backend converts them (:mod:`distkeras.ops.dtypes`), and
each op returns the dtype Keras returns: float functions of integer or bool input give floatx,
binary ops follow torch's promotion of the converted inputs (which Keras's torch backend
inherits), and the ops Keras promotes explicitly (``arctan2``, ``hypot``, ``maximum``, ...) use
:func:`~distkeras.ops.dtypes.result_type`. Python scalars meet tensors on the tensors' device.
"""

from __future__ import annotations

import types

import numpy as np
import torch

from distkeras import backend
from distkeras.ops.dispatch import keras_op
from distkeras.ops.dtypes import (
    INT_TYPES,
    cast,
    convert_all,
    convert_to_tensor,
    result_type,
    standardize_dtype,
)

__all__: list[str] = []

# What every op accepts: tensors, numpy arrays, Python numbers and (nested) lists of them.
ArrayLike = torch.Tensor | np.ndarray | float | int | bool | list

_INT_OR_BOOL = INT_TYPES + ("bool",)


def _export(name: str, fn, doc: str):
    """Publishes ``fn`` as the op ``name`` of ``keras.ops.numpy`` (a copy per name, so that
    aliases such as ``abs``/``absolute`` keep their own names)."""
    fn = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    fn.__qualname__ = name
    fn.__doc__ = doc
    fn.__module__ = __name__
    op = keras_op("numpy", name)(fn)
    globals()[name] = op
    __all__.append(name)
    return op


def _name(x: torch.Tensor) -> str:
    return standardize_dtype(x.dtype)


def _floatx_if_int(x: torch.Tensor) -> torch.Tensor:
    """Integer and bool inputs of float functions compute (and return) in floatx."""
    if x.dtype.is_floating_point or x.dtype.is_complex:
        return x
    return x.to(backend.standardize_dtype(backend.floatx()))


def _on_cpu(x: torch.Tensor) -> bool:
    return x.device.type == "cpu"


def _float_unary(name: str, fn, doc: str) -> None:
    def op(x: ArrayLike) -> torch.Tensor:
        return fn(_floatx_if_int(convert_to_tensor(x)))

    _export(name, op, doc)


def _plain_unary(name: str, fn, doc: str) -> None:
    def op(x: ArrayLike) -> torch.Tensor:
        return fn(convert_to_tensor(x))

    _export(name, op, doc)


def _plain_binary(name: str, fn, doc: str, arg_names=("x1", "x2")) -> None:
    if arg_names == ("x1", "x2"):

        def op(x1: ArrayLike, x2: ArrayLike) -> torch.Tensor:
            return fn(*convert_all(x1, x2))
    else:

        def op(x: ArrayLike, y: ArrayLike) -> torch.Tensor:
            return fn(*convert_all(x, y))

    _export(name, op, doc)


for _n, _fn in {
    "arccos": torch.arccos,
    "arccosh": torch.arccosh,
    "arcsin": torch.arcsin,
    "arcsinh": torch.arcsinh,
    "arctan": torch.arctan,
    "arctanh": torch.arctanh,
    "cos": torch.cos,
    "cosh": torch.cosh,
    "sin": torch.sin,
    "sinh": torch.sinh,
    "tan": torch.tan,
    "tanh": torch.tanh,
    "exp": torch.exp,
    "exp2": torch.exp2,
    "expm1": torch.expm1,
    "log": torch.log,
    "log10": torch.log10,
    "log1p": torch.log1p,
    "log2": torch.log2,
    "sinc": torch.sinc,
    "reciprocal": torch.reciprocal,
}.items():
    _float_unary(_n, _fn, f"Elementwise ``{_n}``; integer and bool inputs give floatx.")

for _n, _fn in {
    "isfinite": torch.isfinite,
    "isinf": torch.isinf,
    "isnan": torch.isnan,
    "isneginf": torch.isneginf,
    "isposinf": torch.isposinf,
    "isreal": torch.isreal,
    "signbit": torch.signbit,
    "logical_not": torch.logical_not,
}.items():
    _plain_unary(_n, _fn, f"Elementwise ``{_n}``, as a bool tensor.")


def _angle(x: ArrayLike) -> torch.Tensor:
    x = _floatx_if_int(convert_to_tensor(x))
    if x.dtype == torch.float16 and not _on_cpu(x):  # no float16 angle kernel on GPUs
        return torch.angle(x.to(torch.float32)).to(torch.float16)
    return torch.angle(x)


_export("angle", _angle, "The argument of complex numbers (0 or pi for reals), elementwise.")
_plain_unary("sign", torch.sign, "Elementwise sign (-1, 0 or 1), in the input's dtype.")
_plain_unary("negative", torch.negative, "Elementwise ``-x``.")
_plain_unary("real", torch.real, "The real part of a (complex) tensor.")
_plain_unary("imag", torch.imag, "The imaginary part of a complex tensor.")
for _n in ("conj", "conjugate"):
    _plain_unary(_n, lambda x: torch.conj(x).resolve_conj(), "The complex conjugate, elementwise.")
for _n in ("bitwise_invert", "bitwise_not"):
    _plain_unary(_n, torch.bitwise_not, "Bitwise NOT of integers (logical NOT of bools).")

for _n, _fn in {
    "add": torch.add,
    "multiply": torch.multiply,
    "power": torch.pow,
    "equal": torch.eq,
    "not_equal": torch.not_equal,
    "greater": torch.greater,
    "greater_equal": torch.greater_equal,
    "less": torch.less,
    "less_equal": torch.less_equal,
    "logical_and": torch.logical_and,
    "logical_or": torch.logical_or,
    "logical_xor": torch.logical_xor,
    "gcd": torch.gcd,
    "lcm": torch.lcm,
}.items():
    _plain_binary(_n, _fn, f"Elementwise ``{_n}`` with broadcasting.")

for _n, _fn in {
    "bitwise_and": torch.bitwise_and,
    "bitwise_or": torch.bitwise_or,
    "bitwise_xor": torch.bitwise_xor,
}.items():
    _plain_binary(_n, _fn, f"Elementwise ``{_n}`` of integers or bools.", ("x", "y"))


def _shift(fn):
    def op(x: ArrayLike, y: ArrayLike) -> torch.Tensor:
        x = convert_to_tensor(x)
        # A Python int shift stays a Python int: torch treats it as weak, as Keras does.
        return fn(x, y if isinstance(y, int) else convert_to_tensor(y, device=x.device))

    return op


for _n in ("bitwise_left_shift", "left_shift"):
    _export(_n, _shift(torch.bitwise_left_shift), "Shifts the bits of ``x`` left by ``y``.")
for _n in ("bitwise_right_shift", "right_shift"):
    _export(_n, _shift(torch.bitwise_right_shift), "Shifts the bits of ``x`` right by ``y``.")


def _absolute(x: ArrayLike) -> torch.Tensor:
    x = convert_to_tensor(x)
    return x if x.dtype == torch.bool else torch.abs(x)


for _n in ("abs", "absolute"):
    _export(_n, _absolute, "Elementwise absolute value, in the input's dtype.")


def _fabs(x: ArrayLike) -> torch.Tensor:
    x = convert_to_tensor(x)
    if x.dtype.is_complex:
        raise TypeError(f"fabs does not support complex inputs. Received: x.dtype={x.dtype}")
    return torch.abs(_floatx_if_int(x))


_export("fabs", _fabs, "Elementwise absolute value as a float (floatx for integer input).")


def _subtract(x1: ArrayLike, x2: ArrayLike) -> torch.Tensor:
    x1, x2 = convert_all(x1, x2)
    # torch refuses bool subtraction; a bool side takes the other side's dtype, as in Keras.
    if x1.dtype == torch.bool:
        x1 = x1.to(x2.dtype)
    if x2.dtype == torch.bool:
        x2 = x2.to(x1.dtype)
    return torch.subtract(x1, x2)


_export("subtract", _subtract, "Elementwise ``x1 - x2``.")


def _scalar_or_tensor(x, device=None):
    """Python numbers stay Python numbers (weak in torch and in Keras's promotion)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return x
    return convert_to_tensor(x, device=device)


def _weak_pair(x1, x2):
    device = next((x.device for x in (x1, x2) if isinstance(x, torch.Tensor)), None)
    x1, x2 = _scalar_or_tensor(x1, device), _scalar_or_tensor(x2, device)
    if not isinstance(x1, torch.Tensor) and not isinstance(x2, torch.Tensor):
        x1 = convert_to_tensor(x1)
    dtype = result_type(getattr(x1, "dtype", type(x1)), getattr(x2, "dtype", type(x2)))
    return x1, x2, dtype


def _divide(x1: ArrayLike, x2: ArrayLike) -> torch.Tensor:
    x1, x2, _ = _weak_pair(x1, x2)
    return torch.divide(x1, x2)


for _n in ("divide", "true_divide"):
    _export(_n, _divide, "Elementwise true division; integer inputs give a float result.")


def _floor_divide(x1: ArrayLike, x2: ArrayLike) -> torch.Tensor:
    x1, x2, dtype = _weak_pair(x1, x2)
    return cast(torch.floor_divide(x1, x2), dtype)


_export("floor_divide", _floor_divide, "Elementwise ``x1 // x2``, in the promoted dtype.")


def _divide_no_nan(x1: ArrayLike, x2: ArrayLike) -> torch.Tensor:
    x1, x2, dtype = _weak_pair(x1, x2)
    dtype = result_type(dtype, float)
    x1, x2 = convert_all(x1, x2, dtype=dtype)
    zero = x2 == 0
    quotient = torch.divide(x1, torch.where(zero, torch.ones_like(x2), x2))
    return torch.where(zero, torch.zeros_like(quotient), quotient)


_export("divide_no_nan", _divide_no_nan, "``x1 / x2``, and 0 wherever ``x2`` is 0.")


def _extremum(fn):
    def op(x1: ArrayLike, x2: ArrayLike) -> torch.Tensor:
        x1, x2, dtype = _weak_pair(x1, x2)
        x1, x2 = convert_all(x1, x2, dtype=dtype)
        return fn(x1, x2)

    return op


_export("maximum", _extremum(torch.maximum), "Elementwise maximum (NaN wins).")
_export("minimum", _extremum(torch.minimum), "Elementwise minimum (NaN wins).")
_export("fmax", _extremum(torch.fmax), "Elementwise maximum, ignoring NaNs.")
_export("fmin", _extremum(torch.fmin), "Elementwise minimum, ignoring NaNs.")


def _remainder(fn):
    def op(x1: ArrayLike, x2: ArrayLike) -> torch.Tensor:
        x1, x2 = convert_all(x1, x2)
        if result_type(x1.dtype, x2.dtype) == "bool":
            x1, x2 = x1.to(torch.int32), x2.to(torch.int32)
        return fn(x1, x2)

    return op


_export("mod", _remainder(torch.remainder), "Elementwise remainder with the sign of ``x2``.")
_export("fmod", _remainder(torch.fmod), "Elementwise remainder with the sign of ``x1``.")


def _promoted_float(fn, *, float16_via_float32: bool = False):
    """Binary float ops Keras computes in ``result_type(x1, x2, float)``."""

    def op(x1: ArrayLike, x2: ArrayLike) -> torch.Tensor:
        x1, x2 = convert_all(x1, x2)
        dtype = result_type(x1.dtype, x2.dtype, float)
        compute = dtype
        if float16_via_float32 and dtype == "float16" and _on_cpu(x1):
            compute = "float32"  # torch has no float16 kernel for these on CPU
        return cast(fn(cast(x1, compute), cast(x2, compute)), dtype)

    return op


_export("arctan2", _promoted_float(torch.arctan2, float16_via_float32=True), "atan2(x1, x2).")
_export(
    "logaddexp",
    _promoted_float(torch.logaddexp, float16_via_float32=True),
    "``log(exp(x1) + exp(x2))``, computed stably.",
)
_export("logaddexp2", _promoted_float(torch.logaddexp2), "``log2(2**x1 + 2**x2)``, stably.")


def _int_to_float(fn):
    """heaviside and hypot: integer results of the promotion become floats."""

    def op(x1: ArrayLike, x2: ArrayLike) -> torch.Tensor:
        x1, x2 = convert_all(x1, x2)
        dtype = result_type(x1.dtype, x2.dtype)
        if dtype == "int64":
            dtype = "float64"
        elif dtype in INT_TYPES:
            dtype = backend.floatx()
        return fn(cast(x1, dtype), cast(x2, dtype))

    return op


_export("heaviside", _int_to_float(torch.heaviside), "Heaviside step: 0, ``x2`` at 0, or 1.")
_export("hypot", _int_to_float(torch.hypot), "``sqrt(x1**2 + x2**2)``, elementwise.")


def _nextafter(x1: ArrayLike, x2: ArrayLike) -> torch.Tensor:
    x1, x2 = convert_all(x1, x2)
    dtype = result_type(x1.dtype, x2.dtype, float)
    # In float64 as Keras does: the step is then float64's, cast back to the result dtype.
    return cast(torch.nextafter(x1.to(torch.float64), x2.to(torch.float64)), dtype)


_export("nextafter", _nextafter, "The next float after ``x1`` towards ``x2``.")


def _ldexp(x1: ArrayLike, x2: ArrayLike) -> torch.Tensor:
    x1, x2 = convert_all(x1, x2)
    dtype = result_type(x1.dtype, x2.dtype, float)
    if _name(x2) not in INT_TYPES:
        raise TypeError(f"ldexp exponent must be an integer type. Received: x2 dtype={x2.dtype}")
    # torch.ldexp writes into a tensor shaped like x1, so x1 takes the broadcast shape first.
    x1 = x1.expand(torch.broadcast_shapes(x1.shape, x2.shape))
    return cast(torch.ldexp(x1, x2), dtype)


_export("ldexp", _ldexp, "``x1 * 2**x2`` for an integer ``x2``.")


def _cbrt(x: ArrayLike) -> torch.Tensor:
    x = convert_to_tensor(x)
    if x.dtype == torch.bool:
        x = x.to(torch.int32)
    elif x.dtype == torch.int64:
        x = x.to(torch.float64)
    # torch has no cbrt: the real cube root keeps the sign.
    return torch.sign(x) * torch.abs(x) ** (1.0 / 3.0)


_export("cbrt", _cbrt, "The real cube root, elementwise.")


def _rounding(fn):
    """ceil and floor: a float result, in ``result_type(x, float)`` (floatx for int64)."""

    def op(x: ArrayLike) -> torch.Tensor:
        x = convert_to_tensor(x)
        name = _name(x)
        dtype = backend.floatx() if name == "int64" else result_type(name, float)
        if name == "float16" and _on_cpu(x):
            return cast(fn(x.to(torch.float32)), dtype)
        return fn(cast(x, dtype))

    return op


_export("ceil", _rounding(torch.ceil), "The ceiling, elementwise, as a float.")
_export("floor", _rounding(torch.floor), "The floor, elementwise, as a float.")


def _round(x: ArrayLike, decimals: int = 0) -> torch.Tensor:
    x = convert_to_tensor(x)
    if _name(x) in INT_TYPES:  # torch rounds floats only; ints come back in their dtype
        return torch.round(x.to(backend.standardize_dtype(None)), decimals=decimals).to(x.dtype)
    return torch.round(x, decimals=decimals)


_export("round", _round, "Rounds half to even, to ``decimals`` decimal places.")


def _trunc(x: ArrayLike) -> torch.Tensor:
    x = convert_to_tensor(x)
    return x if x.dtype == torch.bool else torch.trunc(x)


_export("trunc", _trunc, "Rounds towards zero, elementwise, in the input's dtype.")


def _clip(x: ArrayLike, x_min: ArrayLike, x_max: ArrayLike) -> torch.Tensor:
    x, x_min, x_max = convert_all(x, x_min, x_max)
    if x.dtype == torch.float16 and _on_cpu(x):
        return torch.clip(x.to(torch.float32), min=x_min, max=x_max).to(torch.float16)
    if x.dtype == torch.bool:
        x = x.to(torch.int32)
    return torch.clip(x, min=x_min, max=x_max)


_export("clip", _clip, "Limits values to ``[x_min, x_max]``.")


def _angle_units(fn):
    def op(x: ArrayLike) -> torch.Tensor:
        x = convert_to_tensor(x)
        if x.dtype == torch.int64:  # Keras gives int64 input a float64 result
            return fn(x.to(torch.float64))
        return fn(_floatx_if_int(x))

    return op


_export("deg2rad", _angle_units(torch.deg2rad), "Degrees to radians, elementwise.")
_export("rad2deg", _angle_units(torch.rad2deg), "Radians to degrees, elementwise.")


def _square(x: ArrayLike) -> torch.Tensor:
    x = convert_to_tensor(x)
    return torch.square(x.to(torch.int32) if x.dtype == torch.bool else x)


_export("square", _square, "Elementwise ``x * x`` (bool input gives int32).")


def _sqrt(x: ArrayLike) -> torch.Tensor:
    x = convert_to_tensor(x)
    return torch.sqrt(_floatx_if_int(x))


_export("sqrt", _sqrt, "Elementwise square root; integer input gives floatx.")


def _i0(x: ArrayLike) -> torch.Tensor:
    x = convert_to_tensor(x)
    name = _name(x)
    if name in ("int64", "float64"):
        dtype = "float64"
    elif name in ("bfloat16", "float16"):
        dtype = name
    else:
        dtype = backend.floatx()
    return torch.i0(cast(x, dtype))


_export("i0", _i0, "The modified Bessel function of the first kind, order 0.")


def _nan_to_num(
    x: ArrayLike, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
) -> torch.Tensor:
    return torch.nan_to_num(convert_to_tensor(x), nan=nan, posinf=posinf, neginf=neginf)


_export("nan_to_num", _nan_to_num, "Replaces NaN by ``nan`` and infinities by finite values.")


def _closeness(x1, x2, rtol, atol, equal_nan):
    x1, x2 = convert_all(x1, x2)
    dtype = result_type(x1.dtype, x2.dtype)
    x1, x2 = cast(x1, dtype), cast(x2, dtype)
    if "float" in dtype:
        return torch.isclose(x1, x2, rtol=rtol, atol=atol, equal_nan=equal_nan)
    return torch.eq(x1, x2)  # integers: exact comparison, as Keras does


def _isclose(
    x1: ArrayLike, x2: ArrayLike, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False
) -> torch.Tensor:
    return _closeness(x1, x2, rtol, atol, equal_nan)


def _allclose(
    x1: ArrayLike, x2: ArrayLike, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False
) -> torch.Tensor:
    return torch.all(_closeness(x1, x2, rtol, atol, equal_nan))


_export("isclose", _isclose, "Elementwise ``|x1 - x2| <= atol + rtol * |x2|``.")
_export("allclose", _allclose, "Whether every element of ``x1`` is close to ``x2``.")

del _n, _fn
