"""Every core op of ``keras.ops`` against Keras 3 (torch backend) on the same inputs."""

import numpy as np
import pytest
import torch

from tests.ops.cases_core import CASES
from tests.ops.keras_reference import assert_same, import_keras, keras_op, our_op

CORE_NAMES = [
    "associative_scan", "cast", "cond", "convert_to_numpy", "convert_to_tensor",
    "custom_gradient", "dtype", "fori_loop", "is_tensor", "map", "rearrange", "saturate_cast",
    "scan", "scatter", "scatter_update", "shape", "slice", "slice_update", "stop_gradient",
    "switch", "unstack", "vectorized_map", "while_loop",
]  # fmt: skip


def _compare(ours, theirs, atol):
    if isinstance(theirs, (bool, str)) or (
        isinstance(theirs, tuple) and all(isinstance(d, int) for d in theirs)
    ):
        assert type(ours) is type(theirs) and ours == theirs, (ours, theirs)
    else:
        assert_same(ours, theirs, atol=atol)


# Keras's torch backend calls tensor methods on these inputs (numpy arrays fail there).
TENSOR_ONLY = {"stop_gradient", "unstack", "vectorized_map"}


def _args(case):
    if case.name in TENSOR_ONLY:
        return tuple(torch.as_tensor(a) if isinstance(a, np.ndarray) else a for a in case.args)
    return case.args


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_keras(case):
    theirs = keras_op(case)(*_args(case), **case.kwargs)
    ours = our_op(case)(*_args(case), **case.kwargs)
    _compare(ours, theirs, case.atol)


def test_every_core_name_has_a_case():
    keras = import_keras()
    modules = ("keras.src.ops.core", "keras.src.ops.einops")
    core = sorted(
        n for n in dir(keras.ops) if getattr(getattr(keras.ops, n), "__module__", "") in modules
    )
    assert core == CORE_NAMES
    covered = {case.name for case in CASES} | {"custom_gradient"}  # tested below
    assert set(CORE_NAMES) <= covered


def test_is_tensor_and_shape_on_torch_tensors():
    keras = import_keras()
    import distkeras.ops as ops

    t = torch.ones(2, 3)
    assert ops.is_tensor(t) is keras.ops.is_tensor(t) is True
    assert ops.shape(t) == keras.ops.shape(t) == (2, 3)
    assert ops.dtype(t) == keras.ops.dtype(t) == "float32"


def test_convert_to_numpy_bfloat16_as_keras():
    keras = import_keras()
    import distkeras.ops as ops

    t = torch.tensor([1.5, -2.25], dtype=torch.bfloat16)
    ours, theirs = ops.convert_to_numpy(t), keras.ops.convert_to_numpy(t)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours.astype("float32"), theirs.astype("float32"))


def _log1pexp(lib):
    @lib.custom_gradient
    def log1pexp(x):
        e = torch.exp(x)

        def grad(*args, upstream=None):
            return upstream * 0.5 * (1.0 - 1.0 / (1 + e))

        return torch.log(1 + e), grad

    return log1pexp


def test_custom_gradient_matches_keras():
    keras = import_keras()
    import distkeras.ops as ops

    grads, values = [], []
    for lib in (ops, keras.ops):
        x = torch.tensor([-1.0, 0.0, 2.0, 50.0], requires_grad=True)
        y = _log1pexp(lib)(x)
        y.sum().backward()
        grads.append(x.grad)
        values.append(y.detach())
    assert_same(values[0], values[1])
    assert_same(grads[0], grads[1])
    # The custom rule is used, not autograd's own: half the true derivative.
    torch.testing.assert_close(grads[0], 0.5 * torch.sigmoid(torch.tensor([-1.0, 0.0, 2.0, 50.0])))


def test_saturate_cast_to_int32_saturates():
    """Keras 3.15 wraps +inf and 1e10 to int32's minimum here (float32 cannot hold int32's
    maximum); we clip to the largest float32 below it, as the op's contract says."""
    import distkeras.ops as ops
    from tests.ops.cases_core import BIG

    expected = np.clip(BIG, -(2.0**31), np.nextafter(np.float32(2.0**31), np.float32(0)))
    assert_same(ops.saturate_cast(BIG, "int32"), expected.astype("int32"))


@pytest.mark.parametrize("source", ["uint8", "int8", "int16", "int32", "int64", "bool"])
@pytest.mark.parametrize("target", ["float16", "float32"])
def test_saturate_cast_int_to_float_keeps_values(source, target):
    """In range, an int -> float saturate_cast is a plain cast (Keras 3.15 returns the int
    minimum for every element here)."""
    import distkeras.ops as ops
    from tests.ops.cases_core import VALUES

    x = VALUES.astype(source)
    assert_same(ops.saturate_cast(x, target), x.astype(target))


def test_errors_name_the_argument():
    import distkeras.ops as ops

    with pytest.raises(ValueError, match="reduction"):
        ops.scatter_update(np.zeros(3), np.array([[0]]), np.ones(1), reduction="mean")
    with pytest.raises(ValueError, match="unroll"):
        ops.scan(lambda c, x: (c, x), 0.0, np.ones(3), unroll=0)
    with pytest.raises(ValueError, match="sparse"):
        ops.convert_to_tensor(np.ones(3), sparse=True)
