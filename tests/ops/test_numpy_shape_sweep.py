"""The shape, indexing, creation, window, product and sorting ops of ``keras.ops.numpy``
against Keras 3 (torch backend) on the same inputs: values, shapes and dtypes at 1e-5.

Where distkeras deliberately follows numpy instead of Keras's torch backend (documented in
each cases file's ``NUMPY_REFERENCE``), numpy itself is the reference.
"""

import numpy as np
import pytest
import torch

from tests.ops import cases_numpy_create, cases_numpy_linear, cases_numpy_shape
from tests.ops.keras_reference import assert_same, import_keras, keras_op, our_op, to_numpy

MODULES = (cases_numpy_shape, cases_numpy_create, cases_numpy_linear)
CASES = [case for module in MODULES for case in module.CASES]
NUMPY_REFERENCE = {k: v for module in MODULES for k, v in module.NUMPY_REFERENCE.items()}
VECTORIZE_ARGS = cases_numpy_linear.VECTORIZE_ARGS

SHAPE_NAMES = """append array_split broadcast_to concatenate diag diagflat diagonal diff dsplit
dstack expand_dims flip fliplr flipud get_item hsplit hstack moveaxis ndim nonzero pad ravel
repeat reshape roll rot90 select size split squeeze stack swapaxes take take_along_axis tile
trace transpose tril triu unravel_index vsplit vstack where view isin meshgrid""".split()  # noqa: SIM905
CREATE_NAMES = """arange array copy empty empty_like eye full full_like geomspace identity
linspace logspace ones ones_like tri zeros zeros_like vander bartlett blackman hamming hanning
kaiser""".split()  # noqa: SIM905
LINEAR_NAMES = """argpartition argsort correlate cross dot einsum inner kron matmul outer
searchsorted slogdet sort tensordot trapezoid unique vdot vectorize""".split()  # noqa: SIM905
NAMES = SHAPE_NAMES + CREATE_NAMES + LINEAR_NAMES

# Uninitialised memory: only shape and dtype can agree.
SHAPE_AND_DTYPE_ONLY = {"empty", "empty_like"}
# Keras's torch backend calls tensor methods on these inputs (numpy arrays fail there).
TENSOR_ONLY = {"searchsorted", "unique"}


def _args(case):
    if case.name in TENSOR_ONLY:
        return tuple(torch.as_tensor(a) if isinstance(a, np.ndarray) else a for a in case.args)
    return case.args


def _check(ours, theirs, case):
    if case.name in SHAPE_AND_DTYPE_ONLY or "empty" in case.label:
        ours, theirs = to_numpy(ours), to_numpy(theirs)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    elif isinstance(theirs, (int, float)) and not isinstance(theirs, bool):
        assert type(ours) is type(theirs) and ours == pytest.approx(theirs, rel=1e-6)
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) in (list, tuple) and len(ours) == len(theirs), (ours, theirs)
        for a, b in zip(ours, theirs):
            _check(a, b, case)
    else:
        assert_same(ours, theirs, atol=case.atol)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_keras(case):
    ours = our_op(case)(*_args(case), **case.kwargs)
    if case.id in NUMPY_REFERENCE:
        theirs = NUMPY_REFERENCE[case.id](*case.args, **case.kwargs)
    else:
        theirs = keras_op(case)(*_args(case), **case.kwargs)
    if case.name == "vectorize":  # compare what the vectorized functions compute
        inputs = tuple(torch.as_tensor(a) if isinstance(a, np.ndarray) else a
                       for a in VECTORIZE_ARGS[case.id])  # fmt: skip
        ours, theirs = ours(*inputs), theirs(*inputs)
    _check(ours, theirs, case)


def _as_torch(value):
    if isinstance(value, np.ndarray):
        return torch.as_tensor(value)
    if isinstance(value, (list, tuple)) and any(isinstance(v, np.ndarray) for v in value):
        return type(value)(_as_torch(v) for v in value)
    return value


# One case per op, with every array argument (also inside lists) given as a torch tensor.
TENSOR_CASES = list(
    {c.name: c for c in reversed(CASES) if c.id not in NUMPY_REFERENCE and c.args}.values()
)


@pytest.mark.parametrize("case", TENSOR_CASES, ids=lambda c: c.id)
def test_torch_tensor_inputs_match_keras(case):
    args = tuple(_as_torch(a) for a in case.args)
    ours = our_op(case)(*args, **case.kwargs)
    theirs = keras_op(case)(*args, **case.kwargs)
    if case.name == "vectorize":
        inputs = tuple(_as_torch(a) for a in VECTORIZE_ARGS[case.id])
        ours, theirs = ours(*inputs), theirs(*inputs)
    _check(ours, theirs, case)


