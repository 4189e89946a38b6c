"""The `.keras` format and `.weights.h5` files: Keras 3's layout, round trips, safety, errors."""

import io
import json
import os
import pathlib
import zipfile

import h5py
import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from distkeras.models import saving
from distkeras.utils import register_keras_serializable

DATA = pathlib.Path(__file__).parent / "data"


def run(model, *inputs):
    tensors = [torch.as_tensor(x) for x in inputs]
    with torch.no_grad():
        out = model(tensors if len(tensors) > 1 else tensors[0], training=False)
    if isinstance(out, (list, tuple)):
        return [o.numpy() for o in out]
    return out.numpy()


def rand(*shape, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, shape).astype("float32")


def archive(path):
    with zipfile.ZipFile(path) as zf:
        config = json.loads(zf.read("config.json"))
        metadata = json.loads(zf.read("metadata.json"))
        weights = zf.read("model.weights.h5")
    return config, metadata, weights


def h5_datasets(data) -> dict:
    out = {}
    with h5py.File(io.BytesIO(data) if isinstance(data, bytes) else data, "r") as h5:
        h5.visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return out


def mlp():
    return distkeras.Sequential(
        [
            distkeras.Input((4,)),
            layers.Dense(3, activation="relu", name="hidden"),
            layers.Dense(2, activation="softmax", name="probs"),
        ],
        name="mlp",
    )


# ------------------------------------------------------------------------- Sequential
def test_sequential_keras_file_layout_and_round_trip(tmp_path):
    model = mlp()
    path = tmp_path / "mlp.keras"
    model.save(path)
    config, metadata, weights = archive(path)

    assert set(metadata) >= {"keras_version", "date_saved"}
    assert {k: config[k] for k in ("module", "class_name", "registered_name")} == {
        "module": "keras",
        "class_name": "Sequential",
        "registered_name": None,
    }
    assert config["build_config"] == {"input_shape": [None, 4]}
    entries = config["config"]["layers"]
    assert entries[0]["class_name"] == "InputLayer"
    assert entries[0]["config"]["batch_shape"] == [None, 4]
    assert [e["config"]["name"] for e in entries[1:]] == ["hidden", "probs"]
    assert entries[1]["module"] == "keras.layers"
    assert entries[1]["build_config"] == {"input_shape": [None, 4]}

    # Groups are named by class and position, values are in Keras layout.
    stored = h5_datasets(weights)
    kernel, bias, kernel2, bias2 = model.get_weights()
    assert sorted(stored) == [
        "layers/dense/vars/0",
        "layers/dense/vars/1",
        "layers/dense_1/vars/0",
        "layers/dense_1/vars/1",
    ]
    np.testing.assert_array_equal(stored["layers/dense/vars/0"], kernel)
    np.testing.assert_array_equal(stored["layers/dense_1/vars/1"], bias2)

    loaded = distkeras.models.load_model(path)
    assert type(loaded) is distkeras.Sequential and loaded.name == "mlp"
    assert [layer.name for layer in loaded.layers] == ["hidden", "probs"]
    x = rand(6, 4)
    np.testing.assert_array_equal(run(loaded, x), run(model, x))


