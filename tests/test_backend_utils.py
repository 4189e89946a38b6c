"""backend (conversion, device, seeding) and utils (to_categorical, normalize, custom objects)."""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import backend, layers, utils
from distkeras.utils import serialization


# --------------------------------------------------------------------------- conversion
def test_convert_to_tensor_dtypes():
    t = backend.convert_to_tensor(np.ones((2, 3)))  # float64 -> floatx, as Keras
    assert t.dtype == torch.float32 and t.device == backend.get_device()
    assert backend.convert_to_tensor([1.5, 2.0]).dtype == torch.float32
    assert backend.convert_to_tensor(np.arange(3, dtype="int64")).dtype == torch.int64
    assert backend.convert_to_tensor(np.arange(3, dtype="int32")).dtype == torch.int32
    assert backend.convert_to_tensor(np.array([True, False])).dtype == torch.bool
    assert backend.convert_to_tensor(np.ones(2, dtype="uint8")).dtype == torch.uint8
    assert backend.convert_to_tensor(torch.ones(2, dtype=torch.float64)).dtype == torch.float32
    assert backend.convert_to_tensor(np.ones(2), dtype="float64").dtype == torch.float64
    assert backend.convert_to_tensor([1, 2], dtype="float16").dtype == torch.float16
    np.testing.assert_array_equal(
        backend.convert_to_tensor(np.arange(6).reshape(2, 3)[:, ::2]).numpy(), [[0, 2], [3, 5]]
    )
    with pytest.raises(TypeError, match="object array"):
        backend.convert_to_tensor(np.array([{"a": 1}], dtype=object))


def test_to_numpy():
    grad = torch.ones(2, requires_grad=True) * 3
    np.testing.assert_array_equal(backend.to_numpy(grad), [3.0, 3.0])
    bf = backend.to_numpy(torch.tensor([1.5], dtype=torch.bfloat16))
    assert bf.dtype == np.float32 and bf[0] == 1.5
    assert isinstance(backend.to_numpy([1, 2]), np.ndarray)


def test_standardize_dtype_and_floatx():
    assert backend.standardize_dtype("float16") == torch.float16
    assert backend.standardize_dtype(np.int32) == torch.int32
    assert backend.standardize_dtype(None) == torch.float32
    assert backend.floatx() == "float32"
    with pytest.raises(ValueError, match="dtype='complex7'"):
        backend.standardize_dtype("complex7")
    with pytest.raises(ValueError, match="float8"):
        backend.set_floatx("float8")


# ------------------------------------------------------------------------------ devices
def test_set_device_and_environment(monkeypatch):
    monkeypatch.setattr(backend, "_DEVICE", None)
    monkeypatch.setenv("DISTKERAS_DEVICE", "meta")
    assert backend.get_device() == torch.device("meta")
    # New weights and converted data go to the chosen device.
    layer = layers.Dense(2)
    layer(backend.convert_to_tensor(np.zeros((1, 3), "float32")))
    assert layer.kernel.device.type == "meta"

    backend.set_device("cpu")
    assert backend.get_device() == torch.device("cpu")
    assert backend.convert_to_tensor([1.0]).device.type == "cpu"
    monkeypatch.setattr(backend, "_DEVICE", None)
    monkeypatch.delenv("DISTKERAS_DEVICE")
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert backend.get_device().type == want