def test_every_name_has_a_case_and_is_exported():
    import distkeras.ops
    import distkeras.ops.numpy

    keras = import_keras()
    covered = {case.name for case in CASES}
    assert sorted(set(NAMES) - covered) == []
    for name in NAMES:
        assert hasattr(keras.ops.numpy, name), name
        assert getattr(distkeras.ops.numpy, name) is getattr(distkeras.ops, name), name
        assert getattr(distkeras.ops, name).op_module == "numpy", name


def test_every_case_dtype_pair_is_swept():
    # Each op with array inputs is exercised on float32 and int32 data.
    labels = {}
    for case in CASES:
        labels.setdefault(case.name, set()).add(case.label.split("-")[0])
    with_dtypes = [n for n in NAMES if n not in NO_DTYPE_SWEEP]
    missing = [n for n in with_dtypes if not {"float32", "int32"} <= labels.get(n, set())]
    assert missing == []


# Ops whose inputs are shapes, lengths or Python values rather than float/int arrays.
NO_DTYPE_SWEEP = {
    "empty", "eye", "identity", "ones", "tri", "zeros", "bartlett", "blackman", "hamming",
    "hanning", "kaiser", "vectorize", "unravel_index", "slogdet", "full",
}  # fmt: skip


@pytest.mark.parametrize("kth, axis", [(0, -1), (2, -1), (4, -1), (1, 0), (5, None)])
def test_argpartition_partitions_float_data(kth, axis):
    # Keras's torch backend truncates float data to int32 before partitioning (wrong answers
    # for values within one integer); numpy's definition is the reference here.
    import distkeras.ops

    x = np.random.default_rng(kth).uniform(0, 1, size=(3, 5)).astype("float32")
    idx = distkeras.ops.argpartition(x, kth, axis=axis).numpy()
    assert idx.dtype == np.int32
    flat, ax = (x.reshape(-1), -1) if axis is None else (x, axis)
    parted = np.moveaxis(np.take_along_axis(flat, idx.astype(np.int64), axis=ax), ax, -1)
    expected = np.sort(np.moveaxis(flat, ax, -1), axis=-1)
    # The kth element is in its sorted place, smaller ones before it, larger ones after.
    np.testing.assert_array_equal(parted[..., kth], expected[..., kth])
    np.testing.assert_array_equal(np.sort(parted[..., :kth], axis=-1), expected[..., :kth])
    np.testing.assert_array_equal(np.sort(parted[..., kth:], axis=-1), expected[..., kth:])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda ops: ops.squeeze(np.ones((2, 1)), axis=0), "Cannot squeeze axis 0"),
        (lambda ops: ops.pad(np.ones(3), 1, mode="bogus"), "pad: mode must be one of"),
        (lambda ops: ops.pad(np.ones(3), -1), "cannot be negative"),
        (lambda ops: ops.pad(np.ones((2, 2)), ((1, 1), (1, 1), (1, 1))), "for each of the 2"),
        (lambda ops: ops.split(np.ones(5), 2), "not divisible"),
        (lambda ops: ops.array_split(np.ones(5), [2]), "must be of type `int`"),
        (lambda ops: ops.where(np.ones(2), np.ones(2)), "both should be `None`"),
        (lambda ops: ops.select([], []), "must not be empty"),
        (lambda ops: ops.take(np.ones(3), np.array([0.5])), "Indices must be integers"),
        (lambda ops: ops.diagonal(np.ones((2, 2)), axis1=1, axis2=-1), "cannot be the same"),
        (lambda ops: ops.eye(2.0), "must be an integer"),
        (lambda ops: ops.vander(np.ones((2, 2))), "1-dimensional"),
        (lambda ops: ops.searchsorted(np.ones((2, 2)), np.ones(2)), "1-D sorted"),
        (lambda ops: ops.cross(np.ones(4), np.ones(4)), "dimension must be 2 or 3"),
        (lambda ops: ops.vectorize(3), "callable"),
        (lambda ops: ops.einsum("i->i", np.ones(2), optimize="greedy"), "einsum: keyword"),
    ],
)
def test_clear_errors(call, message):
    import distkeras.ops

    with pytest.raises((ValueError, TypeError, NotImplementedError), match=message):
        call(distkeras.ops)


# ------------------------------------------------------------------ every dtype, torch inputs
ALL_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
              "float32", "float64"]  # fmt: skip


def _data(shape, dtype, seed):
    low, high = (0, 2) if dtype == "bool" else ((0, 4) if dtype == "uint8" else (-3, 4))
    values = np.random.default_rng(seed).integers(low, high, size=shape).astype("float32")
    return torch.as_tensor(values).to(getattr(torch, dtype))


def _sorted(shape, dtype, seed):
    return torch.sort(_data(shape, dtype, seed).float()).values.to(getattr(torch, dtype))