def test_small_cnn_round_trip(tmp_path):
    model = distkeras.Sequential(
        [
            distkeras.Input((8, 8, 1)),
            layers.Conv2D(2, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(3),
        ]
    )
    path = tmp_path / "cnn.keras"
    model.save(path)
    stored = h5_datasets(archive(path)[2])
    assert stored["layers/conv2d/vars/0"].shape == (3, 3, 1, 2)  # Keras's kernel layout
    loaded = distkeras.models.load_model(path)
    x = rand(2, 8, 8, 1)
    np.testing.assert_array_equal(run(loaded, x), run(model, x))


# ------------------------------------------------------------------------- functional
def two_input_model():
    a = distkeras.Input((4,), name="a")
    b = distkeras.Input((4,), name="b")
    shared = layers.Dense(3, activation="relu", name="shared")
    ha, hb = shared(a), shared(b)
    out1 = layers.Dense(1, name="o1")(layers.Concatenate(name="concatenate")([ha, hb]))
    inner_in = distkeras.Input((3,), name="inner_in")
    inner = distkeras.Model(inner_in, layers.Dense(2, name="inner_dense")(inner_in), name="inner")
    return distkeras.Model([a, b], [out1, inner(hb)], name="two")


def test_functional_config_layout(tmp_path):
    model = two_input_model()
    path = tmp_path / "two.keras"
    model.save(path)
    config, _, weights = archive(path)
    assert config["class_name"] == "Functional"
    assert config["registered_name"] == "Functional"
    inner = config["config"]
    by_name = {entry["name"]: entry for entry in inner["layers"]}
    assert list(by_name) == ["a", "b", "shared", "concatenate", "o1", "inner"]
    assert by_name["a"]["inbound_nodes"] == []
    shared_nodes = by_name["shared"]["inbound_nodes"]
    assert [n["args"][0]["config"]["keras_history"] for n in shared_nodes] == [
        ["a", 0, 0],
        ["b", 0, 0],
    ]
    assert shared_nodes[0]["args"][0] == {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None, 4], "dtype": "float32", "keras_history": ["a", 0, 0]},
    }
    concat_args = by_name["concatenate"]["inbound_nodes"][0]["args"][0]
    assert [t["config"]["keras_history"] for t in concat_args] == [
        ["shared", 0, 0],
        ["shared", 1, 0],
    ]
    assert inner["input_layers"] == [["a", 0, 0], ["b", 0, 0]]
    # A nested functional model's calls are counted from 1, as Keras counts them.
    assert inner["output_layers"] == [["o1", 0, 0], ["inner", 1, 0]]
    assert by_name["inner"]["config"]["input_layers"] == ["inner_in", 0, 0]
    assert sorted(k for k in h5_datasets(weights)) == [
        "layers/dense/vars/0",
        "layers/dense/vars/1",
        "layers/dense_1/vars/0",
        "layers/dense_1/vars/1",
        "layers/functional/layers/dense/vars/0",
        "layers/functional/layers/dense/vars/1",
    ]


def test_functional_shared_and_nested_round_trip(tmp_path):
    model = two_input_model()
    path = tmp_path / "two.keras"
    model.save(path)
    loaded = distkeras.models.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert len(loaded.get_layer("shared")._inbound_nodes) == 2
    assert isinstance(loaded.get_layer("inner"), distkeras.models.Functional)
    xa, xb = rand(5, 4, seed=1), rand(5, 4, seed=2)
    for got, want in zip(run(loaded, xa, xb), run(model, xa, xb)):
        np.testing.assert_array_equal(got, want)


def test_nested_sequential_in_functional(tmp_path):
    block = distkeras.Sequential([distkeras.Input((4,)), layers.Dense(3)], name="block")
    x_in = distkeras.Input((4,))
    model = distkeras.Model(x_in, layers.Dense(1)(block(x_in)))
    path = tmp_path / "nested.keras"
    model.save(path)
    assert "layers/sequential/layers/dense/vars/0" in h5_datasets(archive(path)[2])
    loaded = distkeras.models.load_model(path)
    x = rand(3, 4)
    np.testing.assert_array_equal(run(loaded, x), run(model, x))


def test_get_config_from_config_and_json_round_trips():
    for model in (mlp(), two_input_model()):
        config = model.get_config()
        clone = type(model).from_config(json.loads(json.dumps(config)))
        assert clone.get_config() == config
        from_json = distkeras.models.model_from_json(model.to_json())
        assert [w.shape for w in from_json.get_weights()] == [w.shape for w in model.get_weights()]


