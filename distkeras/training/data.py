"""Arrays, generators and torch datasets -> batches, with shuffling and sharding by rank.

The contract behind "1 worker and N workers give the same model": ``batch_size`` is the GLOBAL
batch; the epoch permutation depends only on the seed and the epoch; every global batch (the
last partial one included) is split into ``world_size`` contiguous parts whose sizes differ by
at most one, and rank ``r`` takes part ``r``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from distkeras import backend
from distkeras.utils.tree import flatten, map_structure


def shard_bounds(batch_len: int, world_size: int, rank: int) -> tuple[int, int]:
    """[start, end) of ``rank``'s part of a batch of ``batch_len`` samples."""
    base, extra = divmod(batch_len, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of an epoch: a function of (seed, epoch) only, never of world size."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63 - 1))
    return torch.randperm(num_samples, generator=generator)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int_or_none(name: str, value):
    """``None`` or a positive int (numpy ints too, returned as int)."""
    if value is None:
        return None
    if not _is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer or None. Received: {name}={value!r}")
    return int(value)


def check_fit_arguments(
    *,
    batch_size,
    epochs,
    initial_epoch,
    validation_split,
    steps_per_epoch,
    validation_steps,
    validation_freq,
    class_weight,
):
    """Validates fit()'s scalar arguments once, before any data is touched."""
    for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if not _is_int(value) or value < 0:
            raise ValueError(f"`{name}` must be a non-negative integer. Received: {name}={value!r}")
    check_positive_int_or_none("batch_size", batch_size)
    check_positive_int_or_none("steps_per_epoch", steps_per_epoch)
    check_positive_int_or_none("validation_steps", validation_steps)
    if (
        isinstance(validation_split, (bool, np.bool_))
        or not isinstance(validation_split, (int, float, np.integer, np.floating))
        or not 0 <= validation_split < 1
    ):
        raise ValueError(
            "`validation_split` must be a float in [0, 1). "
            f"Received: validation_split={validation_split!r}"
        )
    freq_ok = (_is_int(validation_freq) and validation_freq >= 1) or (
        isinstance(validation_freq, (list, tuple, set, range))
        and all(_is_int(v) for v in validation_freq)
    )
    if not freq_ok:
        raise ValueError(
            "`validation_freq` must be a positive integer or a collection of epoch numbers. "
            f"Received: validation_freq={validation_freq!r}"
        )
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError(
                "`class_weight` must be a dict mapping class indices to weights. "
                f"Received: class_weight={class_weight!r}"
            )
        for key, weight in class_weight.items():
            if not _is_int(key) or isinstance(weight, (bool, str)) or not np.isscalar(weight):
                raise ValueError(
                    "`class_weight` must map integer class indices to numbers. "
                    f"Received the entry {key!r}: {weight!r}"
                )


def _to_cpu_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        # (Labels are checked, with their own message, once the model's outputs are known.)
        if x.is_complex() and name != "y":
            raise TypeError(f"`{name}` must hold real numbers; received dtype {x.dtype}.")
        return x.detach()
    arr = np.asarray(x)
    if name == "x" and is_string_array(arr):
        return arr  # text for string layers (TextVectorization...): stays numpy, sharded as is
    if arr.dtype == object:
        raise TypeError(f"`{name}` holds Python objects; expected numeric arrays.")
    if arr.dtype.kind == "c":
        raise TypeError(f"`{name}` must hold real numbers; received dtype {arr.dtype}.")
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"`{name}` must be numeric; received an array of dtype {arr.dtype}. Encode "
            "strings as numbers first (labels as integer class ids)."
        )
    if arr.dtype == np.float64:
        arr = arr.astype(backend.floatx())
    # reshape: ascontiguousarray turns a scalar into shape (1,), hiding a missing batch dim.
    return torch.from_numpy(np.ascontiguousarray(arr)).reshape(arr.shape)


def is_string_array(arr: np.ndarray) -> bool:
    """A numpy array of text: str/bytes dtype, or objects that are all str/bytes."""
    if arr.dtype.kind in "US":
        return True
    return (
        arr.dtype == object
        and arr.size > 0
        and all(isinstance(v, (str, bytes)) for v in arr.reshape(-1))
    )


def _is_string_list(value) -> bool:
    """A (nested) Python list of str: one array of text, not a list of inputs."""
    if not isinstance(value, (list, tuple)) or not value:
        return False
    return all(isinstance(v, str) or _is_string_list(v) for v in value)


def to_model_input(value, device=None):
    """One input array as a model takes it: a tensor on the device, or numpy text as is."""
    if isinstance(value, np.ndarray) and is_string_array(value):
        return value
    return backend.convert_to_tensor(value, device=device)