# op -> arguments for one dtype; small integral data so every dtype holds it exactly.
DTYPE_CALLS = {
    "trace": lambda d: (_data((3, 3), d, 0),),
    "matmul": lambda d: (_data((2, 3), d, 1), _data((3, 2), d, 2)),
    "dot": lambda d: (_data((2, 3), d, 3), _data((3,), d, 4)),
    "inner": lambda d: (_data((3,), d, 5), _data((3,), d, 6)),
    "vdot": lambda d: (_data((3,), d, 7), _data((3,), d, 8)),
    "tensordot": lambda d: (_data((2, 3), d, 9), _data((3, 2), d, 10), 1),
    "einsum": lambda d: ("ij,jk->ik", _data((2, 3), d, 11), _data((3, 2), d, 12)),
    "outer": lambda d: (_data((3,), d, 13), _data((2,), d, 14)),
    "kron": lambda d: (_data((2,), d, 15), _data((2,), d, 16)),
    "cross": lambda d: (_data((2, 3), d, 17), _data((2, 3), d, 18)),
    "correlate": lambda d: (_data((5,), d, 19), _data((3,), d, 20)),
    "trapezoid": lambda d: (_data((2, 4), d, 21),),
    "sort": lambda d: (_data((2, 4), d, 22),),
    "argsort": lambda d: (_sorted((5,), d, 23).flip(0),),
    "vander": lambda d: (_data((3,), d, 24),),
    "diff": lambda d: (_data((5,), d, 25),),
    "isin": lambda d: (_data((5,), d, 26), _data((2,), d, 27)),
    "searchsorted": lambda d: (_sorted((5,), d, 28), _data((3,), d, 29)),
    "unravel_index": lambda d: (_data((3,), d, 30).float().abs().to(getattr(torch, d)), (2, 3)),
    "take": lambda d: (_data((2, 3), d, 31), torch.tensor([0, 2])),
    "where": lambda d: (_data((3,), "bool", 32), _data((3,), d, 33), 1),
    "slogdet": lambda d: (_data((3, 3), d, 34),),
    "tril": lambda d: (_data((3, 3), d, 35),),
    "pad": lambda d: (_data((2, 3), d, 36), ((1, 1), (0, 2))),
    "full_like": lambda d: (_data((2,), d, 37), 1),
    "eye": lambda d: (3, None, 0, d),
    "arange": lambda d: (0, 4, 1, d),
    "linspace": lambda d: (0, 4, 5, True, False, d),
    "repeat": lambda d: (_data((2, 3), d, 38), 2, 1),
    "unique": lambda d: (_data((6,), d, 39),),
    "nonzero": lambda d: (_data((5,), d, 40),),
    "concatenate": lambda d: ([_data((2,), d, 41), _data((2,), "int32", 42)],),
    "stack": lambda d: ([_data((2,), d, 43), _data((2,), "float16", 44)],),
}
# Keras's torch backend raises for these (torch has no kernel); distkeras computes them.
KERAS_RAISES = {("einsum", "bool"), ("searchsorted", "bool"), ("linspace", "bool")} | {
    ("slogdet", d) for d in ALL_DTYPES if d not in ("float32", "float64")
}
# Both raise, as numpy does: a bool arange or cross product, non-integer flat indices.
KERAS_RAISES |= {("arange", "bool"), ("cross", "bool")} | {
    ("unravel_index", d) for d in ALL_DTYPES if d == "bool" or "float" in d
}
DTYPE_PAIRS = [
    (name, d) for name in DTYPE_CALLS for d in ALL_DTYPES if (name, d) not in KERAS_RAISES
]


@pytest.mark.parametrize("name, dtype", DTYPE_PAIRS, ids=[f"{n}-{d}" for n, d in DTYPE_PAIRS])
def test_output_dtypes_match_keras_for_every_input_dtype(name, dtype):
    import distkeras.ops

    keras = import_keras()
    args = DTYPE_CALLS[name](dtype)
    theirs = getattr(keras.ops, name)(*args)
    ours = getattr(distkeras.ops, name)(*args)
    tol = 1e-2 if dtype in ("float16", "bfloat16") else 1e-5
    assert_same(ours, theirs, atol=tol, rtol=tol)


def test_einsum_and_searchsorted_promote_mixed_dtypes():
    # Keras's torch backend raises on mixed dtypes here; distkeras promotes as Keras does.
    import distkeras.ops

    a = torch.arange(6, dtype=torch.int32).reshape(2, 3)
    b = torch.tensor([0.5, -1.0, 2.0])
    out = distkeras.ops.einsum("ij,j->i", a, b)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.einsum("ij,j->i", a.float(), b))
    found = distkeras.ops.searchsorted(torch.tensor([1, 3, 5], dtype=torch.int32), b)
    assert found.dtype == torch.int32 and found.tolist() == [0, 0, 1]
