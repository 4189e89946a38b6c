"""Small real models and data shared by the callback tests."""

from __future__ import annotations

import numpy as np

import distkeras
from distkeras import callbacks, layers


def make_data(n: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def make_model(optimizer="sgd", units: int = 4):
    model = distkeras.Sequential(
        [layers.Input((3,)), layers.Dense(units, activation="relu"), layers.Dense(1)]
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def inject(key: str, values):
    """A callback writing ``values[epoch]`` into the epoch logs (place it before the one
    under test): fixes the monitored sequence so the expected decisions are known."""

    def on_epoch_end(epoch, logs):
        logs[key] = float(values[epoch])

    return callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


def record_weights():
    """(callback, list): the list gets the model's weights at the end of every epoch."""
    seen = []
    holder = {}

    def on_train_begin(logs):
        seen.clear()

    def on_epoch_end(epoch, logs):
        seen.append([w.copy() for w in holder["cb"].model.get_weights()])

    cb = callbacks.LambdaCallback(on_train_begin=on_train_begin, on_epoch_end=on_epoch_end)
    holder["cb"] = cb
    return cb, seen


def assert_weights_equal(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
