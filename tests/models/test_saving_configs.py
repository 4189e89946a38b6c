"""What a saved model's config must carry: functional configs through Model.from_config,
Keras objects inside a custom get_config(), and compile state made of loss/metric/optimizer
objects, in both directions between distkeras and Keras 3."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import distkeras
from distkeras import layers
from tests.ops.keras_reference import import_keras

X = np.random.default_rng(0).standard_normal((6, 3)).astype("float32")
Y = np.array([0, 1, 2, 1, 0, 2])


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def _functional(lib):
    inputs = lib.Input((3,), name="features")
    return lib.Model(inputs, lib.layers.Dense(3, name="logits")(lib.layers.Dense(4)(inputs)))


def test_model_from_config_rebuilds_a_functional_model():
    model = _functional(distkeras)
    rebuilt = distkeras.Model.from_config(model.get_config())
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt.predict(X, verbose=0), model.predict(X, verbose=0))


def test_model_subclass_from_config_keeps_its_class():
    class Tagged(distkeras.Model):
        def predict_step(self, data):
            return super().predict_step(data) * 0 + 7

    inputs = distkeras.Input((3,))
    model = Tagged(inputs, layers.Dense(2)(inputs))
    rebuilt = Tagged.from_config(model.get_config())
    assert isinstance(rebuilt, Tagged)
    np.testing.assert_array_equal(rebuilt.predict(X, verbose=0), np.full((6, 2), 7.0))


def _custom_layer(lib):
    @lib.saving.register_keras_serializable(package="ConfigTest")
    class Scaled(lib.layers.Layer):
        def __init__(self, units=2, regularizer=None, initializer="ones", inner=None, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.regularizer = lib.regularizers.get(regularizer)
            self.initializer = lib.initializers.get(initializer)
            self.inner = inner if inner is not None else lib.layers.Dense(units)

        def call(self, x):
            return self.inner(x) * 2

        def get_config(self):
            return {
                **super().get_config(),
                "units": self.units,
                "regularizer": self.regularizer,
                "initializer": self.initializer,
                "inner": self.inner,
            }

        @classmethod
        def from_config(cls, config):
            config["inner"] = lib.layers.deserialize(config["inner"])
            return cls(**config)

    return Scaled


def test_keras_objects_in_a_custom_get_config_save_as_keras_writes_them(keras, tmp_path):
    ours_cls = _custom_layer(distkeras)
    model = distkeras.Sequential(
        [distkeras.Input((3,)), ours_cls(2, regularizer=distkeras.regularizers.L2(0.1))]
    )
    path = tmp_path / "custom.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))["config"]["layers"][1]["config"]
    assert config["regularizer"]["module"] == "keras.regularizers"
    assert config["regularizer"]["config"] == {"l2": pytest.approx(0.1)}
    assert config["initializer"]["class_name"] == "Ones"
    assert config["inner"]["class_name"] == "Dense" and config["inner"]["module"] == "keras.layers"
    expected = model.predict(X, verbose=0)
    loaded = distkeras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), expected, atol=1e-6)
    _custom_layer(keras)  # the same class, registered under the same name on the Keras side
    theirs = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(theirs.predict(X, verbose=0)), expected, atol=1e-5)


def _compiled(lib):
    model = _functional(lib)
    model.compile(
        optimizer=lib.optimizers.Adam(learning_rate=0.01),
        loss=lib.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[lib.metrics.SparseCategoricalAccuracy(), "sparse_categorical_crossentropy"],
    )
    model.fit(X, Y, epochs=1, verbose=0)
    return model


@pytest.mark.parametrize(
    ("writer", "reader"),
    [("distkeras", "distkeras"), ("keras", "distkeras"), ("distkeras", "keras")],
)
def test_compile_state_with_objects_round_trips(keras, tmp_path, writer, reader):
    libs = {"distkeras": distkeras, "keras": keras}
    model = _compiled(libs[writer])
    expected = model.evaluate(X, Y, verbose=0, return_dict=True)
    path = tmp_path / "compiled.keras"
    model.save(path)
    loaded = libs[reader].models.load_model(path)
    got = loaded.evaluate(X, Y, verbose=0, return_dict=True)
    assert set(got) == set(expected)
    for name in expected:
        assert got[name] == pytest.approx(expected[name], rel=1e-5), name
    assert type(loaded.optimizer).__name__ == "Adam"
    assert float(np.asarray(loaded.optimizer.learning_rate)) == pytest.approx(0.01)