def check_text_inputs(expected: list, x) -> None:
    """Text (numpy string arrays) only for a model with a string input: a clear error for
    a numeric model instead of a failed conversion inside it."""
    text = [a for a in flatten(x) if isinstance(a, np.ndarray)]
    if text and expected and all(getattr(t, "dtype", None) != "string" for t in expected):
        raise TypeError(
            f"`x` must be numeric; received an array of dtype {text[0].dtype}. Encode strings "
            "as numbers first, or start the model with a string layer (TextVectorization, "
            "StringLookup) on Input(dtype='string')."
        )


def _rows(t, indices: torch.Tensor):
    """Rows ``indices`` of a tensor, or of a numpy array (text)."""
    return t[indices.numpy()] if isinstance(t, np.ndarray) else t.index_select(0, indices)


def _is_number_list(value) -> bool:
    """A (nested) Python list/tuple of plain numbers: one array, not a list of inputs."""
    if not isinstance(value, (list, tuple)) or not value:
        return False
    return all(
        _is_number_list(v) or (isinstance(v, (int, float, np.number)) and not isinstance(v, bool))
        for v in value
    )


def as_array_structure(value):
    """``[0, 1, 1]`` or ``[[1.0, 2.0], ...]`` -> one numpy array; other structures as given."""
    return np.asarray(value) if _is_number_list(value) or _is_string_list(value) else value


@dataclass
class Batch:
    x: object
    y: object
    sample_weight: object
    size: int  # samples in this rank's part
    global_size: int  # samples in the whole global batch
    offset: int = 0  # position of this rank's first sample in the global batch


def _is_array_like(x) -> bool:
    return isinstance(x, (np.ndarray, torch.Tensor, list, tuple, dict)) or hasattr(x, "__array__")


class ArrayData:
    """In-memory arrays (numpy, tensors, or lists/dicts of them) for fit/evaluate/predict."""

    def __init__(
        self,
        x,
        y=None,
        sample_weight=None,
        *,
        batch_size: int | None = 32,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        steps: int | None = None,
    ):
        x, y = as_array_structure(x), as_array_structure(y)
        self.x = map_structure(lambda a: _to_cpu_tensor(a, "x"), x)
        self.y = None if y is None else map_structure(lambda a: _to_cpu_tensor(a, "y"), y)
        self.sample_weight = (
            None if sample_weight is None else _to_cpu_tensor(sample_weight, "sample_weight")
        )
        self.num_samples = _check_lengths(self.x, self.y, self.sample_weight)
        if self.sample_weight is not None and self.y is not None:
            _check_sample_weight_shape(self.sample_weight, self.y)
        batch_size = check_positive_int_or_none("batch_size", batch_size)
        self.batch_size = 32 if batch_size is None else batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.steps = check_positive_int_or_none("steps", steps)
        self.device = backend.get_device()

    @property
    def steps_per_epoch(self) -> int:
        full = math.ceil(self.num_samples / self.batch_size)
        return full if self.steps is None else min(self.steps, full) if self.steps else full

    def _local_indices(self, order: torch.Tensor | None, steps: int) -> tuple[torch.Tensor, list]:
        """This rank's sample indices for the epoch, and each step's (start, size, global)."""
        pieces, layout, offset = [], [], 0
        for step in range(steps):
            begin = step * self.batch_size
            global_size = min(self.batch_size, self.num_samples - begin)
            lo, hi = shard_bounds(global_size, self.world_size, self.rank)
            if order is None:
                pieces.append(torch.arange(begin + lo, begin + hi))
            else:
                pieces.append(order[begin + lo : begin + hi])
            layout.append((offset, hi - lo, global_size, lo))
            offset += hi - lo
        return torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long), layout

    def epoch(self, epoch: int) -> Iterator[Batch]:
        steps = self.steps_per_epoch
        order = epoch_permutation(self.num_samples, self.seed, epoch) if self.shuffle else None
        if order is None and self.world_size == 1:
            # Plain slices of the original arrays: views, no copy at all.
            x, y, sw = self.x, self.y, self.sample_weight
            layout = []
            for step in range(steps):
                start = step * self.batch_size
                size = min(self.batch_size, self.num_samples - start)
                layout.append((start, size, size, 0))
        else:
            # One gather per epoch, so every batch below is a contiguous view.
            indices, layout = self._local_indices(order, steps)
            x = map_structure(lambda t: _rows(t, indices), self.x)
            y = None if self.y is None else map_structure(lambda t: _rows(t, indices), self.y)
            sw = None if self.sample_weight is None else self.sample_weight.index_select(0, indices)
        device, non_blocking = self.device, self.device.type == "cuda"
        if device.type == "cuda":
            x, y, sw = (_pin(v) for v in (x, y, sw))

        # CPU training on CPU arrays (the usual case): a batch is a slice, no .to() call.
        on_cpu = device.type == "cpu" and all(
            t.device.type == "cpu" for t in flatten([x, y, sw]) if isinstance(t, torch.Tensor)
        )

        def take(t, start, size):
            # Text goes to the string layers as numpy.
            if on_cpu or isinstance(t, np.ndarray):
                return t[start : start + size]
            return t[start : start + size].to(device, non_blocking=non_blocking)

        def take_all(structure, start, size):
            if type(structure) is torch.Tensor:
                return take(structure, start, size)
            return map_structure(lambda t: take(t, start, size), structure)

        for start, size, global_size, first in layout:
            yield Batch(
                x=take_all(x, start, size),
                y=None if y is None else take_all(y, start, size),
                sample_weight=None if sw is None else take(sw, start, size),
                size=size,
                global_size=global_size,
                offset=first,
            )


