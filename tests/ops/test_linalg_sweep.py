"""Every ``keras.ops.linalg`` op against Keras 3 (torch backend), nested and flat."""

import numpy as np
import pytest
import torch

from tests.ops.cases_linalg import CASES
from tests.ops.keras_reference import assert_same, import_keras, keras_op, our_op


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_keras(case):
    theirs = keras_op(case)(*case.args, **case.kwargs)
    ours = our_op(case)(*case.args, **case.kwargs)
    assert_same(ours, theirs, atol=case.atol)


def test_flat_names_are_the_linalg_ops():
    keras = import_keras()
    import distkeras.ops as ops

    names = sorted(n for n in dir(keras.ops.linalg) if not n.startswith("_"))
    assert sorted(n for n in dir(ops.linalg) if not n.startswith("_")) == names
    for name in names:
        assert hasattr(keras.ops, name) == hasattr(ops, name), name
        if hasattr(ops, name):
            assert getattr(ops, name) is getattr(ops.linalg, name)
    # jvp is tested below on tensors (both libraries need tensors for it)
    assert {c.name for c in CASES} | {"jvp"} == set(names)


@pytest.mark.parametrize("has_aux", [False, True])
def test_jvp_matches_keras(has_aux):
    keras = import_keras()
    import distkeras.ops as ops

    x = torch.tensor([0.5, -1.0, 2.0])
    t = torch.tensor([1.0, 0.5, -2.0])

    def fun(v):
        out = torch.sin(v) * v
        return (out, v.sum()) if has_aux else out

    assert_same(ops.linalg.jvp(fun, (x,), (t,), has_aux=has_aux),
                keras.ops.linalg.jvp(fun, (x,), (t,), has_aux=has_aux))  # fmt: skip


@pytest.mark.parametrize(
    "name,args",
    [
        ("det", (np.ones(3, "float32"),)),
        ("inv", (np.ones((2, 3), "float32"),)),
        ("cholesky", (-np.eye(2, dtype="float32"),)),
        ("solve", (np.eye(3, dtype="float32"), np.ones((2, 1), "float32"))),
        ("qr", (np.eye(2, dtype="float32"), "full")),
        ("norm", (np.eye(2, dtype="float32"), "max")),
    ],
)
def test_invalid_inputs_raise_value_error_as_keras(name, args):
    keras = import_keras()
    import distkeras.ops as ops

    with pytest.raises((ValueError, RuntimeError)):  # Keras lets torch's error through for norm
        getattr(keras.ops.linalg, name)(*args)
    with pytest.raises(ValueError):
        getattr(ops.linalg, name)(*args)
