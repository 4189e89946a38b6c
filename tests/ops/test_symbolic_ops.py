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


# ------------------------------------------------- reported gaps of the symbolic handler
def _keras_op_configs(inputs_and_outputs):
    keras = import_keras()
    return _op_configs(keras.Model(*inputs_and_outputs).get_config())


@pytest.mark.parametrize(
    "label",
    ["layer_normalization-rms_scaling", "multi_hot-num_tokens", "rearrange-axes_lengths"],
)
def test_kwargs_ops_record_keras_configs(label, tmp_path):
    """Ops taking ``**kwargs`` record the named arguments (never one called ``kwargs``) as
    Keras does, compute what the eager op computes, and survive a .keras round trip."""
    keras = import_keras()
    name = label.split("-")[0]
    if name == "multi_hot":
        data = np.array([[0, 1, 4], [2, 2, 3]], dtype="int32")
        call = {"num_tokens": 5}
    elif name == "layer_normalization":
        data = np.random.default_rng(0).random((2, 4)).astype("float32")
        call = {"epsilon": 1e-3, "rms_scaling": True}
    else:
        data = np.random.default_rng(1).random((2, 4, 6)).astype("float32")
        call = {"pattern": "b h (w c) -> b (h w) c", "c": 2}

    def build(lib):
        fn = getattr(lib.ops, name)
        inputs = lib.Input(batch_shape=data.shape, dtype=data.dtype.name)
        return inputs, fn(inputs, **call)

    with pytest.warns(UserWarning) if call.get("rms_scaling") else _no_context():
        inputs, outputs = build(distkeras)
        model = distkeras.Model(inputs, outputs)
        ours = _op_configs(model.get_config())
        assert all("kwargs" not in spec[2] for spec in ours)
        assert ours == _keras_op_configs(build(keras))
        eager = getattr(distkeras.ops, name)(torch.as_tensor(data), **call)
        assert_same(_run(model, data), eager)
        path = str(tmp_path / "kw.keras")
        model.save(path)
        assert_same(_run(distkeras.models.load_model(path), data), eager)
        rebuilt = keras.Model.from_config(json.loads(json.dumps(model.get_config())))
        assert_same(_run(model, data), rebuilt(torch.as_tensor(data)))


class _no_context:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_inputs_and_outputs(dtype, tmp_path):
    """Complex KerasTensors, as in Keras: Input(dtype=complex...), view_as_real of it, and
    complex op outputs (polar, view_as_complex) inside a model that saves and loads."""
    rng = np.random.default_rng(2)
    data = (rng.random((2, 3)) + 1j * rng.random((2, 3))).astype(dtype)
    inputs = distkeras.Input((3,), dtype=dtype)
    assert inputs.dtype == import_keras().Input((3,), dtype=dtype).dtype == dtype
    model = distkeras.Model(inputs, distkeras.ops.view_as_real(inputs))
    expected = torch.view_as_real(torch.as_tensor(data))
    assert model.outputs[0].dtype == str(expected.dtype).replace("torch.", "")
    assert_same(_run(model, data), expected)
    path = str(tmp_path / "complex.keras")
    model.save(path)
    assert_same(_run(distkeras.models.load_model(path), data), expected)

    real = distkeras.Input((3, 2), dtype="float32" if dtype == "complex64" else "float64")
    as_complex = distkeras.ops.view_as_complex(real)
    polar = distkeras.ops.nn.polar(distkeras.ops.abs(as_complex), distkeras.ops.angle(as_complex))
    model = distkeras.Model(real, [as_complex, polar])
    pairs = torch.view_as_real(torch.as_tensor(data))
    eager = distkeras.ops.view_as_complex(pairs)  # swept against Keras (complex64 here)
    assert as_complex.dtype == polar.dtype == str(eager.dtype).replace("torch.", "")
    out_complex, out_polar = _run(model, pairs.numpy())
    assert_same(out_complex, eager)
    assert_same(out_polar, eager, atol=1e-5)


@pytest.mark.parametrize("name", ["segment_sum", "segment_max", "segment_min", "segment_prod"])
def test_segment_ops_with_symbolic_ids(name):
    """Without num_segments the count is a value of the symbolic ids: the graph records it as
    None, as Keras does (never the count of the zero placeholder), and computes it at run."""
    keras = import_keras()
    data = np.random.default_rng(3).random((5, 3)).astype("float32")
    ids = np.array([0, 0, 2, 3, 3], dtype="int32")

    def build(lib, **kwargs):
        d = lib.Input(batch_shape=data.shape)
        s = lib.Input(batch_shape=ids.shape, dtype="int32")
        return d, s, getattr(lib.ops, name)(d, s, **kwargs)

    d, s, out = build(distkeras)
    assert out.shape == build(keras)[2].shape == (None, 3)
    model = distkeras.Model([d, s], out)
    with torch.no_grad():
        result = model([torch.as_tensor(data), torch.as_tensor(ids)])
    assert_same(result, getattr(distkeras.ops, name)(torch.as_tensor(data), torch.as_tensor(ids)))
    assert result.shape[0] == 4
    assert build(distkeras, num_segments=6)[2].shape == build(keras, num_segments=6)[2].shape


@pytest.mark.parametrize("name", ["bartlett", "blackman", "hamming", "hanning", "kaiser"])
def test_window_functions_refuse_symbolic_input(name):
    """The window length is the tensor's value: Keras raises TypeError, so do we (instead of
    a length-0 window inferred from a zero placeholder)."""
    keras = import_keras()
    extra = (0.5,) if name == "kaiser" else ()
    for lib in (keras, distkeras):
        length = lib.Input(batch_shape=(), dtype="int32")
        with pytest.raises(TypeError, match="does not support symbolic tensors"):
            getattr(lib.ops, name)(length, *extra)


@pytest.mark.parametrize("values", [[2**40, 1], [2**31, 0], [[1, -(2**31) - 1]]])
def test_convert_to_tensor_overflowing_python_ints_raise(values):
    """A list of Python ints is int32 unless a dtype is given; values outside int32 raise as
    in Keras (numpy would wrap them silently), and an explicit int64 holds them."""
    keras = import_keras()
    with pytest.raises(RuntimeError, match="overflow"):
        keras.ops.convert_to_tensor(values)
    with pytest.raises(RuntimeError, match="overflow"):
        distkeras.ops.convert_to_tensor(values)
    assert_same(
        distkeras.ops.convert_to_tensor(values, dtype="int64"),
        keras.ops.convert_to_tensor(values, dtype="int64"),
    )
