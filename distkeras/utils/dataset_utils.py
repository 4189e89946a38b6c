"""``utils.timeseries_dataset_from_array`` and ``utils.split_dataset`` without tf.data.

The time-series dataset is a :class:`PyDataset`: fit/evaluate/predict take it directly and,
under several workers, each rank keeps its part of every batch. ``split_dataset`` returns torch
datasets, as Keras 3 does on its torch backend.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from distkeras.utils.py_dataset import PyDataset


def _shared_seed(seed) -> int:
    """``seed``, or one drawn by rank 0 and shared, so every worker windows the same way."""
    if seed is not None:
        return int(seed)
    drawn = int(np.random.randint(1_000_000))
    from distkeras import distributed

    if distributed.world_size() > 1:
        return int(distributed.communicator().broadcast_object(drawn))
    return drawn


def _check_positive_below(name: str, value: int, length: int) -> None:
    if value <= 0:
        raise ValueError(f"`{name}` must be higher than 0. Received: {name}={value}")
    if value >= length:
        raise ValueError(
            f"`{name}` must be lower than the length of the data. Received: {name}={value}, "
            f"for data of length {length}"
        )


class TimeseriesDataset(PyDataset):
    """Batches of windows of ``data`` (and the target at each window's start)."""

    def __init__(
        self, data, targets, starts: np.ndarray, window: np.ndarray, batch_size, shuffle=False
    ):
        super().__init__()
        # Keras returns a tf.data.Dataset, whose order fit keeps; shuffled windows are
        # reshuffled by fit each epoch, as tf.data reshuffles them on each iteration.
        self._keeps_batch_order = not shuffle
        self.data = data
        self.targets = targets
        self.starts = starts
        self.window = window
        self.batch_size = len(starts) if batch_size is None else int(batch_size)

    def __len__(self) -> int:
        return math.ceil(len(self.starts) / self.batch_size) if len(self.starts) else 0

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        starts = self.starts[index * self.batch_size : (index + 1) * self.batch_size]
        windows = _as_tensor(np.asarray(self.data)[starts[:, None] + self.window[None, :]])
        if self.targets is None:
            return windows
        return windows, _as_tensor(np.asarray(self.targets)[starts])

    def take(self, count: int) -> list:
        """The first ``count`` batches (all for -1), for tf.data's ``for x, y in ds.take(1)``."""
        if count is None or count < 0:
            count = len(self)
        return [self[i] for i in range(min(int(count), len(self)))]


def _as_tensor(array: np.ndarray):
    # Keras yields tf tensors; CPU torch tensors give the same `.numpy()`, `.shape` and slicing
    # (keras.io's weather example plots `x[0][:, 1].numpy()`), shared with the numpy array.
    if array.dtype.kind in "biufc":
        return torch.from_numpy(np.ascontiguousarray(array))
    return array


def timeseries_dataset_from_array(
    data,
    targets,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    batch_size: int | None = 128,
    shuffle: bool = False,
    seed: int | None = None,
    start_index: int | None = None,
    end_index: int | None = None,
    format: str = "tf",
) -> TimeseriesDataset:
    """Sliding windows over a time series, batched, as ``keras.utils.timeseries_dataset_
    from_array``.

    Window ``i`` holds ``data[s, s + sampling_rate, ..., s + (sequence_length - 1) *
    sampling_rate]`` with ``s = start_index + i * sequence_stride``; its target is
    ``targets[s]``. ``shuffle`` shuffles the windows (reproducibly given ``seed``).

    Args:
        format: Keras's "tf" or "grain" output formats; both give the same windows here,
            returned as a :class:`~distkeras.utils.PyDataset`.
    """
    length = len(data)
    if start_index:
        if start_index < 0:
            raise ValueError(f"`start_index` must be 0 or greater. Received: {start_index}")
        if start_index >= length:
            raise ValueError(
                f"`start_index` must be lower than the length of the data. Received: "
                f"start_index={start_index}, for data of length {length}"
            )
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError(
                f"`end_index` must be higher than `start_index`. Received: start_index="
                f"{start_index}, and end_index={end_index}"
            )
        if end_index >= length:
            raise ValueError(
                f"`end_index` must be lower than the length of the data. Received: "
                f"end_index={end_index}, for data of length {length}"
            )
        if end_index <= 0:
            raise ValueError(f"`end_index` must be higher than 0. Received: {end_index}")
    _check_positive_below("sampling_rate", sampling_rate, length)
    _check_positive_below("sequence_stride", sequence_stride, length)
    if format not in ("tf", "grain"):
        raise ValueError(f'`format` should be either "tf" or "grain". Received: format={format}')
    start_index = start_index or 0
    end_index = length if end_index is None else end_index
    count = end_index - start_index - (sequence_length - 1) * sampling_rate
    if targets is not None:
        count = min(count, len(targets) - start_index)
    starts = start_index + np.arange(0, max(count, 0), sequence_stride)
    if shuffle:
        np.random.RandomState(_shared_seed(seed)).shuffle(starts)
    window = np.arange(0, sequence_length * sampling_rate, sampling_rate)
    return TimeseriesDataset(data, targets, starts, window, batch_size, shuffle)


def _split_sizes(left_size, right_size, total: int) -> tuple[int, int]:
    """Keras's rules: ints are counts, floats in (0, 1) fractions (rounded), None the rest."""
    if left_size is None and right_size is None:
        raise ValueError(
            "At least one of the `left_size` or `right_size` must be specified. "
            "Received: left_size=None and right_size=None"
        )
    sizes = {}
    for name, value in (("left_size", left_size), ("right_size", right_size)):
        if value is None:
            sizes[name] = None
        elif isinstance(value, float):
            if not 0 < value < 1:
                raise ValueError(
                    f"`{name}` should be either a positive integer smaller than {total}, or a "
                    f"float within the range `[0, 1]`. Received: {name}={value}"
                )
            sizes[name] = round(value * total)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if not 0 < value < total:
                raise ValueError(
                    f"`{name}` should be either a positive integer smaller than {total}, or a "
                    f"float within the range `[0, 1]`. Received: {name}={value}"
                )
            sizes[name] = int(value)
        else:
            raise TypeError(
                f"Invalid `{name}` type. Expected one of (float, int, None). "
                f"Received: {name}={value!r} of type {type(value).__name__}"
            )
    left, right = sizes["left_size"], sizes["right_size"]
    if (
        isinstance(left_size, float)
        and isinstance(right_size, float)
        and left_size + right_size > 1
    ):
        raise ValueError(
            "The sum of `left_size` and `right_size` is greater than 1. It must be less than "
            "or equal to 1."
        )
    left = total - right if left is None else left
    right = total - left if right is None else right
    if left + right > total:
        raise ValueError(
            f"The sum of `left_size` and `right_size` should be smaller than the {total}. "
            f"Received: left_size + right_size = {left + right}"
        )
    for size, side in ((left, "left"), (right, "right")):
        if size == 0:
            raise ValueError(
                f"With `dataset` of length={total}, `left_size`={left} and `right_size`="
                f"{right}, the {side} side dataset split would be empty."
            )
    return left, right


def split_dataset(
    dataset, left_size=None, right_size=None, shuffle: bool = False, seed=None, **kwargs
):
    """Splits a torch ``Dataset``, an array or a tuple/list of equal-length arrays into two
    torch datasets, as ``keras.utils.split_dataset`` does on the torch backend.

    Unlike Keras 3.15 on torch (which always shuffles), ``shuffle=False`` keeps the order:
    the left part is the first ``left_size`` samples.
    """
    preferred = kwargs.pop("preferred_backend", None)
    if kwargs:
        raise TypeError(f"split_dataset got unexpected arguments {sorted(kwargs)}")
    if preferred not in (None, "torch"):
        raise ValueError(
            f"split_dataset: preferred_backend={preferred!r} is not available; datasets here "
            "are torch datasets (preferred_backend='torch')."
        )
    if not isinstance(dataset, torch.utils.data.Dataset):
        arrays = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]
        try:
            tensors = [torch.as_tensor(np.asarray(a)) for a in arrays]
        except (TypeError, ValueError) as err:
            raise TypeError(
                "split_dataset: `dataset` must be a torch Dataset, an array, or a list/tuple "
                f"of arrays. Received: {type(dataset).__name__}"
            ) from err
        if len({len(t) for t in tensors}) != 1:
            raise ValueError(
                "split_dataset: the arrays must have the same length. Received lengths "
                f"{[len(t) for t in tensors]}"
            )
        dataset = torch.utils.data.TensorDataset(*tensors)
    total = len(dataset)
    left, right = _split_sizes(left_size, right_size, total)
    order = np.arange(total)
    if shuffle:
        np.random.RandomState(_shared_seed(seed)).shuffle(order)
    return (
        torch.utils.data.Subset(dataset, order[:left].tolist()),
        torch.utils.data.Subset(dataset, order[left : left + right].tolist()),
    )
