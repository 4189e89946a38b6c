"""``distkeras.Variable`` against ``keras.Variable`` (torch backend) on the same inputs."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

import distkeras
from tests.ops.keras_reference import assert_same, import_keras

VALUE = np.arange(-3, 9, dtype="float32").reshape(3, 4) / 4.0
OTHER = np.linspace(0.5, 2.0, 12, dtype="float32").reshape(3, 4)

# Operators a Keras variable supports with a tensor/array/scalar on the other side.
BINARY = [
    "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
    "__rtruediv__", "__pow__", "__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__",
    "__floordiv__", "__mod__",
]  # fmt: skip
UNARY = ["__neg__", "__abs__", "__pos__"]


def _pair(value=VALUE, **kwargs):
    keras = import_keras()
    return distkeras.Variable(value, **kwargs), keras.Variable(value, **kwargs)


# `array <op> variable` is numpy's business, not a Variable method: arrays on the left side
# are only swept for the forward operators.
CASES = [(op, other) for op in BINARY for other in ("tensor", "scalar")] + [
    (op, "array") for op in BINARY if not op.startswith("__r")
]


@pytest.mark.parametrize(("op", "other"), CASES)
def test_binary_operators_match_keras(op, other):
    ours, theirs = _pair(name="v")
    operand = {"tensor": torch.as_tensor(OTHER), "array": OTHER, "scalar": 1.5}[other]
    assert_same(getattr(ours, op)(operand), getattr(theirs, op)(operand))


@pytest.mark.parametrize("op", UNARY)
def test_unary_operators_match_keras(op):
    ours, theirs = _pair()
    assert_same(getattr(ours, op)(), getattr(theirs, op)())


def test_matmul_indexing_and_reductions_match_keras():
    keras = import_keras()
    ours, theirs = _pair()
    square = torch.as_tensor(OTHER.T)
    assert_same(ours @ square, theirs @ square)
    assert_same(ours[1], theirs[1])
    assert_same(ours[:, 1:3], theirs[:, 1:3])
    assert_same(distkeras.ops.sum(ours, axis=0), keras.ops.sum(theirs, axis=0))
    assert_same(distkeras.ops.matmul(ours, square), keras.ops.matmul(theirs, square))


@pytest.mark.parametrize("method", ["assign", "assign_add", "assign_sub"])
@pytest.mark.parametrize("kind", ["array", "tensor", "list", "float64 array"])
def test_assign_methods_match_keras(method, kind):
    ours, theirs = _pair()
    value = {
        "array": OTHER,
        "tensor": torch.as_tensor(OTHER),
        "list": OTHER.tolist(),
        "float64 array": OTHER.astype("float64"),
    }[kind]
    getattr(ours, method)(value)
    getattr(theirs, method)(value)
    assert_same(ours.numpy(), theirs.numpy())
    assert ours.dtype == torch.float32 and theirs.dtype == "float32"


def test_assign_rejects_another_shape_as_keras():
    ours, theirs = _pair()
    with pytest.raises(ValueError, match="must match"):
        theirs.assign(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="must match"):
        ours.assign(np.zeros((4, 3)))


@pytest.mark.parametrize(
    "initial",
    [VALUE, VALUE.astype("float64"), 2.5, [1.0, 2.0], np.arange(4, dtype="int32")],
    ids=["float32", "float64", "python float", "list", "int32"],
)
def test_attributes_match_keras(initial):
    trainable = not (isinstance(initial, np.ndarray) and initial.dtype.kind == "i")
    ours, theirs = _pair(initial, name="w", trainable=trainable)
    assert (ours.name, ours.path, ours.trainable) == (theirs.name, theirs.path, theirs.trainable)
    assert tuple(ours.shape) == tuple(theirs.shape) and ours.ndim == theirs.ndim
    assert distkeras.backend.dtype_name(ours.dtype) == theirs.dtype
    assert_same(ours.numpy(), theirs.numpy())
    assert_same(np.asarray(ours), np.asarray(theirs))
    assert ours.value is ours and isinstance(ours, torch.nn.Parameter)


def test_initializer_with_shape_matches_keras():
    keras = import_keras()
    ours = distkeras.Variable(initializer="ones", shape=(2, 3), name="b")
    theirs = keras.Variable(initializer="ones", shape=(2, 3), name="b")
    assert_same(ours.numpy(), theirs.numpy())
    with pytest.raises(ValueError, match="shape"):
        distkeras.Variable(initializer="zeros")


def test_layer_weights_are_variables_with_keras_names_and_paths():
    keras = import_keras()
    results = []
    for lib in (distkeras, keras):
        inputs = lib.Input((3,))
        dense = lib.layers.Dense(2, name="head")
        dense(inputs)
        bn = lib.layers.BatchNormalization(name="norm")
        bn(inputs)
        results.append(
            [(v.name, v.path, v.trainable) for v in dense.weights + bn.weights]
            + [(type(dense.kernel).__name__,)]
        )
    assert results[0] == results[1]
    assert isinstance(dense.kernel, keras.Variable)


def test_trainable_weight_numpy_grad_and_trainable_flag_as_keras():
    keras = import_keras()
    for lib in (distkeras, keras):
        dense = lib.layers.Dense(2)
        out = dense(torch.ones(4, 3))
        out.sum().backward()
        kernel = dense.kernel
        assert kernel.numpy().shape == (3, 2) or lib is distkeras  # stored layout: (2, 3)
        assert kernel.value.grad is not None
        dense.trainable = False
        assert not kernel.trainable
    ours = distkeras.layers.Dense(2)
    ours(torch.ones(1, 3))
    # The stored (torch) layout: what shape, numpy() and assign() speak.
    assert tuple(ours.kernel.shape) == (2, 3)
    np.testing.assert_array_equal(ours.kernel.numpy().T, ours.get_weights()[0])


def test_metric_variables_are_keras_variables():
    keras = import_keras()
    ours = distkeras.metrics.Mean(name="loss")
    theirs = keras.metrics.Mean(name="loss")
    assert [(v.name, v.path, v.trainable) for v in ours.variables] == [
        (v.name, v.path, v.trainable) for v in theirs.variables
    ]
    for metric in (ours, theirs):
        metric.variables[0].assign_add(3.0)
        metric.variables[1].assign_add(2.0)
    assert_same(ours.result(), theirs.result())


def test_torch_optimizer_module_registration_copy_and_pickle():
    dense = distkeras.layers.Dense(2)
    dense(torch.ones(1, 3))
    assert [name for name, _ in dense.named_parameters()] == ["kernel", "bias"]
    opt = torch.optim.SGD(dense.parameters(), lr=0.5)
    before = dense.kernel.numpy()
    dense(torch.ones(4, 3)).sum().backward()
    opt.step()
    np.testing.assert_allclose(dense.kernel.numpy(), before - 0.5 * 4.0, rtol=1e-6)
    for clone in (copy.deepcopy(dense).kernel, pickle.loads(pickle.dumps(dense.kernel))):
        assert isinstance(clone, distkeras.Variable) and clone.path == dense.kernel.path
        np.testing.assert_array_equal(clone.numpy(), dense.kernel.numpy())
    assert "Variable path=dense" in repr(dense.kernel)
