"""The public namespace mirrors keras: the names ported programs import exist and work."""

import inspect
import json

import numpy as np
import pytest
import torch

import distkeras
from distkeras.layers import LAYER_REGISTRY
from distkeras.utils import serialization

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
    "output_size": lambda: 2,
    "scale": lambda: 1.0 / 255,
    "head_dim": lambda: 3,
    "num_query_heads": lambda: 4,
    "num_key_value_heads": lambda: 2,
    "cells": lambda: [distkeras.layers.SimpleRNNCell(2), distkeras.layers.LSTMCell(3)],
    "layers": lambda: [distkeras.layers.Rescaling(0.5), distkeras.layers.Dense(2)],
    "factor": lambda: 0.2,
    "height_factor": lambda: 0.2,
    "width_factor": lambda: 0.2,
    "height": lambda: 2,
    "width": lambda: 2,
    "max_number": lambda: 3,
}
_BY_CLASS = {
    "Bidirectional": lambda: {"layer": distkeras.layers.LSTM(2)},
    "InputLayer": lambda: {"shape": (3,)},
    "Functional": _functional,
    "Model": _functional,
    "EinsumDense": lambda: {"equation": "ab,bc->ac", "output_shape": 4, "bias_axes": "c"},
    "CategoryEncoding": lambda: {"num_tokens": 4, "output_mode": "count"},
    "Discretization": lambda: {"bin_boundaries": [0.0, 1.0, 2.5]},
    "RandomPosterization": lambda: {"factor": 4},
    "TorchModuleWrapper": lambda: {"module": torch.nn.Linear(3, 2)},
}

# Configs holding a pickled torch.nn.Module: from_config needs safe mode off.
_PICKLED = {"TorchModuleWrapper"}


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
        if name in _PICKLED:
            # A pickled torch module loads only when the user trusts the file, as in Keras.
            with pytest.raises(ValueError, match="safe_mode"):
                cls.from_config(json.loads(json.dumps(config)))
            with serialization.safe_mode_scope(False):
                clone = cls.from_config(json.loads(json.dumps(config)))
        else:
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
