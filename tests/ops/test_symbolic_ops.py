"""Every op case of every sweep, called on an ``Input`` inside a functional model.

The cases come from all ``tests/ops/cases_*.py`` files (a new file joins automatically). A
case takes part when its first argument is an array of fixed shape: the model's Input has that
exact shape and dtype, the op is applied to it with the case's other arguments as constants,
and the model must infer the eager result's shape and dtype and compute its values; the first
four cases of each op also survive a JSON config round trip, and the first a ``.keras``
save/load in distkeras, match the config Keras 3 writes and rebuild in Keras. Cases that
cannot be symbolic are listed below with the reason; the test asserts they fail loudly
instead of skipping them.
"""

import glob
import importlib
import json
import os

import numpy as np
import pytest
import torch

import distkeras
from distkeras.models.functional import Functional
from distkeras.ops.op_classes import OP_CLASSES
from distkeras.utils.tree import flatten
from tests.ops.keras_reference import assert_same, import_keras, keras_op, our_op

_HERE = os.path.dirname(__file__)
_FILES = sorted(glob.glob(os.path.join(_HERE, "cases_*.py")))


def _load_cases():
    cases = []
    for path in _FILES:
        module = importlib.import_module(f"tests.ops.{os.path.basename(path)[:-3]}")
        cases.extend(getattr(module, "CASES", []))
    return cases


def _symbolic_candidate(case) -> bool:
    """A first argument of fixed shape, and an op Keras records as a node (shape, dtype,
    is_tensor, convert_to_numpy and creation ops without tensor inputs never are)."""
    first = case.args[0] if case.args else None
    return isinstance(first, np.ndarray) and first.ndim >= 1 and case.name in OP_CLASSES


ALL_CASES = _load_cases()
CASES = [case for case in ALL_CASES if _symbolic_candidate(case)]

# Ops whose output shape depends on the input's values: a graph cannot hold them. Building
# the model must raise ValueError naming the op (Keras gives such outputs unknown dims).
DATA_DEPENDENT = {
    "nonzero": "output length is the number of non-zero entries",
    "unique": "output length is the number of distinct values (unless size= is given)",
    "where": "with only a condition it returns the indices of True entries",
}
# Inputs distkeras.Input cannot take (dtype), each with the reason.
UNSUPPORTED_INPUT_DTYPES = {
    "complex64": "distkeras.Input has no complex dtypes (Keras models take real inputs too)",
    "complex128": "distkeras.Input has no complex dtypes (Keras models take real inputs too)",
}


# Ops whose last axis has a length that depends on the values: the graph leaves it unknown.
VALUE_DEPENDENT_LENGTH = {"bincount": "max(x) + 1 when that exceeds minlength"}
# Ops whose eager result is no tensor: a model cannot output it.
NO_TENSOR_OUTPUT = {"ndim": "returns a Python int (as Keras's torch backend does)"}
# Ops whose values are not reproducible between two calls: shape and dtype are compared.
VALUES_DIFFER = {
    "empty_like": "uninitialized memory",
    "elastic_transform": "random displacements when unseeded",
}
# Configs Keras 3.15 itself cannot rebuild (its own saved files fail the same way).
KERAS_CANNOT_REBUILD = {
    "adaptive_average_pool": "its call() needs output_size as a tuple; JSON gives a list",
    "adaptive_max_pool": "its call() needs output_size as a tuple; JSON gives a list",
}


# Calls Keras 3.15 itself cannot run inside a functional model (its symbolic path or its
# torch backend fails); distkeras runs and saves them, the Keras comparison is not possible.
KERAS_FAILS_IN_A_MODEL = {
    "nn.conv_transpose[valid_s1]": "ConvTranspose.call() fails: 'NoneType' has no 'lower'",
    "numpy.linspace[float32-arrays]": "Linspace.call() subtracts a tensor from a numpy stop",
    "numpy.geomspace[axis]": "its torch backend rejects the axis argument",
    "numpy.histogram[default]": "its torch backend has no histogram",
}


def _is_data_dependent(case) -> bool:
    if case.name == "unique":
        return case.kwargs.get("size") is None
    if case.name == "where":
        return len(case.args) + len(case.kwargs) == 1
    return case.name in DATA_DEPENDENT


def _first_of_each_op(cases, count: int):
    seen: dict = {}
    first = set()
    for case in cases:
        key = (case.module, case.name)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= count:
            first.add(id(case))
    return first


