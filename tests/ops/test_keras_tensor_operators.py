"""KerasTensor operators build op nodes as Keras 3's do: same values, same saved layout."""

import operator

import numpy as np
import pytest

import distkeras
from tests.ops.keras_reference import assert_same, import_keras

X = np.random.default_rng(3).normal(size=(2, 3)).astype("float32") + 2.0
Y = np.random.default_rng(4).normal(size=(2, 3)).astype("float32") - 2.0

BINARY = [
    operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
    operator.mod, operator.pow, operator.lt, operator.le, operator.gt, operator.ge, operator.ne,
]  # fmt: skip


def _model(lib, fn, n_inputs=1, shape=(3,), dtype="float32"):
    inputs = [lib.Input(shape, dtype=dtype) for _ in range(n_inputs)]
    return lib.Model(inputs, fn(*inputs))


def _check(fn, data, n_inputs=1, shape=(3,), dtype="float32", tmp_path=None):
    keras = import_keras()
    ours = _model(distkeras, fn, n_inputs, shape, dtype)
    theirs = _model(keras, fn, n_inputs, shape, dtype)
    expected = theirs.predict(data, verbose=0)
    got = ours.predict(data, verbose=0)
    assert_same(got, expected)

    # Same graph as Keras writes: the op classes and their configs.
    def ops_of(model):
        return [(layer["module"], layer["class_name"], sorted(layer["config"]))
                for layer in model.get_config()["layers"][n_inputs:]]  # fmt: skip

    assert ops_of(ours) == ops_of(theirs)
    if tmp_path is not None:
        path = str(tmp_path / "m.keras")
        ours.save(path)
        assert_same(distkeras.models.load_model(path).predict(data, verbose=0), expected)
        assert_same(keras.models.load_model(path).predict(data, verbose=0), expected)


@pytest.mark.parametrize("op", BINARY, ids=lambda f: f.__name__)
def test_binary_operators_tensor_tensor(op):
    _check(lambda a, b: op(a, b), [X, Y], n_inputs=2)


@pytest.mark.parametrize("op", BINARY, ids=lambda f: f.__name__)
def test_binary_operators_with_constants_both_sides(op):
    _check(lambda a: op(op(a, 1.5), 3.0) if op is not operator.pow else op(2.0, op(a, 0.5)), X)
    _check(lambda a: op(2.5, a), X)


def test_matmul_both_sides(tmp_path):
    w = np.arange(12, dtype="float32").reshape(3, 4) / 10
    _check(lambda a: a @ w, X, tmp_path=tmp_path)
    # A numpy array on the left defers to KerasTensor.__rmatmul__ (Keras 3.15 fails here).
    inputs = distkeras.Input((2, 3))
    model = distkeras.Model(inputs, np.ones((2, 2), "float32") @ inputs)
    x = np.stack([X, Y])
    assert_same(model.predict(x, verbose=0), np.ones((2, 2), "float32") @ x)
    model.save(str(tmp_path / "left.keras"))
    assert_same(distkeras.models.load_model(str(tmp_path / "left.keras")).predict(x, verbose=0),
                np.ones((2, 2), "float32") @ x)  # fmt: skip


def test_unary_and_logical(tmp_path):
    _check(lambda a: abs(-a), Y, tmp_path=tmp_path)
    flags = (X > 2.0, Y > -2.0)
    _check(lambda a, b: (a & b) | ~a ^ b, list(flags), n_inputs=2, dtype="bool")
    _check(lambda a: round(a * 10), X)


@pytest.mark.parametrize(
    "key",
    [0, -1, (slice(None), 1), (Ellipsis, slice(None, None, 2)), (slice(None), None)],
    ids=["int", "neg", "tuple", "ellipsis", "newaxis"],
)
def test_getitem(key, tmp_path):
    _check(lambda a: a[key], X, tmp_path=tmp_path)