def _pin(structure):
    if structure is None:
        return None
    return map_structure(lambda t: t if isinstance(t, np.ndarray) else t.pin_memory(), structure)


def _check_lengths(x, y, sample_weight) -> int:
    sizes = {}
    for name, value in (("x", x), ("y", y), ("sample_weight", sample_weight)):
        if value is None:
            continue
        for i, t in enumerate(flatten(value)):
            if t.ndim == 0:
                raise ValueError(f"`{name}` must have a batch dimension; received a scalar.")
            sizes[f"{name}[{i}]" if len(flatten(value)) > 1 else name] = int(t.shape[0])
    distinct = set(sizes.values())
    if len(distinct) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(
            f"Data cardinality is ambiguous: inputs have different sample counts "
            f"({detail}). Make sure all arrays contain the same number of samples."
        )
    if not distinct or distinct == {0}:
        raise ValueError("The data is empty: x has 0 samples.")
    return distinct.pop()


def _check_sample_weight_shape(sample_weight: torch.Tensor, y) -> None:
    """Per-sample ``(n,)``/``(n, 1)`` weights, or temporal ones shaped like y's leading dims.

    Checked once here: a wrong width would otherwise broadcast silently in the loss.
    """
    shape = tuple(sample_weight.shape)
    while len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) == 1:
        return
    for target in flatten(y):
        if tuple(target.shape[: len(shape)]) != shape or len(shape) >= target.ndim + (
            target.ndim > 1 and target.shape[-1] == 1
        ):
            raise ValueError(
                "`sample_weight` must have shape (samples,) or (samples, 1), or match the "
                f"leading dimensions of the targets. Received: sample_weight.shape="
                f"{tuple(sample_weight.shape)} for targets of shape {tuple(target.shape)}"
            )


def _named_leaves(structure, name: str) -> list[tuple[str, torch.Tensor]]:
    if isinstance(structure, dict):
        return [
            leaf
            for k in sorted(structure)
            for leaf in _named_leaves(structure[k], f"{name}[{k!r}]")
        ]
    if isinstance(structure, (list, tuple)):
        return [leaf for i, v in enumerate(structure) for leaf in _named_leaves(v, f"{name}[{i}]")]
    return [(name, structure)] if isinstance(structure, torch.Tensor) else []


def warn_if_not_finite(data, what: str = "fit()") -> None:
    """Warns once, naming the array, when the data holds NaN or infinite values.

    Keras trains on such data (the loss turns NaN); this one pass over the host arrays at
    the start of fit says why. A sum is NaN/inf when any element is; only an array whose
    sum is not finite gets the exact (and costlier) elementwise check.
    """
    if not isinstance(data, ArrayData):
        return
    leaves = _named_leaves(data.x, "x")
    if data.y is not None:
        leaves += _named_leaves(data.y, "y")
    if data.sample_weight is not None:
        leaves.append(("sample_weight", data.sample_weight))
    leaves = [(n, t) for n, t in leaves if t.is_floating_point() and t.numel()]
    if not leaves:
        return
    sums = torch.stack([t.sum().float().cpu() for _, t in leaves])
    suspects = [leaves[i] for i in torch.nonzero(~torch.isfinite(sums)).flatten().tolist()]
    bad = [name for name, t in suspects if not bool(torch.isfinite(t).all())]
    if bad:
        warnings.warn(
            f"{what}: {', '.join(f'`{n}`' for n in bad)} contains NaN or infinite values; the "
            "loss will become NaN. Clean the data, or pass "
            "callbacks=[distkeras.callbacks.TerminateOnNaN()] to stop training when it does.",
            stacklevel=3,
        )


