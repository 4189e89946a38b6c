"""Calls of the elementwise, comparison, logic and bit ops of ``keras.ops.numpy`` to compare
with Keras: float32, int32, bool and mixed inputs, numpy arrays and Python scalars."""

import numpy as np

from tests.ops.keras_reference import Case

_rng = np.random.default_rng(7)
SHAPE = (3, 4)

F32 = _rng.uniform(-2, 2, SHAPE).astype("float32")
F32_B = _rng.uniform(-2, 2, SHAPE).astype("float32")
F32_ROW = _rng.uniform(-2, 2, (4,)).astype("float32")  # broadcasts against SHAPE
POS = _rng.uniform(0.1, 3, SHAPE).astype("float32")
UNIT = _rng.uniform(-0.9, 0.9, SHAPE).astype("float32")
ABOVE_ONE = _rng.uniform(1.1, 4, SHAPE).astype("float32")
F64 = _rng.uniform(-2, 2, SHAPE)
F16 = _rng.uniform(-2, 2, SHAPE).astype("float16")
I32 = _rng.integers(-5, 6, SHAPE).astype("int32")
I32_B = _rng.integers(-5, 6, SHAPE).astype("int32")
I32_POS = _rng.integers(1, 9, SHAPE).astype("int32")
I32_SMALL = _rng.integers(0, 4, SHAPE).astype("int32")
I64 = _rng.integers(-5, 6, SHAPE).astype("int64")
U8 = _rng.integers(0, 9, SHAPE).astype("uint8")
I8 = _rng.integers(-5, 6, SHAPE).astype("int8")
BOOL = _rng.random(SHAPE) > 0.5
BOOL_B = _rng.random(SHAPE) > 0.5
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5, 3e38], "float32")
HALVES = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6, 12.345], "float32")
COMPLEX = (F32 + 1j * F32_B).astype("complex64")

CASES: list[Case] = []


def _add(name, *args, label="", atol=1e-5, **kwargs):
    CASES.append(Case(name, args, kwargs, module="numpy", atol=atol, label=label))


# Float functions: float32 in their domain, int32, bool, and other float widths.
_DOMAIN = {
    "arccos": UNIT,
    "arcsin": UNIT,
    "arctanh": UNIT,
    "arccosh": ABOVE_ONE,
    "log": POS,
    "log10": POS,
    "log1p": POS,
    "log2": POS,
    "sqrt": POS,
}
_FLOAT_UNARY = [
    "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh", "cos", "cosh", "sin", "sinh",
    "tan", "tanh", "exp", "exp2", "expm1", "log", "log10", "log1p", "log2", "sinc", "sqrt",
    "reciprocal", "fabs", "cbrt", "deg2rad", "rad2deg", "i0", "ceil", "floor",
]  # fmt: skip
for _name in _FLOAT_UNARY:
    _x = _DOMAIN.get(_name, F32)
    _add(_name, _x, label="f32")
    _ints = I32_POS if _name in _DOMAIN else I32
    if _name != "arccosh" and _name not in ("arccos", "arcsin", "arctanh"):
        _add(_name, _ints, label="i32")
        _add(_name, BOOL, label="bool")
    _add(_name, _x.astype("float64"), label="f64")
for _name in ("exp", "sin", "ceil", "floor", "sqrt", "cbrt", "deg2rad", "i0", "fabs"):
    _add(_name, np.abs(I64) + 1, label="i64")
for _name in ("exp", "tanh", "ceil", "floor", "reciprocal"):
    _add(_name, F16, label="f16", atol=1e-2)
_add("exp", 1.5, label="py_float")
_add("sin", 2, label="py_int")

# Elementwise, dtype-keeping or dtype-specific unary ops.
for _name in ("abs", "absolute", "negative", "sign", "square", "trunc", "round"):
    _add(_name, F32, label="f32")
    _add(_name, I32, label="i32")
for _name in ("abs", "absolute", "sign", "square", "trunc"):
    _add(_name, BOOL, label="bool")
_add("round", HALVES, label="half_even")
_add("round", HALVES, decimals=1, label="decimals")
_add("round", I32 * 17, decimals=-1, label="int_negative_decimals")
_add("trunc", HALVES, label="halves")
_add("sign", SPECIAL[:-1], label="special")
_add("negative", 3.5, label="py_float")
for _name in ("angle", "real", "conj", "conjugate"):
    _add(_name, F32, label="f32")
    _add(_name, COMPLEX, label="complex")
_add("imag", COMPLEX, label="complex")
_add("angle", I32, label="i32")
for _name in ("isfinite", "isinf", "isnan", "isneginf", "isposinf", "isreal", "signbit"):
    _add(_name, SPECIAL, label="special")
    _add(_name, I32, label="i32")
_add("isreal", COMPLEX, label="complex")
_add("logical_not", BOOL, label="bool")
_add("logical_not", I32, label="i32")
_add("logical_not", F32, label="f32")
_add("nan_to_num", SPECIAL, label="defaults")
_add("nan_to_num", SPECIAL, nan=-1.0, posinf=9.0, neginf=-9.0, label="values")
_add("nan_to_num", I32, label="i32")
_add("clip", F32, -0.5, 0.5, label="f32")
_add("clip", I32, -2, 3, label="i32")
_add("clip", I32, -1.5, 2.5, label="i32_float_bounds")
_add("clip", BOOL, 0, 1, label="bool")
_add("clip", F16, -0.5, 0.5, label="f16", atol=1e-3)
_add("clip", F32, F32_ROW, 1.0, label="tensor_bound")

