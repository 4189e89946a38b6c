"""TorchModuleWrapper: a torch.nn.Module's parameters as trainable weights, fit, weight files
with the module's state_dict, and `.keras` files in both directions with Keras 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from distkeras.utils.serialization import safe_mode_scope
from tests.ops.keras_reference import import_keras


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def _module():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    )


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype("float32")
    return x, (x[:, :2] * 2.0 - x[:, 2:]).astype("float32")


def test_parameters_are_the_trainable_weights_and_fit_trains_them():
    module = _module()
    layer = layers.TorchModuleWrapper(module)
    model = distkeras.Sequential([distkeras.Input((4,)), layer])
    params = list(module.parameters())
    assert len(model.trainable_weights) == len(params)
    assert all(a is b for a, b in zip(model.trainable_weights, params))
    assert [w.shape for w in model.get_weights()] == [tuple(p.shape) for p in params]
    x, y = _data()
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # BatchNorm statistics moved while training; predict runs the module in eval() mode.
    assert not torch.allclose(module[1].running_mean, torch.zeros(8))
    model.predict(x, verbose=0)
    assert not module.training
    with torch.no_grad():
        expected = module(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)


def test_weights_file_carries_the_state_dict(tmp_path):
    x, y = _data()
    model = distkeras.Sequential([distkeras.Input((4,)), layers.TorchModuleWrapper(_module())])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    torch.manual_seed(5)
    fresh_module = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    )
    fresh = distkeras.Sequential([distkeras.Input((4,)), layers.TorchModuleWrapper(fresh_module)])
    fresh.load_weights(path)
    np.testing.assert_allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    torch.testing.assert_close(fresh_module[1].running_var, model.layers[0].module[1].running_var)


def test_keras_file_loads_here_only_outside_safe_mode(keras, tmp_path):
    x, _ = _data()
    inputs = keras.Input((4,))
    theirs = keras.Model(
        inputs, keras.layers.TorchModuleWrapper(_module(), output_shape=(None, 2))(inputs)
    )
    path = tmp_path / "keras.keras"
    theirs.save(path)
    with pytest.raises(ValueError, match="safe_mode=False"):
        distkeras.models.load_model(path)
    ours = distkeras.models.load_model(path, safe_mode=False)
    np.testing.assert_allclose(
        ours.predict(x, verbose=0), np.asarray(theirs.predict(x, verbose=0)), atol=1e-6
    )


def test_our_file_loads_in_keras(keras, tmp_path):
    x, y = _data()
    model = distkeras.Sequential([distkeras.Input((4,)), layers.TorchModuleWrapper(_module())])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "ours.keras"
    model.save(path)
    theirs = keras.models.load_model(path, safe_mode=False)
    np.testing.assert_allclose(
        np.asarray(theirs.predict(x, verbose=0)), model.predict(x, verbose=0), atol=1e-6
    )


def test_config_round_trip_needs_unsafe_mode(keras):
    layer = layers.TorchModuleWrapper(torch.nn.Linear(3, 2), output_shape=(None, 2))
    config = layer.get_config()
    assert set(config) == set(keras.layers.TorchModuleWrapper(torch.nn.Linear(3, 2)).get_config())
    with pytest.raises(ValueError, match="arbitrary code execution"):
        layers.TorchModuleWrapper.from_config(config)
    with safe_mode_scope(False):
        clone = layers.TorchModuleWrapper.from_config(config)
    torch.testing.assert_close(clone.module.weight, layer.module.weight)
    assert clone.compute_output_shape((None, 3)) == (None, 2)


def test_refuses_what_it_cannot_wrap():
    with pytest.raises(ValueError, match="torch.nn.Module"):
        layers.TorchModuleWrapper(lambda x: x)
    with pytest.raises(ValueError, match="LazyModules"):
        layers.TorchModuleWrapper(torch.nn.LazyLinear(3))
