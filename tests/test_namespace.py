"""The public namespace mirrors keras: the names ported programs import exist and work."""

import inspect
import json

import numpy as np
import pytest

import distkeras
from distkeras.layers import LAYER_REGISTRY

TOP_LEVEL = [
    "Sequential",
    "Model",
    "Input",
    "layers",
    "models",
    "optimizers",
    "losses",
    "metrics",
    "callbacks",
    "regularizers",
    "initializers",
    "constraints",
    "activations",
    "utils",
    "datasets",
    "distributed",
]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_names(name):
    assert getattr(distkeras, name) is not None
    assert name in distkeras.__all__


def test_models_and_utils_names():
    from distkeras.models import Model, Sequential, load_model

    assert Sequential is distkeras.Sequential and Model is distkeras.Model
    assert callable(load_model)
    assert callable(distkeras.utils.to_categorical)
    assert distkeras.utils.set_random_seed is distkeras.backend.set_random_seed
    for name in ("rank", "world_size", "local_rank", "is_chief", "barrier", "init"):
        assert callable(getattr(distkeras.distributed, name)), name
    for name in ("mnist", "digits"):
        assert callable(getattr(distkeras.datasets, name).load_data)


def test_seed_program_import_style_runs():
    """The seed tutorial's imports and a CNN built from them, end to end on tiny data."""
    from distkeras.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from distkeras.models import Sequential

    model = Sequential()
    model.add(Conv2D(4, kernel_size=(3, 3), activation="relu", input_shape=(8, 8, 1)))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Flatten())
    model.add(Dense(3, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((12, 8, 8, 1)).astype("float32")
    y = distkeras.utils.to_categorical(rng.integers(0, 3, 12), 3)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    assert model.predict(x, verbose=0).shape == (12, 3)
    assert model.count_params() == (3 * 3 * 1 * 4 + 4) + (3 * 3 * 4 * 3 + 3)


# ----------------------------------------------------------------- layer config round trips
def _identity(x):
    return x


def _functional():
    inputs = distkeras.Input((3,))
    return {"inputs": inputs, "outputs": distkeras.layers.Dense(2)(inputs)}


# Required arguments by name; classes needing a specific value are listed below.
_BY_ARGUMENT = {
    "activation": lambda: "gelu",
    "units": lambda: 2,
    "filters": lambda: 2,
    "kernel_size": lambda: 3,
    "rate": lambda: 0.5,
    "stddev": lambda: 0.1,
    "axes": lambda: 1,
    "input_dim": lambda: 5,
    "output_dim": lambda: 2,
    "num_heads": lambda: 2,
    "key_dim": lambda: 3,
    "dims": lambda: (2, 1),
    "n": lambda: 2,
    "target_shape": lambda: (2, 3),
    "cell": lambda: distkeras.layers.SimpleRNNCell(2),
    "layer": lambda: distkeras.layers.Dense(2),
    "function": lambda: _identity,
    "shape": lambda: (3,),
    "num_bins": lambda: 4,
}
_BY_CLASS = {
    "Bidirectional": lambda: {"layer": distkeras.layers.LSTM(2)},
    "InputLayer": lambda: {"shape": (3,)},
    "Functional": _functional,
    "Model": _functional,
}


def _minimal_kwargs(name, cls):
    if name in _BY_CLASS:
        return _BY_CLASS[name]()
    kwargs = {}
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if param.default is param.empty and param.kind in (
            param.POSITIONAL_OR_KEYWORD,
            param.KEYWORD_ONLY,
        ):
            assert param.name in _BY_ARGUMENT, f"{name}: no test value for {param.name!r}"
            kwargs[param.name] = _BY_ARGUMENT[param.name]()
    return kwargs


@pytest.mark.parametrize("name", sorted(LAYER_REGISTRY))
def test_layer_config_round_trip(name):
    cls = LAYER_REGISTRY[name]
    layer = cls(**_minimal_kwargs(name, cls))
    config = layer.get_config()
    json.dumps(config)  # configs are JSON-able, as Keras writes them to config.json
    with distkeras.utils.custom_object_scope({"_identity": _identity}):
        clone = cls.from_config(json.loads(json.dumps(config)))
    assert type(clone) is type(layer)
    assert clone.get_config() == config


def test_layer_registry_names_are_public():
    """Every class name a config may hold resolves to the public class of that name."""
    from distkeras import models

    model_names = {"Functional": models.Functional, "Model": models.Functional}
    model_names["Sequential"] = models.Sequential
    for name, cls in LAYER_REGISTRY.items():
        if name in model_names:
            assert cls is model_names[name]
        else:
            assert getattr(distkeras.layers, name) is cls, name
    assert distkeras.models.Model is distkeras.Model