def test_reads_a_file_written_by_keras(tmp_path):
    """config.json as Keras 3.15 wrote it (InputLayer `ragged`/`optional`, `mask` kwargs of a
    nested model call); weights laid out by hand in Keras's groups."""
    config = json.loads((DATA / "keras_functional_config.json").read_text())
    arrays = {
        "layers/dense/vars/0": rand(4, 3, seed=1),
        "layers/dense/vars/1": rand(3, seed=2),
        "layers/dense_1/vars/0": rand(6, 1, seed=3),
        "layers/dense_1/vars/1": rand(1, seed=4),
        "layers/functional/layers/dense/vars/0": rand(3, 2, seed=5),
        "layers/functional/layers/dense/vars/1": rand(2, seed=6),
    }
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        for name, value in arrays.items():
            h5[name] = value
    path = tmp_path / "from_keras.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1", "date_saved": "x"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", buffer.getvalue())
    model = distkeras.models.load_model(path)
    xa, xb = rand(3, 4, seed=7), rand(3, 4, seed=8)
    ha = xa @ arrays["layers/dense/vars/0"] + arrays["layers/dense/vars/1"]
    hb = xb @ arrays["layers/dense/vars/0"] + arrays["layers/dense/vars/1"]
    want1 = np.concatenate([ha, hb], 1) @ arrays["layers/dense_1/vars/0"]
    want1 += arrays["layers/dense_1/vars/1"]
    want2 = hb @ arrays["layers/functional/layers/dense/vars/0"]
    want2 += arrays["layers/functional/layers/dense/vars/1"]
    out1, out2 = run(model, xa, xb)
    np.testing.assert_allclose(out1, want1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out2, want2, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------- subclassed
class Tower(distkeras.Model):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.zeta = layers.Dense(units, activation="relu")
        self.alpha = layers.Dense(2)
        self.blocks = torch.nn.ModuleList([layers.Dense(2), layers.BatchNormalization()])

    def call(self, inputs, training=None):
        x = self.alpha(self.zeta(inputs))
        for block in self.blocks:
            x = block(x, training=training)
        return x


@register_keras_serializable(package="tests")
class ConfigTower(Tower):
    def get_config(self):
        return {**super().get_config(), "units": self.units}


def randomize(model, seed=0):
    rng = np.random.RandomState(seed)
    model.set_weights(
        [rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in model.get_weights()]
    )


def test_subclassed_save_weights_load_weights(tmp_path):
    model = Tower()
    x = rand(4, 5)
    run(model, x)
    randomize(model)
    path = tmp_path / "tower.weights.h5"
    model.save_weights(path)
    # Attributes in alphabetical order, `layers` among them, each object stored once: the
    # same groups Keras writes for this model.
    assert sorted({name.rsplit("/", 1)[0] for name in h5_datasets(str(path))}) == [
        "alpha/vars",
        "blocks/batch_normalization/vars",
        "blocks/dense/vars",
        "layers/dense/vars",
    ]
    restored = Tower()
    run(restored, x)
    restored.load_weights(path)
    np.testing.assert_array_equal(run(restored, x), run(model, x))


def test_subclassed_keras_file_with_get_config(tmp_path):
    model = ConfigTower(units=4)
    x = rand(3, 5)
    run(model, x)
    randomize(model, seed=3)
    path = tmp_path / "tower.keras"
    model.save(path)
    config = archive(path)[0]
    assert config["registered_name"] == "tests>ConfigTower"
    assert config["build_config"] == {"input_shape": [3, 5]}
    loaded = distkeras.models.load_model(path)
    assert type(loaded) is ConfigTower and loaded.units == 4
    np.testing.assert_array_equal(run(loaded, x), run(model, x))


@register_keras_serializable(package="tests")
class StackOfLayers(distkeras.Sequential):
    pass


def test_sequential_subclass_keeps_its_class(tmp_path):
    model = StackOfLayers([distkeras.Input((4,)), layers.Dense(2)])
    path = tmp_path / "stack.keras"
    model.save(path)
    loaded = distkeras.models.load_model(path)
    assert type(loaded) is StackOfLayers
    x = rand(2, 4)
    np.testing.assert_array_equal(run(loaded, x), run(model, x))


def test_unregistered_class_needs_custom_objects(tmp_path):
    class LocalTower(Tower):
        def get_config(self):
            return {**super().get_config(), "units": self.units}

    model = LocalTower()
    x = rand(2, 5)
    run(model, x)
    path = tmp_path / "local.keras"
    model.save(path)
    with pytest.raises(ValueError, match=r"Could not locate class 'LocalTower'.*custom_objects"):
        distkeras.models.load_model(path)
    loaded = distkeras.models.load_model(path, custom_objects={"LocalTower": LocalTower})
    np.testing.assert_array_equal(run(loaded, x), run(model, x))


# -------------------------------------------------------------------- compile, optimizer
def test_compile_config_is_stored_and_replayed(tmp_path, monkeypatch):
    model = mlp()
    model._compile_config = {"optimizer": "sgd", "loss": "mse", "metrics": ["mae"]}
    path = tmp_path / "compiled.keras"
    model.save(path)
    assert archive(path)[0]["compile_config"] == model._compile_config
    calls = []
    monkeypatch.setattr(distkeras.Sequential, "compile", lambda self, **kw: calls.append(kw))
    distkeras.models.load_model(path, compile=False)
    assert calls == []
    distkeras.models.load_model(path)
    assert calls == [{"optimizer": "sgd", "loss": "mse", "metrics": ["mae"]}]


def test_optimizer_state_round_trip(tmp_path):
    model = mlp()
    model.compile(optimizer="adam", loss="mse")
    optimizer = model.optimizer
    optimizer.build(model.trainable_weights)
    rng = np.random.RandomState(0)
    values = [
        rng.uniform(0, 1, tuple(v.shape)).astype(v.numpy().dtype) for v in optimizer.variables
    ]
    values[0] = np.array(7, dtype=values[0].dtype)  # iterations
    optimizer.set_variables(values)
    path = tmp_path / "opt.keras"
    model.save(path)
    stored = h5_datasets(archive(path)[2])
    assert stored["optimizer/vars/0"] == 7
    # Slots of the (stored-transposed) Dense kernel are written in Keras's (in, out) layout.
    assert stored["optimizer/vars/2"].shape == (4, 3)
    loaded = distkeras.models.load_model(path)
    for got, want in zip(loaded.optimizer.variables, optimizer.variables):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    # load_weights into a freshly compiled model builds its optimizer and restores the state.
    fresh = mlp()
    fresh.compile(optimizer="adam", loss="mse")
    fresh.load_weights(path)
    assert int(fresh.optimizer.iterations) == 7
    for got, want in zip(fresh.optimizer.variables, optimizer.variables):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    model.save(tmp_path / "no_opt.keras", include_optimizer=False)
    assert not any(
        k.startswith("optimizer") for k in h5_datasets(archive(tmp_path / "no_opt.keras")[2])
    )


# ------------------------------------------------------------------------------ safety
def test_lambda_bytecode_needs_safe_mode_off(tmp_path):
    model = distkeras.Sequential(
        [distkeras.Input((3,)), layers.Lambda(lambda t: t * 2 + 1, name="affine")]
    )
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ValueError, match=r"layer 'affine' stores Python bytecode.*safe_mode=False"):
        distkeras.models.load_model(path)
    with pytest.raises(ValueError, match="stores Python bytecode"):
        distkeras.models.model_from_json(model.to_json())
    loaded = distkeras.models.load_model(path, safe_mode=False)
    x = rand(2, 3)
    np.testing.assert_allclose(run(loaded, x), x * 2 + 1, rtol=1e-6)