def test_getitem_bare_slice(tmp_path):
    """Keras 3.15 cannot build x[1:3] on a KerasTensor (its GetItem wants a tuple); we can."""
    inputs = distkeras.Input((3,))
    model = distkeras.Model(inputs, inputs[1:3])
    assert_same(model.predict(X, verbose=0), X[1:3])
    model.save(str(tmp_path / "s.keras"))
    assert_same(
        distkeras.models.load_model(str(tmp_path / "s.keras")).predict(X, verbose=0), X[1:3]
    )


def test_residual_connection_saves_and_loads(tmp_path):
    keras = import_keras()
    inputs = distkeras.Input((3,))
    x = distkeras.layers.Dense(3, activation="relu")(inputs)
    x = distkeras.layers.Dense(3)(x)
    x = x + inputs
    model = distkeras.Model(inputs, x)
    expected = model.predict(X, verbose=0)
    # x + inputs is the Dense output plus the skip, computed from the layers' own weights.
    dense = model.layers[-1]
    hidden = np.maximum(X @ model.layers[1].get_weights()[0] + model.layers[1].get_weights()[1], 0)
    np.testing.assert_allclose(
        expected, hidden @ dense.get_weights()[0] + dense.get_weights()[1] + X, rtol=1e-5
    )
    path = str(tmp_path / "res.keras")
    model.save(path)
    assert_same(distkeras.models.load_model(path).predict(X, verbose=0), expected)
    assert_same(keras.models.load_model(path).predict(X, verbose=0), expected)
    assert len(model.layers) == 3  # the op node is an operation of the graph, not a layer


def test_shape_dtype_ndim_and_identity_semantics():
    a = distkeras.Input((3, 4), dtype="int32")
    assert a.shape == (None, 3, 4) and a.dtype == "int32" and a.ndim == 3
    b = a + 1
    assert b.shape == (None, 3, 4) and b.dtype == "int32"
    assert (a == a) is True and (a == b) is False  # identity, as Keras 3
    assert len({a, b, a}) == 2 and {a: 1}[a] == 1
    assert (a != b).dtype == "bool"  # an op node, as Keras 3
    assert (a / 2).dtype == "float32"
    with pytest.raises(NotImplementedError):
        iter(a)
    with pytest.raises(TypeError, match="boolean"):  # `if a != b:` fails loudly, as in Keras
        bool(a != b)


def test_summary_lists_op_nodes_as_keras_does():
    keras = import_keras()
    texts = []
    for lib in (distkeras, keras):
        lib.utils.clear_session()  # default names ("add", "sum") count from zero in both
        inputs = lib.Input((4,), name="features")
        x = lib.layers.Dense(4, name="hidden")(inputs)
        x = lib.ops.sum(x + inputs, axis=-1, keepdims=True)
        model = lib.Model(inputs, lib.layers.Dense(2, name="head")(x), name="residual")
        lines = []
        model.summary(line_length=100, print_fn=lambda text, out=lines, **_: out.append(text))
        texts.append("\n".join(lines))
    assert texts[0] == texts[1]


def test_clone_model_keeps_op_nodes():
    inputs = distkeras.Input((3,))
    dense = distkeras.layers.Dense(3)
    model = distkeras.Model(inputs, distkeras.ops.sum(dense(inputs) + inputs, axis=-1))
    clone = distkeras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    assert clone.layers[1] is not dense  # layers are cloned, op nodes reused (as Keras)
    assert_same(clone.predict(X, verbose=0), model.predict(X, verbose=0))


def test_keras_file_with_op_nodes_loads_in_distkeras(tmp_path):
    keras = import_keras()
    inputs = keras.Input((3,))
    x = keras.layers.Dense(3)(inputs)
    x = keras.ops.sum(x * inputs + 1.0, axis=-1, keepdims=True)
    y = keras.ops.cast(inputs[:, 1:] > 0.5, "float32")
    path = str(tmp_path / "keras_ops.keras")
    model = keras.Model(inputs, [x, keras.ops.concatenate([x, y], axis=-1)])
    model.save(path)
    ours = distkeras.models.load_model(path)
    assert_same(ours.predict(X, verbose=0), [np.asarray(t) for t in model.predict(X, verbose=0)])
    assert [layer.name for layer in ours.layers] == [layer.name for layer in model.layers]
