"""Keras's small contracts: callbacks get ``logs={}`` (never None) where Keras passes an
empty dict, and boolean targets work in losses and accuracy metrics, cast as Keras does."""

from __future__ import annotations

import numpy as np
import pytest

import distkeras
from tests.ops.keras_reference import assert_same, import_keras

BEGIN_HOOKS = [
    "on_train_begin",
    "on_epoch_begin",
    "on_train_batch_begin",
    "on_test_begin",
    "on_test_batch_begin",
    "on_predict_begin",
    "on_predict_batch_begin",
    "on_predict_end",
]


def recorder_for(lib):
    """A callback of ``lib`` recording the logs each begin hook receives."""

    class Recorder(lib.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = {}

        def _record(self, hook, logs):
            self.seen.setdefault(hook, []).append(logs)

        def on_train_begin(self, logs=None):
            self._record("on_train_begin", logs)

        def on_epoch_begin(self, epoch, logs=None):
            self._record("on_epoch_begin", logs)

        def on_train_batch_begin(self, batch, logs=None):
            self._record("on_train_batch_begin", logs)

        def on_test_begin(self, logs=None):
            self._record("on_test_begin", logs)

        def on_test_batch_begin(self, batch, logs=None):
            self._record("on_test_batch_begin", logs)

        def on_predict_begin(self, logs=None):
            self._record("on_predict_begin", logs)

        def on_predict_batch_begin(self, batch, logs=None):
            self._record("on_predict_batch_begin", logs)

        def on_predict_end(self, logs=None):
            self._record("on_predict_end", logs)

    return Recorder()


def _run(lib, recorder):
    x = np.ones((4, 2), "float32")
    model = lib.Sequential([lib.Input((2,)), lib.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x[:, :1], batch_size=2, epochs=1, verbose=0, callbacks=[recorder],
              validation_data=(x, x[:, :1]))  # fmt: skip
    model.predict(x, batch_size=2, verbose=0, callbacks=[recorder])
    return recorder.seen


def test_begin_hooks_receive_an_empty_dict_as_in_keras():
    keras = import_keras()
    ours = _run(distkeras, recorder_for(distkeras))
    theirs = _run(keras, recorder_for(keras))
    assert sorted(ours) == sorted(theirs) == sorted(BEGIN_HOOKS)
    for hook in BEGIN_HOOKS:
        assert ours[hook] == theirs[hook], hook
        assert all(logs == {} and isinstance(logs, dict) for logs in ours[hook]), hook


Y_BOOL = np.array([[True], [False], [True], [False], [True]])
P_BINARY = np.array([[0.8], [0.3], [0.4], [0.1], [0.55]], "float32")
LOSSES = [
    "binary_crossentropy", "binary_focal_crossentropy", "mean_squared_error",
    "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
    "hinge", "squared_hinge", "poisson", "kl_divergence", "log_cosh", "huber",
    "cosine_similarity",
]  # fmt: skip
BINARY_METRICS = [
    "BinaryAccuracy", "Accuracy", "AUC", "Precision", "Recall", "TruePositives",
    "FalseNegatives", "BinaryCrossentropy", "MeanSquaredError", "Hinge",
]  # fmt: skip


@pytest.mark.parametrize("name", LOSSES)
def test_losses_on_boolean_targets_match_keras(name):
    keras = import_keras()
    assert_same(
        distkeras.losses.get(name)(Y_BOOL, P_BINARY), keras.losses.get(name)(Y_BOOL, P_BINARY)
    )


@pytest.mark.parametrize("name", BINARY_METRICS)
def test_metrics_on_boolean_targets_match_keras(name):
    keras = import_keras()
    ours, theirs = getattr(distkeras.metrics, name)(), getattr(keras.metrics, name)()
    for metric in (ours, theirs):
        metric.update_state(Y_BOOL, P_BINARY)
        metric.update_state(~Y_BOOL, P_BINARY)
    assert_same(ours.result(), theirs.result())


def test_sparse_accuracy_and_crossentropy_on_boolean_labels_match_keras():
    keras = import_keras()
    labels = Y_BOOL[:, 0]
    probs = np.concatenate([1 - P_BINARY, P_BINARY], axis=1)
    for name in ("SparseCategoricalAccuracy", "SparseCategoricalCrossentropy"):
        ours, theirs = getattr(distkeras.metrics, name)(), getattr(keras.metrics, name)()
        ours.update_state(labels, probs)
        theirs.update_state(labels, probs)
        assert_same(ours.result(), theirs.result())
    ours = distkeras.metrics.SparseTopKCategoricalAccuracy(k=1)
    theirs = keras.metrics.SparseTopKCategoricalAccuracy(k=1)
    ours.update_state(labels, probs)
    theirs.update_state(labels, probs)
    assert_same(ours.result(), theirs.result())


@pytest.mark.parametrize("loss", ["binary_crossentropy", "sparse_categorical_crossentropy"])
def test_fit_on_boolean_targets_matches_keras(loss):
    keras = import_keras()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3)).astype("float32")
    y = x[:, 0] > 0
    units, y = (1, y[:, None]) if loss == "binary_crossentropy" else (2, y)
    histories = []
    weights = None
    for lib in (keras, distkeras):
        activation = "sigmoid" if units == 1 else "softmax"
        model = lib.Sequential([lib.Input((3,)), lib.layers.Dense(units, activation=activation)])
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
        histories.append(model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0))
    theirs, ours = (h.history for h in histories)
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6)
