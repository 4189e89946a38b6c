"""Keras's dtype rules: our promotion and conversion against Keras 3 itself, over all pairs."""

import itertools

import numpy as np
import pytest
import torch

from distkeras import backend
from distkeras.ops import dtypes
from tests.ops.keras_reference import assert_same, import_keras

keras = import_keras()
# Keras's torch backend warns about its own deprecated torch calls (``.T``, resized outputs).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras")
from keras.src.backend.common import dtypes as keras_dtypes  # noqa: E402

NAMES = [n for n in keras_dtypes.ALLOWED_DTYPES if n != "string"]
ITEMS = NAMES + [int, float, bool, None]


@pytest.fixture(params=["float32", "float16", "bfloat16", "float64"])
def floatx(request):
    keras.config.set_floatx(request.param)
    backend.set_floatx(request.param)
    yield request.param
    keras.config.set_floatx("float32")
    backend.set_floatx("float32")


def _outcome(fn, *args):
    try:
        return fn(*args)
    except ValueError:
        return "ValueError"


@pytest.mark.parametrize("arity", [0, 1, 2])
def test_result_type_matches_keras_for_all_pairs(floatx, arity):
    for combo in itertools.product(ITEMS, repeat=arity):
        theirs = _outcome(keras.backend.result_type, *combo)
        assert _outcome(dtypes.result_type, *combo) == theirs, combo


def test_result_type_matches_keras_for_triples():
    rng = np.random.default_rng(0)
    combos = list(itertools.product(ITEMS, repeat=3))
    for i in rng.choice(len(combos), 2000, replace=False):
        combo = combos[i]
        theirs = _outcome(keras.backend.result_type, *combo)
        assert _outcome(dtypes.result_type, *combo) == theirs, combo


@pytest.mark.parametrize(
    "dtype",
    NAMES
    + [int, float, bool, "int"]
    + [getattr(torch, n) for n in NAMES if hasattr(torch, n)]
    + [np.dtype(n) for n in ("float32", "int8", "uint16", "bool", "float64", "complex64")]
    + [np.float32, np.int64],
)
def test_standardize_dtype_matches_keras(dtype):
    assert dtypes.standardize_dtype(dtype) == keras.backend.standardize_dtype(dtype)


def test_standardize_dtype_rejects_unknown():
    with pytest.raises(ValueError, match="Invalid dtype"):
        dtypes.standardize_dtype("float128x")


INPUTS = [
    1.5,
    3,
    2**40,
    True,
    1 + 2j,
    [1, 2],
    [1.0, 2],
    [True, False],
    [[1, 2], [3, 4]],
    (np.float64(1.0), 2),
    np.ones(3),
    np.ones(3, "float16"),
    np.ones(3, "int64"),
    np.ones(3, "uint8"),
    np.ones(3, "uint32"),
    np.ones(3, "bool"),
    np.float64(2.0),
    np.int16(2),
]


@pytest.mark.parametrize("value", INPUTS, ids=lambda v: type(v).__name__ + repr(v)[:20])
@pytest.mark.parametrize("dtype", [None, "float32", "int32"])
def test_convert_to_tensor_matches_keras(value, dtype):
    try:
        theirs = keras.ops.convert_to_tensor(value, dtype=dtype)
    except (TypeError, RuntimeError) as error:  # e.g. 2**40 as int32: we must refuse too
        with pytest.raises(type(error)):
            dtypes.convert_to_tensor(value, dtype=dtype)
        return
    ours = dtypes.convert_to_tensor(value, dtype=dtype)
    assert isinstance(ours, torch.Tensor)
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours.cpu(), theirs.cpu())


def test_convert_to_tensor_keeps_tensors():
    t = torch.arange(3)
    assert dtypes.convert_to_tensor(t) is t
    assert dtypes.convert_to_tensor(t, "float32").dtype == torch.float32
    a, b = dtypes.convert_all(t, 2.0)
    assert a is t and b.device == t.device and b.dtype == torch.float32


def test_python_float_follows_floatx(floatx):
    assert dtypes.convert_to_tensor(1.0).dtype == keras.ops.convert_to_tensor(1.0).dtype


def test_backend_result_type_is_keras_promotion():
    from distkeras import backend as ours

    for combo in [("int32", "float16"), ("bfloat16", int), (int, float), ("uint8", "int8")]:
        assert ours.result_type(*combo) == keras.backend.result_type(*combo)


# Output dtypes of ops over every pair of input dtypes (torch tensors, so bfloat16 is in) and
# Python scalars: the promotion each op applies must be Keras's, values at float16 precision.
PAIR_DTYPES = "bool uint8 int8 int16 int32 int64 float16 bfloat16 float32 float64".split()  # noqa: SIM905
BINARY_OPS = """add subtract multiply divide true_divide floor_divide mod fmod maximum minimum fmax
fmin power equal not_equal greater less logical_and logical_xor bitwise_and bitwise_or
bitwise_xor left_shift right_shift arctan2 hypot logaddexp logaddexp2 heaviside nextafter ldexp
gcd lcm divide_no_nan isclose allclose""".split()  # noqa: SIM905
UNARY_OPS = """abs negative sign square sqrt exp sin log ceil floor round trunc fabs cbrt deg2rad
i0 reciprocal isnan signbit logical_not bitwise_not sum mean prod max argmax cumsum cumprod var
std median nansum nanmean count_nonzero all""".split()  # noqa: SIM905


def _pair_values():
    base = torch.rand(6, generator=torch.Generator().manual_seed(0)) * 4 + 0.5
    tensors = [base > 2.5 if d == "bool" else base.to(getattr(torch, d)) for d in PAIR_DTYPES]
    return tensors + [2, 1.5, True]


def _same_outcome(fn_ours, fn_theirs, args):
    """Both raise, or both give the same values, shape and dtype; a message if not."""
    label = [str(getattr(a, "dtype", type(a).__name__)) for a in args]
    try:
        theirs = fn_theirs(*args)
    except Exception:
        try:
            fn_ours(*args)
        except Exception:
            return None
        return f"{label}: Keras raises, we do not"
    try:
        assert_same(fn_ours(*args), theirs, atol=1e-2, rtol=1e-2)
    except Exception as error:
        return f"{label}: {str(error).splitlines()[0][:100]}"
    return None


@pytest.mark.parametrize("name", BINARY_OPS)
def test_binary_op_dtypes_match_keras_for_all_pairs(name):
    import distkeras.ops

    values = _pair_values()
    ours, theirs = getattr(distkeras.ops, name), getattr(keras.ops, name)
    failures = []
    for a, b in itertools.product(values, repeat=2):
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            failures.append(_same_outcome(ours, theirs, (a, b)))
    failures = [f for f in failures if f]
    assert not failures, failures[:10]


@pytest.mark.parametrize("name", UNARY_OPS)
def test_unary_op_dtypes_match_keras_for_all_dtypes(name):
    import distkeras.ops

    ours, theirs = getattr(distkeras.ops, name), getattr(keras.ops, name)
    failures = [_same_outcome(ours, theirs, (x,)) for x in _pair_values()[: len(PAIR_DTYPES)]]
    failures = [f for f in failures if f]
    assert not failures, failures