class Unserializable(layers.Layer):
    def get_config(self):
        return {**super().get_config(), "handle": object()}


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "model.keras"
    good = mlp()
    good.save(path)
    before = path.read_bytes()
    bad = distkeras.Sequential([distkeras.Input((4,)), Unserializable(name="weird")])
    with pytest.raises(TypeError, match="layer 'weird'"):
        bad.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.keras"]  # no temporary file left behind
    x = rand(2, 4)
    np.testing.assert_array_equal(run(distkeras.models.load_model(path), x), run(good, x))


class NumpyConfig(layers.Layer):
    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs):
        return inputs * float(self.scale)

    def get_config(self):
        return {**super().get_config(), "scale": np.float32(self.scale)}


def test_numpy_scalars_in_a_config_are_written_as_numbers(tmp_path):
    model = distkeras.Sequential([distkeras.Input((2,)), NumpyConfig(2.5, name="scaled")])
    path = tmp_path / "np.keras"
    model.save(path)
    assert archive(path)[0]["config"]["layers"][1]["config"]["scale"] == 2.5
    loaded = distkeras.models.load_model(path, custom_objects={"NumpyConfig": NumpyConfig})
    np.testing.assert_allclose(run(loaded, np.ones((1, 2), "float32")), [[2.5, 2.5]])


