"""timeseries_dataset_from_array (against the window formula: Keras's own needs TensorFlow or
grain) and split_dataset (sizes against Keras itself)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import distkeras
from distkeras import utils
from tests.ops.keras_reference import import_keras

SERIES = np.arange(100, dtype="float32").reshape(50, 2)
TARGETS = np.arange(50, dtype="int64") * 10


def _expected_windows(data, targets, length, stride, rate, start, end):
    end = len(data) if end is None else end
    windows, labels = [], []
    s = start or 0
    while s + (length - 1) * rate < end and (targets is None or s < len(targets)):
        windows.append(data[s : s + length * rate : rate])
        labels.append(None if targets is None else targets[s])
        s += stride
    return np.stack(windows), labels


@pytest.mark.parametrize(
    ("length", "stride", "rate", "start", "end", "batch"),
    [
        (5, 1, 1, None, None, 8),
        (4, 3, 2, None, None, 5),
        (3, 2, 1, 4, 30, 4),
        (6, 1, 3, 2, None, None),
        (2, 5, 1, None, 41, 128),
    ],
)
def test_windows_targets_and_batches_follow_the_formula(length, stride, rate, start, end, batch):
    dataset = utils.timeseries_dataset_from_array(
        SERIES, TARGETS, length, sequence_stride=stride, sampling_rate=rate,
        batch_size=batch, start_index=start, end_index=end,
    )  # fmt: skip
    windows, labels = _expected_windows(SERIES, TARGETS, length, stride, rate, start, end)
    got = [dataset[i] for i in range(len(dataset))]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in got]), windows)
    np.testing.assert_array_equal(np.concatenate([y for _, y in got]), labels)
    sizes = [len(x) for x, _ in got]
    assert all(size == (batch or len(windows)) for size in sizes[:-1])


def test_shuffle_is_a_seeded_permutation_of_the_windows():
    plain = utils.timeseries_dataset_from_array(SERIES, TARGETS, 4, batch_size=7)
    shuffled = utils.timeseries_dataset_from_array(
        SERIES, TARGETS, 4, batch_size=7, shuffle=True, seed=3
    )
    again = utils.timeseries_dataset_from_array(
        SERIES, TARGETS, 4, batch_size=7, shuffle=True, seed=3
    )
    flat = lambda d: np.concatenate([d[i][1] for i in range(len(d))])  # noqa: E731
    assert sorted(flat(shuffled)) == sorted(flat(plain)) and list(flat(shuffled)) != list(
        flat(plain)
    )
    np.testing.assert_array_equal(flat(shuffled), flat(again))


def test_fit_trains_on_a_timeseries_dataset():
    x = np.sin(np.arange(200, dtype="float32") / 5)[:, None]
    dataset = utils.timeseries_dataset_from_array(x[:-3], x[3:, 0], 6, batch_size=16)
    model = distkeras.Sequential(
        [distkeras.Input((6, 1)), distkeras.layers.LSTM(4), distkeras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(dataset, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_timeseries_arguments_are_checked_like_keras():
    with pytest.raises(ValueError, match="sampling_rate"):
        utils.timeseries_dataset_from_array(SERIES, None, 3, sampling_rate=0)
    with pytest.raises(ValueError, match="end_index"):
        utils.timeseries_dataset_from_array(SERIES, None, 3, start_index=5, end_index=4)
    with pytest.raises(ValueError, match="format"):
        utils.timeseries_dataset_from_array(SERIES, None, 3, format="numpy")


# Keras's torch backend hands the sizes to torch's random_split, which needs them to cover
# the whole dataset; partial splits (left + right < total) are checked by formula below.
SIZES = [(0.35, None), (None, 0.2), (3, None), (None, 4), (0.5, 0.5), (2, 8), (0.8, 2)]


@pytest.mark.parametrize(("left", "right"), SIZES)
def test_split_sizes_match_keras(left, right):
    keras = import_keras()
    data = (np.arange(10, dtype="float32"), np.arange(10) % 3)
    theirs = keras.utils.split_dataset(data, left_size=left, right_size=right)
    ours = utils.split_dataset(data, left_size=left, right_size=right)
    assert [len(part) for part in ours] == [len(part) for part in theirs]
    assert all(isinstance(part, torch.utils.data.Dataset) for part in ours)


@pytest.mark.parametrize(
    ("left", "right", "sizes"), [(0.5, 0.3, [5, 3]), (2, 5, [2, 5]), (0.26, 1, [3, 1])]
)
def test_partial_splits_take_the_requested_sizes(left, right, sizes):
    parts = utils.split_dataset(np.arange(10), left_size=left, right_size=right)
    assert [len(part) for part in parts] == sizes


def test_split_without_shuffle_keeps_the_order_and_with_shuffle_partitions():
    left, right = utils.split_dataset(np.arange(10), left_size=0.3)
    assert [int(left[i][0]) for i in range(3)] == [0, 1, 2]
    a, b = utils.split_dataset(np.arange(10), left_size=4, shuffle=True, seed=1)
    values = sorted(int(item[0]) for item in itertools.chain(a, b))
    assert values == list(range(10)) and [int(a[i][0]) for i in range(4)] != [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "At least one"),
        ({"left_size": 1.5}, "left_size"),
        ({"left_size": 0.7, "right_size": 0.6}, "greater than 1"),
        ({"left_size": 8, "right_size": 5}, "smaller than"),
        ({"left_size": 3, "preferred_backend": "tensorflow"}, "preferred_backend"),
    ],
)
def test_split_errors_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        utils.split_dataset(np.arange(10), **kwargs)
