"""Every elementwise, comparison, logic, bit and reduction op of ``keras.ops.numpy`` against
Keras 3 itself on the same inputs: values at the case's tolerance (1e-5 by default), shapes and
dtypes. Where Keras's torch backend raises, we must raise too."""

import pytest

import distkeras.ops
from tests.ops import cases_numpy_math, cases_numpy_reduce
from tests.ops.keras_reference import assert_same, import_keras, keras_op, our_op

keras = import_keras()
# Keras's torch backend warns about its own deprecated torch calls (``.T``, resized outputs).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras")

MATH_NAMES = [
    "abs",
    "absolute",
    "add",
    "angle",
    "arccos",
    "arccosh",
    "arcsin",
    "arcsinh",
    "arctan",
    "arctan2",
    "arctanh",
    "bitwise_and",
    "bitwise_invert",
    "bitwise_left_shift",
    "bitwise_not",
    "bitwise_or",
    "bitwise_right_shift",
    "bitwise_xor",
    "cbrt",
    "ceil",
    "clip",
    "conj",
    "conjugate",
    "cos",
    "cosh",
    "deg2rad",
    "divide",
    "divide_no_nan",
    "equal",
    "exp",
    "exp2",
    "expm1",
    "fabs",
    "floor",
    "floor_divide",
    "fmax",
    "fmin",
    "fmod",
    "gcd",
    "greater",
    "greater_equal",
    "heaviside",
    "hypot",
    "i0",
    "imag",
    "isclose",
    "isfinite",
    "isinf",
    "isnan",
    "isneginf",
    "isposinf",
    "isreal",
    "lcm",
    "ldexp",
    "left_shift",
    "less",
    "less_equal",
    "log",
    "log10",
    "log1p",
    "log2",
    "logaddexp",
    "logaddexp2",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "maximum",
    "minimum",
    "mod",
    "multiply",
    "nan_to_num",
    "negative",
    "nextafter",
    "not_equal",
    "power",
    "rad2deg",
    "real",
    "reciprocal",
    "right_shift",
    "round",
    "sign",
    "signbit",
    "sin",
    "sinc",
    "sinh",
    "sqrt",
    "square",
    "subtract",
    "tan",
    "tanh",
    "true_divide",
    "trunc",
    "allclose",
]
REDUCE_NAMES = [
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

CASES = cases_numpy_math.CASES + cases_numpy_reduce.CASES

# Cases where Keras's torch backend departs from numpy and we follow numpy on purpose: the
# reference is numpy itself (each is listed in the README's compatibility notes).
NUMPY_REFERENCE = cases_numpy_reduce.NUMPY_REFERENCE


def _call(fn, case):
    return fn(*case.args, **case.kwargs)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_matches_keras(case):
    if case.id in NUMPY_REFERENCE:
        theirs = NUMPY_REFERENCE[case.id](case, keras_op(case))
        assert_same(_call(our_op(case), case), theirs, atol=case.atol, rtol=case.atol)
        return
    try:
        theirs = _call(keras_op(case), case)
    except Exception as error:  # Keras refuses these inputs: so must we
        with pytest.raises(type(error)):
            _call(our_op(case), case)
        return
    assert_same(_call(our_op(case), case), theirs, atol=case.atol, rtol=case.atol)


def test_some_cases_compare_numbers():
    """Guards the sweep: nearly every case must be one Keras answers, not one it refuses."""
    refused = 0
    for case in CASES:
        try:
            _call(keras_op(case), case)
        except Exception:
            refused += 1
    assert refused < len(CASES) // 20, refused


@pytest.mark.parametrize("name", MATH_NAMES + REDUCE_NAMES)
def test_every_op_is_covered_and_exported(name):
    assert any(case.name == name for case in CASES), f"no case calls {name}"
    assert callable(getattr(distkeras.ops.numpy, name))
    assert getattr(distkeras.ops, name) is getattr(distkeras.ops.numpy, name)
    assert getattr(distkeras.ops.numpy, name).op_name == name


def test_signatures_match_keras():
    import inspect

    for name in MATH_NAMES + REDUCE_NAMES:
        ours = inspect.signature(getattr(distkeras.ops.numpy, name))
        theirs = inspect.signature(getattr(keras.ops.numpy, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        for param in theirs.parameters.values():
            assert ours.parameters[param.name].default == param.default, (name, param.name)


def test_ops_accept_torch_tensors():
    import torch

    x = torch.linspace(-1, 1, 6).reshape(2, 3)
    assert_same(distkeras.ops.add(x, 1), keras.ops.add(x, 1))
    assert_same(distkeras.ops.mean(x, axis=1), keras.ops.mean(x, axis=1))
    assert distkeras.ops.add(x, 1).device == x.device


FLOAT_OF_INT = ["arcsinh", "cos", "exp", "log1p", "sin", "sqrt", "tanh", "reciprocal", "deg2rad"]


@pytest.mark.parametrize("floatx", ["float16", "float64"])
def test_float_ops_of_integers_give_floatx(floatx):
    """Keras's rule (its JAX/TF/numpy backends): float functions of integer input return
    floatx. Keras's torch backend returns torch's default float32 for most of them instead;
    we follow the rule, and the values are Keras's."""
    import numpy as np

    from distkeras import backend

    x = np.arange(1, 7, dtype="int32").reshape(2, 3)
    backend.set_floatx(floatx)
    try:
        for name in FLOAT_OF_INT:
            ours = getattr(distkeras.ops, name)(x)
            assert str(ours.dtype) == f"torch.{floatx}", name
            theirs = getattr(keras.ops, name)(x)  # Keras at floatx float32
            tol = 1e-2 if floatx == "float16" else 1e-5
            assert_same(ours, theirs, atol=tol, rtol=tol, check_dtype=False)
    finally:
        backend.set_floatx("float32")