def test_failure_while_writing_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    mlp().save(path)
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        mlp().save(path)
    with pytest.raises(OSError, match="No space left"):
        mlp().save_weights(tmp_path / "w.weights.h5")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.keras"]


def test_overwrite_false_raises(tmp_path):
    path = tmp_path / "model.keras"
    mlp().save(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        mlp().save(path, overwrite=False)
    assert path.read_bytes() == before
    weights_path = tmp_path / "w.weights.h5"
    mlp().save_weights(weights_path)
    with pytest.raises(FileExistsError, match="overwrite"):
        mlp().save_weights(weights_path, overwrite=False)


def test_file_errors(tmp_path):
    model = mlp()
    with pytest.raises(ValueError, match="File not found"):
        distkeras.models.load_model(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match=r"\.keras"):
        model.save(tmp_path / "m.h5")
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        model.save_weights(tmp_path / "m.h5")
    (tmp_path / "legacy.h5").write_bytes(b"\x89HDF\r\n")
    with pytest.raises(ValueError, match="legacy"):
        distkeras.models.load_model(tmp_path / "legacy.h5")
    (tmp_path / "text.keras").write_text("not a zip")
    with pytest.raises(ValueError, match="not a valid .keras file"):
        distkeras.models.load_model(tmp_path / "text.keras")
    model.save(tmp_path / "full.keras")
    data = (tmp_path / "full.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        distkeras.models.load_model(tmp_path / "cut.keras")
    config, metadata, _ = archive(tmp_path / "full.keras")
    with zipfile.ZipFile(tmp_path / "badweights.keras", "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", json.dumps(metadata))
        zf.writestr("model.weights.h5", b"garbage")
    with pytest.raises(ValueError, match="not a valid HDF5 file"):
        distkeras.models.load_model(tmp_path / "badweights.keras")


def test_mismatched_weights_name_layer_and_shapes(tmp_path):
    source = mlp()
    path = tmp_path / "w.weights.h5"
    source.save_weights(path)
    other = distkeras.Sequential(
        [distkeras.Input((4,)), layers.Dense(3, name="same"), layers.Dense(5, name="wide")]
    )
    before = other.get_weights()
    with pytest.raises(ValueError, match=r"Layer 'wide'.*\('kernel', \(3, 5\)\).*\(3, 2\)"):
        other.load_weights(path)
    # Nothing is half-loaded after an error.
    for got, want in zip(other.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    bigger = distkeras.Sequential([distkeras.Input((4,)), layers.Dense(3), layers.Dense(2)])
    bigger.add(layers.Dense(2))
    with pytest.raises(ValueError, match="Layer 'dense"):
        bigger.load_weights(path)
    smaller = distkeras.Sequential([distkeras.Input((4,)), layers.Dense(3)])
    with pytest.raises(ValueError, match=r"does not have"):
        smaller.load_weights(path)
    with pytest.warns(UserWarning, match="skip"):
        other.load_weights(path, skip_mismatch=True)
    np.testing.assert_array_equal(other.get_weights()[0], source.get_weights()[0])
    np.testing.assert_array_equal(other.get_weights()[2], before[2])


def test_load_weights_from_keras_archive_and_weights_file(tmp_path):
    model = mlp()
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    x = rand(3, 4)
    for name in ("m.keras", "m.weights.h5"):
        other = mlp()
        other.load_weights(tmp_path / name)
        np.testing.assert_array_equal(run(other, x), run(model, x))
    with pytest.raises(ValueError, match="legacy"):
        mlp().load_weights(tmp_path / "m.h5")


def test_saving_module_functions_match_methods(tmp_path):
    model = mlp()
    saving.save_model(model, tmp_path / "a.keras")
    model.save(tmp_path / "b.keras")
    assert archive(tmp_path / "a.keras")[0] == archive(tmp_path / "b.keras")[0]
