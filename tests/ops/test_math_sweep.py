"""Keras's math ops (``keras.ops`` top level) against Keras 3 (torch backend)."""

import copy

import numpy as np
import pytest

from distkeras.ops import math as math_ops
from tests.ops.cases_math import CASES, f32
from tests.ops.keras_reference import assert_same, import_keras, keras_op, our_op

# The list under test is the module's own; the sweep checks it against Keras's namespace.
MATH_NAMES = sorted(math_ops.__all__)


def _call(op, case):
    return op(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_keras(case):
    theirs = _call(keras_op(case), case)
    ours = _call(our_op(case), case)
    assert_same(tuple(ours) if isinstance(ours, tuple) else ours, theirs, atol=case.atol)


def test_every_math_name_has_a_case_and_is_exported():
    import keras.src.ops.math as keras_math

    import distkeras.ops

    keras = import_keras()
    names = sorted(n for n in dir(keras.ops) if not n.startswith("_") and hasattr(keras_math, n))
    assert names == MATH_NAMES
    assert set(names) <= {case.name for case in CASES}
    assert len(set(math_ops.__all__)) == len(math_ops.__all__)
    for name in names:
        op = getattr(distkeras.ops, name)
        assert (op.op_module, op.op_name) == ("math", name)


def test_top_k_fields_and_istft_inverts_stft():
    import distkeras.ops as ops

    values, indices = ops.top_k(np.array([1.0, 5.0, 3.0], "float32"), 2)
    assert values.tolist() == [5.0, 3.0] and indices.tolist() == [1, 2]
    signal = f32(2, 64)
    real, imag = ops.stft(signal, 16, 4, 16)
    assert_same(ops.istft((real, imag), 16, 4, 16, length=64), signal, atol=1e-5)


def test_errors_name_the_argument():
    import distkeras.ops as ops

    with pytest.raises(ValueError, match="sequence_stride"):
        ops.stft(f32(2, 32), 8, 0, 8)
    with pytest.raises(ValueError, match="segment_ids"):
        ops.segment_sum(f32(4, 2), np.zeros((2, 2), "int32"))
    with pytest.raises(ValueError, match="complex"):
        ops.view_as_real(f32(3))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64", "int32", "int64", "bool"])
def test_input_dtypes_as_keras(dtype):
    """The elementwise math ops on each input dtype: Keras's result and dtype, or an error
    where Keras raises one."""
    import torch

    import distkeras.ops

    keras = import_keras()
    x = torch.tensor([[0, 1, 0, 1], [2, 3, 1, 0]]).to(getattr(torch, dtype))
    atol = 1e-2 if dtype in ("float16", "bfloat16") else 1e-5
    for name in ["erf", "erfc", "erfinv", "rsqrt", "logsumexp"]:
        try:
            theirs = getattr(keras.ops, name)(x.clone())
        except Exception:  # noqa: BLE001  (Keras rejects this dtype: so must we)
            with pytest.raises(Exception):  # noqa: B017
                getattr(distkeras.ops, name)(x.clone())
            continue
        assert_same(getattr(distkeras.ops, name)(x.clone()), theirs, atol=atol)