# ------------------------------------------------------------------------------ seeding
def _train_once(seed):
    utils.set_random_seed(seed)
    model = distkeras.Sequential(
        [
            layers.Dense(8, activation="relu", input_shape=(4,)),
            layers.Dropout(0.3),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype("float32")
    y = utils.to_categorical(rng.integers(0, 3, 32), 3)
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=True, verbose=0)
    return model.get_weights(), history.history["loss"]


def test_set_random_seed_makes_builds_and_fits_identical():
    w1, h1 = _train_once(42)
    w2, h2 = _train_once(42)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2
    w3, _ = _train_once(43)
    assert not np.array_equal(w1[0], w3[0])
    assert backend.global_seed() == 43
    with pytest.raises(ValueError, match="seed='1'"):
        utils.set_random_seed("1")


def test_set_random_seed_seeds_python_numpy_torch():
    import random

    utils.set_random_seed(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    utils.set_random_seed(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


# ------------------------------------------------------------------------ to_categorical
def test_to_categorical_keras_examples():
    a = utils.to_categorical([0, 1, 2, 3], num_classes=4)
    np.testing.assert_array_equal(a, np.eye(4))
    b = utils.to_categorical(np.array([2, 0, 1]))  # num_classes inferred as max + 1
    np.testing.assert_array_equal(b, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    # A trailing axis of 1 is dropped: (N, 1) labels give (N, C).
    c = utils.to_categorical(np.array([[1], [2], [0]]), num_classes=3)
    assert c.shape == (3, 3)
    np.testing.assert_array_equal(c.argmax(-1), [1, 2, 0])
    # Other shapes keep their leading axes.
    d = utils.to_categorical(np.array([[0, 1], [2, 1]]), num_classes=3)
    assert d.shape == (2, 2, 3)
    np.testing.assert_array_equal(d.argmax(-1), [[0, 1], [2, 1]])
    # More classes than seen, and integral floats.
    e = utils.to_categorical(np.array([1.0, 0.0]), num_classes=5)
    assert e.shape == (2, 5) and e.dtype == np.float32
    np.testing.assert_array_equal(e.sum(-1), [1, 1])
    assert utils.to_categorical(np.array([], dtype="int64"), num_classes=3).shape == (0, 3)


def test_to_categorical_errors():
    with pytest.raises(ValueError, match="out of range.*num_classes=3"):
        utils.to_categorical([0, 3], num_classes=3)
    with pytest.raises(ValueError, match="non-negative"):
        utils.to_categorical([0, -1])
    with pytest.raises(ValueError, match="integer class labels"):
        utils.to_categorical([0.5, 1.0])


def test_normalize():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 1.0]])
    out = utils.normalize(x)
    want = np.array([[0.6, 0.8], [0.0, 0.0], [2**-0.5, 2**-0.5]])
    np.testing.assert_allclose(out, want)
    assert out.dtype == np.float64  # numpy floats keep their dtype
    np.testing.assert_allclose(utils.normalize(x, axis=0, order=1), x / np.array([4.0, 5.0]))
    assert utils.normalize([[3, 4]]).dtype == np.float32


# -------------------------------------------------------------------------- custom objects
class _Scale(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, inputs):
        return inputs * self.w * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _saved_model(tmp_path, cls):
    model = distkeras.Sequential([layers.Dense(3, input_shape=(4,)), cls(factor=3.0)])
    x = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
    path = tmp_path / "custom.keras"
    model.save(path)
    return path, x, model.predict(x, verbose=0)


def test_load_model_custom_layer_needs_scope(tmp_path):
    path, x, want = _saved_model(tmp_path, _Scale)
    with pytest.raises(ValueError, match="_Scale"):
        distkeras.models.load_model(path)
    with utils.custom_object_scope({"_Scale": _Scale}):
        loaded = distkeras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-6)
    assert loaded.layers[-1].factor == 3.0
    loaded = distkeras.models.load_model(path, custom_objects={"_Scale": _Scale})
    np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-6)
    # The scope is gone after the with block.
    assert serialization.get_custom_object("_Scale") is None


def test_register_keras_serializable_for_load_model(tmp_path):
    @utils.register_keras_serializable(package="dk_test")
    class RegisteredScale(_Scale):
        pass

    assert serialization.get_custom_object("dk_test>RegisteredScale") is RegisteredScale
    path, x, want = _saved_model(tmp_path, RegisteredScale)
    loaded = distkeras.models.load_model(path)
    assert type(loaded.layers[-1]) is RegisteredScale
    np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-6)


def test_custom_object_scope_nests_and_restores():
    def act(x):
        return x

    with utils.custom_object_scope({"outer_fn": act}):
        with utils.CustomObjectScope({"inner_fn": act}):
            assert serialization.get_custom_object("outer_fn") is act
            assert serialization.get_custom_object("inner_fn") is act
        assert serialization.get_custom_object("inner_fn") is None
        assert distkeras.activations.get("outer_fn") is act
    assert serialization.get_custom_object("outer_fn") is None


def test_without_grad_turns_autograd_off_and_restores_it():
    seen = []

    @backend.without_grad
    def probe(x, fail=False):
        seen.append(torch.is_grad_enabled())
        if fail:
            raise RuntimeError("inside")
        return x * 2

    x = torch.ones(2, requires_grad=True)
    assert probe(x).grad_fn is None and seen == [False]
    assert torch.is_grad_enabled()
    with pytest.raises(RuntimeError, match="inside"):
        probe(x, fail=True)
    assert torch.is_grad_enabled()  # restored after an exception
    with torch.no_grad():
        probe(x)
        assert not torch.is_grad_enabled()  # a caller's no_grad stays in force
    assert probe.__name__ == "probe"
