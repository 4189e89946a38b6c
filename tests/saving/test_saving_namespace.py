"""``distkeras.saving`` against ``keras.saving``: the same dicts out, each library reading the
other's, custom objects registered the same way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import saving
from tests.ops.keras_reference import import_keras


@pytest.fixture(scope="module")
def keras():
    return import_keras()


# name -> how to build the object in either library (lib is keras or distkeras)
OBJECTS = {
    "dense": lambda lib: lib.layers.Dense(3, activation="relu", kernel_regularizer="l2"),
    "conv": lambda lib: lib.layers.Conv2D(4, 3, padding="same"),
    "loss": lambda lib: lib.losses.SparseCategoricalCrossentropy(from_logits=True),
    "metric": lambda lib: lib.metrics.SparseCategoricalAccuracy(),
    "initializer": lambda lib: lib.initializers.GlorotUniform(seed=3),
    "regularizer": lambda lib: lib.regularizers.L2(0.1),
    "constraint": lambda lib: lib.constraints.MaxNorm(2.0),
    "optimizer": lambda lib: lib.optimizers.Adam(learning_rate=0.01),
}


def _strip_volatile(spec):
    """Names carry a per-process counter, Keras's optimizer module is its torch class, and
    keys holding None are defaults either library may leave out."""
    if isinstance(spec, dict):
        return {
            k: _strip_volatile(v)
            for k, v in spec.items()
            if v is not None and k not in ("name", "module", "registered_name")
        }
    return spec


def _assert_config_covers(ours: dict, theirs: dict):
    """Every key Keras writes is there with Keras's value. Extra keys of ours (a loss's
    ``axis``) must be arguments Keras accepts: the round-trip test below loads them in Keras."""
    ours, theirs = _strip_volatile(ours), _strip_volatile(theirs)
    missing = {k: v for k, v in theirs.items() if k not in ours}
    assert not missing, f"keys Keras writes that we do not: {missing}"
    assert {k: ours[k] for k in theirs} == theirs


@pytest.mark.parametrize("kind", sorted(OBJECTS))
def test_serialize_keras_object_writes_what_keras_writes(keras, kind):
    ours = saving.serialize_keras_object(OBJECTS[kind](distkeras))
    theirs = keras.saving.serialize_keras_object(OBJECTS[kind](keras))
    assert ours["class_name"] == theirs["class_name"]
    _assert_config_covers(ours["config"], theirs["config"])


@pytest.mark.parametrize("kind", sorted(OBJECTS))
def test_keras_dicts_deserialize_here_and_ours_in_keras(keras, kind):
    theirs = keras.saving.serialize_keras_object(OBJECTS[kind](keras))
    rebuilt = saving.deserialize_keras_object(theirs)
    assert type(rebuilt).__name__ == theirs["class_name"]
    assert type(rebuilt).__module__.startswith("distkeras.")
    back = keras.saving.deserialize_keras_object(saving.serialize_keras_object(rebuilt))
    assert type(back).__name__ == theirs["class_name"]
    _assert_config_covers(back.get_config(), theirs["config"])


def test_functions_serialize_by_name_like_keras(keras):
    assert saving.serialize_keras_object(distkeras.activations.relu) == (
        keras.saving.serialize_keras_object(keras.activations.relu)
    )
    assert saving.deserialize_keras_object("relu") is distkeras.activations.relu
    assert saving.serialize_keras_object([1, "a", None]) == [1, "a", None]


def test_registered_custom_layer_round_trips_through_a_model_file(tmp_path):
    @saving.register_keras_serializable(package="SavingTest")
    class Scale(distkeras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    assert saving.get_registered_name(Scale) == "SavingTest>Scale"
    assert saving.get_registered_object("SavingTest>Scale") is Scale
    assert saving.get_custom_objects()["SavingTest>Scale"] is Scale
    spec = saving.serialize_keras_object(Scale(3.0))
    assert spec["registered_name"] == "SavingTest>Scale"
    assert saving.deserialize_keras_object(spec).factor == 3.0

    model = distkeras.Sequential([distkeras.Input((2,)), Scale(3.0)])
    path = tmp_path / "m.keras"
    saving.save_model(model, path)
    loaded = saving.load_model(path)
    x = np.ones((1, 2), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), 3 * x)


def test_custom_object_scope_and_get_registered_object():
    def my_activation(x):
        return torch.tanh(x)

    assert saving.get_registered_object("my_activation") is None
    with saving.custom_object_scope({"my_activation": my_activation}):
        assert saving.get_registered_object("my_activation") is my_activation
    assert saving.get_registered_object("x", module_objects={"x": 1}) == 1
    assert saving.get_registered_object("x", custom_objects={"x": 2}) == 2


def test_bad_input_names_what_was_wrong():
    with pytest.raises(TypeError, match="cannot serialize"):
        saving.serialize_keras_object(object())
    with pytest.raises(TypeError, match="unsupported arguments"):
        saving.deserialize_keras_object({"class_name": "Dense"}, printer=True)