def split_validation(x, y, sample_weight, validation_split: float):
    """Keras's ``validation_split``: the LAST fraction of the data, taken before shuffling."""
    if not 0.0 < validation_split < 1.0:
        raise ValueError(
            f"validation_split must be in (0, 1). Received: validation_split={validation_split}"
        )
    for name, value in (("x", x), ("y", y), ("sample_weight", sample_weight)):
        if value is not None and any(np.ndim(t) == 0 for t in flatten(value)):
            raise ValueError(f"`{name}` must have a batch dimension; received a scalar.")
    n = int(flatten(x)[0].shape[0])
    split_at = int(math.floor(n * (1.0 - validation_split)))
    if split_at == 0 or split_at == n:
        raise ValueError(
            f"validation_split={validation_split} leaves an empty training or validation set "
            f"for {n} samples."
        )

    def head(a):
        return a[:split_at]

    def tail(a):
        return a[split_at:]

    train = (
        map_structure(head, x),
        None if y is None else map_structure(head, y),
        None if sample_weight is None else head(sample_weight),
    )
    val = (
        map_structure(tail, x),
        None if y is None else map_structure(tail, y),
        None if sample_weight is None else tail(sample_weight),
    )
    return train, val


def class_weight_to_sample_weight(y, class_weight: dict, sample_weight=None) -> np.ndarray:
    """Per-sample weights from ``class_weight`` (labels as ints or one-hot), times any given."""
    if isinstance(y, (list, tuple, dict)):
        raise ValueError("class_weight is only supported for models with a single output.")
    labels = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    if labels.ndim > 1 and labels.shape[-1] > 1:
        labels = labels.argmax(axis=-1)
    labels = labels.reshape(labels.shape[0], -1)[:, 0].astype("int64")
    unknown = sorted(set(np.unique(labels).tolist()) - set(int(k) for k in class_weight))
    if unknown:
        raise ValueError(f"class_weight has no entry for classes {unknown}.")
    lookup = np.vectorize(lambda c: float(class_weight[c]))
    weights = lookup(labels).astype("float32")
    if sample_weight is not None:
        given = np.asarray(
            sample_weight.cpu() if isinstance(sample_weight, torch.Tensor) else sample_weight,
            dtype="float32",
        )
        if given.size != len(weights) or given.ndim == 0 or given.shape[0] != len(weights):
            raise ValueError(
                "With class_weight, `sample_weight` must have shape (samples,) or (samples, 1) "
                f"for the {len(weights)} samples. Received: sample_weight.shape={given.shape}"
            )
        weights = weights * given.reshape(len(weights))
    return weights


class IterableData:
    """A Python generator/iterator or torch DataLoader yielding ``(x, y[, sample_weight])``.

    Each process iterates its own copy: under several workers the iterable itself must yield
    that worker's part of the data (a DataLoader with a DistributedSampler, say).
    """

    def __init__(self, iterable, steps: int | None = None, *, world_size: int = 1, rank: int = 0):
        self.iterable = iterable
        self.steps = steps
        self.world_size = world_size
        self.rank = rank
        self.device = backend.get_device()
        self._iterator = None

    @property
    def steps_per_epoch(self) -> int | None:
        if self.steps is not None:
            return self.steps
        try:
            return len(self.iterable)
        except TypeError:
            return None

    def epoch(self, epoch: int) -> Iterator[Batch]:
        reusable = hasattr(self.iterable, "__len__") or isinstance(
            self.iterable, torch.utils.data.DataLoader
        )
        if reusable or self._iterator is None:
            self._iterator = iter(self.iterable)
        for step, item in enumerate(self._iterator):
            yield self._to_batch(item)
            if self.steps is not None and step + 1 >= self.steps:
                break

    def _to_batch(self, item) -> Batch:
        # Keras's convention: (x,), (x, y) or (x, y, sample_weight); anything else is x.
        if isinstance(item, (tuple, list)) and len(item) in (1, 2, 3):
            x, y, sw = (list(item) + [None, None])[:3]
        else:
            x, y, sw = item, None, None
        device = self.device

        def move(a):
            return to_model_input(a, device) if a is not None else None

        x = map_structure(move, x)
        y = None if y is None else map_structure(move, y)
        sw = None if sw is None else move(sw)
        size = int(flatten(x)[0].shape[0])
        # Equal parts assumed: rank r's rows come r parts into the global batch.
        return Batch(
            x=x,
            y=y,
            sample_weight=sw,
            size=size,
            global_size=size * self.world_size,
            offset=size * self.rank,
        )


def is_iterable_data(x) -> bool:
    """True for generators, iterators, DataLoaders and Datasets (not arrays)."""
    if x is None or _is_array_like(x):
        return False
    return (
        hasattr(x, "__iter__") or hasattr(x, "__next__") or isinstance(x, torch.utils.data.Dataset)
    )


def dataset_to_loader(dataset, batch_size: int, shuffle: bool, rank: int, world_size: int):
    """A map-style torch Dataset -> DataLoader over this rank's shard."""
    sampler = None
    if world_size > 1:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle)
        shuffle = False
    return torch.utils.data.DataLoader(
        dataset, batch_size=max(1, batch_size // world_size), shuffle=shuffle, sampler=sampler
    )