# Arithmetic with broadcasting, Python scalars and mixed dtypes.
_ARITH = ["add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "mod", "fmod",
          "maximum", "minimum", "fmax", "fmin", "power"]  # fmt: skip
for _name in _ARITH:
    _b = np.abs(F32_B) + 0.5 if _name in ("power", "mod", "fmod", "floor_divide") else F32_B
    _add(_name, F32 if _name != "power" else POS, _b, label="f32")
    _add(_name, F32, F32_ROW + 3.0, label="broadcast")
    _ib = I32_POS if _name in ("divide", "true_divide", "floor_divide", "mod", "fmod") else I32_B
    _add(_name, I32 if _name != "power" else I32_POS, _ib if _name != "power" else I32_SMALL,
         label="i32")  # fmt: skip
    _add(_name, I32, POS, label="i32_f32")
    _add(_name, F32 if _name != "power" else POS, 2, label="py_int")
    _add(_name, I32 if _name != "power" else I32_POS, 2.5, label="i32_py_float")
    _add(_name, 3, I32_POS, label="py_int_left")
    _add(_name, U8, I8 if _name not in ("power",) else I8 * 0 + 2, label="u8_i8")
    _add(_name, F16, F32, label="f16_f32", atol=1e-2)
    _add(_name, F16, 2.0, label="f16_py_float", atol=1e-2)
    _add(_name, F64, F32, label="f64_f32")
for _name in ("add", "multiply", "maximum", "minimum", "subtract", "mod"):
    _add(_name, BOOL, BOOL_B if _name not in ("subtract", "mod") else I32_POS, label="bool")
for _name in ("fmax", "fmin", "maximum", "minimum"):
    _add(_name, SPECIAL, HALVES, label="nan")
_add("divide", I32, 0, label="by_zero")
_add("divide_no_nan", F32, np.where(BOOL, 0.0, F32_B).astype("float32"), label="f32")
_add("divide_no_nan", I32, I32_SMALL, label="i32")
_add("divide_no_nan", F32, 0.0, label="py_zero")
_add("power", F32, 2.0, label="py_float")
_add("power", POS, F32, label="f32_exponent")

# Two-argument float functions.
for _name in ("arctan2", "hypot", "logaddexp", "logaddexp2", "heaviside", "nextafter"):
    _add(_name, F32, F32_B, label="f32")
    _add(_name, I32, I32_B, label="i32")
    _add(_name, F32, 1, label="py_int")
    _add(_name, F16, F16, label="f16", atol=1e-2)
    _add(_name, I32, F32, label="i32_f32")
_add("heaviside", np.array([-1.5, 0.0, 2.0], "float32"), 0.5, label="at_zero")
_add("ldexp", F32, I32_SMALL, label="f32")
_add("ldexp", I32, I32_SMALL, label="i32")
_add("ldexp", F32, 3, label="py_int")

# Comparisons, closeness and logic.
for _name in ("equal", "not_equal", "greater", "greater_equal", "less", "less_equal"):
    _add(_name, F32, F32_B, label="f32")
    _add(_name, I32, I32_B, label="i32")
    _add(_name, I32, 0.5, label="i32_py_float")
    _add(_name, F32, F32_ROW, label="broadcast")
    _add(_name, BOOL, BOOL_B, label="bool")
_CLOSE_B = (F32 + np.where(BOOL, 1e-6, 1e-2)).astype("float32")
for _name in ("isclose", "allclose"):
    _add(_name, F32, _CLOSE_B, label="f32")
    _add(_name, F32, _CLOSE_B, rtol=0.1, atol=0.1, label="tolerances")
    _add(_name, SPECIAL, SPECIAL, equal_nan=True, label="equal_nan")
    _add(_name, SPECIAL, SPECIAL, label="nan")
    _add(_name, I32, I32_B, label="i32")
    _add(_name, I32, I32, label="i32_same")
    _add(_name, F32, F32, label="f32_same")
for _name in ("logical_and", "logical_or", "logical_xor"):
    _add(_name, BOOL, BOOL_B, label="bool")
    _add(_name, I32, F32, label="i32_f32")
    _add(_name, BOOL, True, label="py_bool")

# Integer ops: bits, gcd/lcm.
for _name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
    _add(_name, I32, I32_B, label="i32")
    _add(_name, BOOL, BOOL_B, label="bool")
    _add(_name, U8, 6, label="u8_py_int")
    _add(_name, I8, I32, label="i8_i32")
for _name in ("bitwise_invert", "bitwise_not"):
    _add(_name, I32, label="i32")
    _add(_name, BOOL, label="bool")
    _add(_name, U8, label="u8")
for _name in ("bitwise_left_shift", "left_shift", "bitwise_right_shift", "right_shift"):
    _add(_name, I32_POS, I32_SMALL, label="i32")
    _add(_name, I32, 2, label="py_int")
    _add(_name, U8, 1, label="u8_py_int")
for _name in ("gcd", "lcm"):
    _add(_name, I32, I32_B, label="i32")
    _add(_name, I32_POS, 6, label="py_int")