# A .keras file and Keras's rebuild for the first case of each op; the JSON config round trip
# for its first four (dtype variants beyond them exercise the same config), to stay fast.
SAVE_CASES = _first_of_each_op(CASES, 1)
ROUND_TRIP_CASES = _first_of_each_op(CASES, 4)


def _build(case):
    data = case.args[0]
    inputs = distkeras.Input(batch_shape=data.shape, dtype=data.dtype.name)
    outputs = our_op(case)(inputs, *case.args[1:], **case.kwargs)
    return distkeras.Model(inputs, outputs)


def _run(model, data):
    with torch.no_grad():
        return model(torch.as_tensor(data))


def test_every_case_file_is_loaded():
    assert len(_FILES) >= 2 and CASES, _FILES
    assert any(os.path.basename(p) == "cases_core.py" for p in _FILES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_op_in_functional_model(case, tmp_path):
    data = case.args[0]
    if data.dtype.name in UNSUPPORTED_INPUT_DTYPES:
        with pytest.raises(ValueError, match="dtype"):
            distkeras.Input(batch_shape=data.shape, dtype=data.dtype.name)
        return
    if _is_data_dependent(case):
        with pytest.raises(ValueError, match=case.name):
            _build(case)
        return
    if case.name in NO_TENSOR_OUTPUT:
        with pytest.raises(ValueError, match="symbolic tensors"):
            _build(case)
        return
    expected = our_op(case)(*case.args, **case.kwargs)  # eager (swept against Keras)
    check = _shape_and_dtype if case.name in VALUES_DIFFER else assert_same
    model = _build(case)
    # The inferred symbolic shapes and dtypes are those of the eager result.
    specs = [_Spec(t.shape, t.dtype) for t in model.outputs]
    if case.name in VALUE_DEPENDENT_LENGTH:  # the last axis is unknown; the rest is inferred
        assert all(spec.shape[-1] is None for spec in specs)
        specs = [_Spec(spec.shape[:-1], spec.dtype) for spec in specs]
        expected_specs = [_Spec(t.shape[:-1], t.dtype) for t in flatten([expected])]
    else:
        expected_specs = expected
    _shape_and_dtype(specs, expected_specs, case.atol)
    check(_run(model, data), expected, atol=case.atol)

    if id(case) not in ROUND_TRIP_CASES:
        return
    config = json.loads(json.dumps(model.get_config()))
    rebuilt = Functional.from_config(config)
    check(_run(rebuilt, data), expected, atol=case.atol)

    if id(case) in SAVE_CASES:
        path = str(tmp_path / "op.keras")
        model.save(path)
        check(_run(distkeras.models.load_model(path), data), expected, atol=case.atol)
        _check_keras_rebuilds(case, config, expected, check)


def _check_keras_rebuilds(case, config, expected, check):
    """Our config is the one Keras 3 writes for the same call, and Keras rebuilds it into a
    model that computes what Keras's own model computes."""
    keras = import_keras()
    data = torch.as_tensor(case.args[0])
    inputs = keras.Input(batch_shape=tuple(data.shape), dtype=case.args[0].dtype.name)
    if case.id in KERAS_FAILS_IN_A_MODEL:
        with pytest.raises(Exception):  # noqa: B017  (Keras's own error, whatever it is)
            keras.Model(inputs, keras_op(case)(inputs, *case.args[1:], **case.kwargs))(data)
        return
    native = keras.Model(inputs, keras_op(case)(inputs, *case.args[1:], **case.kwargs))
    reference = native(data)
    assert _op_configs(config) == _op_configs(native.get_config())
    if case.name in KERAS_CANNOT_REBUILD:
        with pytest.raises(Exception):  # noqa: B017  (Keras's own error, whatever it is)
            keras.Model.from_config(config)(data)
        return
    check(keras.Model.from_config(config)(data), reference, atol=case.atol)


def _op_configs(config):
    layers = json.loads(json.dumps(config))["layers"]
    return [
        (
            spec["module"],
            spec["class_name"],
            {k: v for k, v in spec["config"].items() if k != "name"},
        )
        for spec in layers
        if spec["class_name"] != "InputLayer"
    ]


class _Spec:
    """A symbolic output's shape and dtype, comparable with a tensor's."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), dtype


def _shape_and_dtype(ours, theirs, atol):
    def specs(value):
        if isinstance(value, (list, tuple)):
            return [spec for item in value for spec in specs(item)]
        return [(tuple(value.shape), str(value.dtype).replace("torch.", ""))]

    assert specs(ours) == specs(theirs)
