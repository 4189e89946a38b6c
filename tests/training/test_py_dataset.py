"""``utils.PyDataset`` in fit/evaluate/predict: what a Keras user's dataset class does here,
with prefetching workers, and the same model as the equivalent arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

import distkeras
from distkeras import layers, utils

X = np.random.default_rng(0).standard_normal((40, 3)).astype("float32")
Y = (X @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")).astype("float32")


class Batches(utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_begun = 0
        self.epochs_ended = 0

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        low = index * self.batch_size
        high = min(low + self.batch_size, len(self.x))
        return self.x[low:high], self.y[low:high]

    def on_epoch_begin(self):
        self.epochs_begun += 1

    def on_epoch_end(self):
        self.epochs_ended += 1


def _model():
    distkeras.utils.set_random_seed(3)
    model = distkeras.Sequential([distkeras.Input((3,)), layers.Dense(4), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    return model


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"workers": 3},
        {"workers": 2, "max_queue_size": 1},
        {"workers": 2, "use_multiprocessing": True},
    ],
    ids=["inline", "threads", "threads-queue-1", "processes"],
)
def test_fit_on_a_py_dataset_equals_fit_on_the_arrays(options):
    dataset = Batches(X, Y, 8, **options)
    ours = _model()
    history = ours.fit(dataset, epochs=2, shuffle=False, verbose=0)
    reference = _model()
    expected = reference.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(history.history["loss"], expected.history["loss"], rtol=1e-6)
    assert dataset.epochs_begun == 2 and dataset.epochs_ended == 2


def test_evaluate_predict_and_validation_take_a_py_dataset():
    model = _model()
    dataset = Batches(X, Y, 16)
    history = model.fit(dataset, validation_data=Batches(X, Y, 10), epochs=1, verbose=0)
    assert "val_loss" in history.history
    loss, mae = model.evaluate(dataset, verbose=0)
    expected_loss, expected_mae = model.evaluate(X, Y, batch_size=16, verbose=0)
    assert loss == pytest.approx(expected_loss, rel=1e-6) and mae == pytest.approx(
        expected_mae, rel=1e-6
    )
    np.testing.assert_allclose(
        model.predict(Batches(X, Y, 16), verbose=0), model.predict(X, verbose=0), rtol=1e-6
    )


def test_shuffle_changes_the_batch_order_per_epoch_but_every_batch_is_seen():
    seen = []

    class Recording(Batches):
        def __getitem__(self, index):
            seen.append(index)
            return super().__getitem__(index)

    _model().fit(Recording(X, Y, 8), epochs=2, shuffle=True, verbose=0)
    first, second = seen[:5], seen[5:]
    assert sorted(first) == sorted(second) == list(range(5))
    assert first != list(range(5)) or second != list(range(5))


def test_endless_dataset_needs_steps_per_epoch():
    class Endless(utils.PyDataset):
        def __init__(self):
            super().__init__()

        @property
        def num_batches(self):
            return None

        def __getitem__(self, index):
            return X[:8], Y[:8]

    model = _model()
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(Endless(), epochs=1, verbose=0)
    history = model.fit(Endless(), steps_per_epoch=3, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_a_subclass_that_skips_super_init_gets_keras_warning():
    class NoSuper(utils.PyDataset):
        def __init__(self):
            self.size = 4  # forgets super().__init__()

        def __len__(self):
            return 1

        def __getitem__(self, index):
            return X[:4], Y[:4]

    with pytest.warns(UserWarning, match="super"):
        _model().fit(NoSuper(), verbose=0)
    assert utils.Sequence is utils.PyDataset


def test_y_with_a_py_dataset_is_refused():
    with pytest.raises(ValueError, match="y must be None"):
        _model().fit(Batches(X, Y, 8), Y, verbose=0)
