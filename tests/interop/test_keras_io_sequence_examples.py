"""What keras.io's sequence, text and time-series examples rely on, against Keras itself:
one-hot boolean targets with accuracy (character-level LSTM, addition RNN), the
``keras.preprocessing`` namespace, and ``timeseries_dataset_from_array`` batches used as the
weather-forecasting example uses its tf.data dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from tests.ops.keras_reference import assert_same, import_keras


def _one_hot_bool(rng, rows, classes):
    return np.eye(classes, dtype=bool)[rng.integers(0, classes, rows)]


@pytest.mark.parametrize("shape", [(6,), (5, 3)])
def test_categorical_accuracy_on_one_hot_bool_targets_matches_keras(shape):
    keras = import_keras()
    rng = np.random.default_rng(0)
    y = _one_hot_bool(rng, int(np.prod(shape)), 4).reshape(*shape, 4)
    p = rng.random((*shape, 4)).astype("float32")
    for fn in ("categorical_accuracy",):
        assert_same(getattr(distkeras.metrics, fn)(y, p), getattr(keras.metrics, fn)(y, p))
    ours, theirs = distkeras.metrics.CategoricalAccuracy(), keras.metrics.CategoricalAccuracy()
    for metric in (ours, theirs):
        metric.update_state(y, p)
    assert_same(ours.result(), theirs.result())


def test_fit_on_one_hot_bool_sequences_matches_keras():
    # The addition-RNN example: bool one-hot x and y, per-timestep softmax, "accuracy".
    keras = import_keras()
    rng = np.random.default_rng(1)
    x = _one_hot_bool(rng, 12 * 5, 6).reshape(12, 5, 6)
    y = _one_hot_bool(rng, 12 * 3, 6).reshape(12, 3, 6)
    histories, weights = [], None
    for lib in (keras, distkeras):
        model = lib.Sequential([
            lib.Input((5, 6)), lib.layers.LSTM(4), lib.layers.RepeatVector(3),
            lib.layers.LSTM(4, return_sequences=True),
            lib.layers.Dense(6, activation="softmax"),
        ])  # fmt: skip
        weights = model.get_weights() if weights is None else weights
        model.set_weights(weights)
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        histories.append(
            model.fit(
                x,
                y,
                batch_size=4,
                epochs=2,
                validation_data=(x[:4], y[:4]),
                shuffle=False,
                verbose=0,
            ).history  # fmt: skip
        )
    theirs, ours = histories
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6)


def test_preprocessing_namespace_has_keras_names():
    keras = import_keras()
    pairs = [
        (keras.preprocessing, distkeras.preprocessing),
        (keras.preprocessing.image, distkeras.preprocessing.image),
        (keras.preprocessing.sequence, distkeras.preprocessing.sequence),
    ]
    for theirs, ours in pairs:
        names = [n for n in dir(theirs) if not n.startswith("_")]
        assert [n for n in names if not hasattr(ours, n)] == [], theirs.__name__
    assert distkeras.preprocessing.sequence.pad_sequences is distkeras.utils.pad_sequences
    assert (
        distkeras.preprocessing.timeseries_dataset_from_array
        is distkeras.utils.timeseries_dataset_from_array
    )


SMART_CASES = [
    (shape, size, dtype, interpolation, data_format)
    for shape in [(7, 11, 3), (2, 9, 5, 1), (12, 4, 2)]
    for size in [(4, 4), (6, 3), (3, 8)]
    for dtype in ["float32", "uint8"]
    for interpolation in ["bilinear", "nearest"]
    for data_format in ["channels_last", "channels_first"]
]


@pytest.mark.parametrize(("shape", "size", "dtype", "interpolation", "data_format"), SMART_CASES)
def test_smart_resize_matches_keras(shape, size, dtype, interpolation, data_format):
    keras = import_keras()
    x = (np.random.default_rng(2).random(shape) * 255).astype(dtype)
    kwargs = {"interpolation": interpolation, "data_format": data_format}
    ours = distkeras.preprocessing.image.smart_resize(x, size, **kwargs)
    theirs = keras.preprocessing.image.smart_resize(x, size, **kwargs)
    assert type(ours) is type(theirs) is np.ndarray
    assert_same(ours, theirs, atol=1e-3)
    tensor = distkeras.preprocessing.image.smart_resize(torch.from_numpy(x), size, **kwargs)
    assert isinstance(tensor, torch.Tensor)


def _windows(x, y, length, rate, batch):
    # Window s is x[s], x[s + rate], ...; its target y[s] (Keras's documented formula).
    count = min(len(x) - (length - 1) * rate, len(y))
    starts = np.arange(count)
    xs = x[starts[:, None] + np.arange(length)[None] * rate]
    return xs, y[starts]


def _series():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(90, 3))
    return x, x[5:, [1]]


def test_timeseries_batches_behave_like_tf_tensors():
    x, y = _series()
    dataset = distkeras.preprocessing.timeseries_dataset_from_array(
        x, y, sequence_length=6, sampling_rate=2, batch_size=16
    )
    (inputs, targets), = dataset.take(1)  # fmt: skip
    assert (inputs.shape[1], inputs.shape[2]) == (6, 3)
    xs, ys = _windows(x, y, 6, 2, 16)
    np.testing.assert_array_equal(inputs[0][:, 1].numpy(), xs[0][:, 1])  # the example's plot
    np.testing.assert_array_equal(targets.numpy(), ys[:16])
    assert inputs.numpy().dtype == x.dtype
    assert len(dataset.take(-1)) == len(dataset) == len(dataset.take(100))


def test_fit_on_a_timeseries_dataset_keeps_its_order_and_matches_keras_on_arrays():
    # Keras's fit never reorders the tf.data dataset; the same windows as arrays with
    # shuffle=False must give the same history, weights and predictions.
    keras = import_keras()
    x, y = _series()
    xs, ys = _windows(x, y, 6, 2, 16)
    results, weights = [], None
    for lib, use_dataset in ((keras, False), (distkeras, True), (distkeras, False)):
        inputs = lib.Input((6, 3))
        model = lib.Model(inputs, lib.layers.Dense(1)(lib.layers.LSTM(4)(inputs)))
        weights = model.get_weights() if weights is None else weights
        model.set_weights(weights)
        model.compile(optimizer=lib.optimizers.Adam(learning_rate=0.01), loss="mse")
        if use_dataset:
            data = lib.preprocessing.timeseries_dataset_from_array(
                x, y, sequence_length=6, sampling_rate=2, batch_size=16
            )
            history = model.fit(data, epochs=3, verbose=0)
        else:
            history = model.fit(xs, ys, batch_size=16, epochs=3, shuffle=False, verbose=0)
        results.append((history.history["loss"], model.predict(xs[:5], verbose=0)))
    theirs = results[0]
    for ours in results[1:]:
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-6)
        assert_same(ours[1], theirs[1], atol=1e-5)


def _served_order(dataset, epochs):
    served = []

    class Recording(type(dataset)):
        def __getitem__(self, index):
            served.append(index)
            return super().__getitem__(index)

    recording = Recording.__new__(Recording)
    recording.__dict__.update(dataset.__dict__)
    model = distkeras.Sequential([distkeras.Input((6, 3)), distkeras.layers.Flatten(),
                                  distkeras.layers.Dense(1)])  # fmt: skip
    model.compile(optimizer="sgd", loss="mse")
    model.fit(recording, epochs=epochs, verbose=0)
    return served


def test_fit_reshuffles_only_a_shuffled_timeseries_dataset():
    x, y = _series()
    plain = distkeras.utils.timeseries_dataset_from_array(x, y, 6, batch_size=8)
    count = len(plain)
    assert _served_order(plain, 3) == list(range(count)) * 3
    shuffled = distkeras.utils.timeseries_dataset_from_array(
        x, y, 6, batch_size=8, shuffle=True, seed=1
    )
    order = _served_order(shuffled, 3)
    epochs = [order[i * count : (i + 1) * count] for i in range(3)]
    assert all(sorted(e) == list(range(count)) for e in epochs)
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]
