"""A ``utils.PyDataset`` as fit/evaluate/predict data, sharded by rank.

Every rank walks the same batch order (shuffled per epoch from the shared seed when fit
shuffles, as Keras shuffles a PyDataset's batch order) and keeps its contiguous part of each
global batch, exactly as array data is split. ``workers`` > 1 prefetches batches in a thread
or process pool, never more than ``max_queue_size`` ahead.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
from collections.abc import Iterator

from distkeras import backend
from distkeras.training.data import Batch, epoch_permutation, shard_bounds, to_model_input
from distkeras.utils.tree import flatten, map_structure

_DATASET = None  # the dataset, in a process-pool worker


def _init_worker(dataset) -> None:
    global _DATASET
    _DATASET = dataset


def _read_in_worker(index: int):
    return _DATASET[index]


class PyDatasetData:
    splits_global_batches = True  # predict() reassembles rank parts batch by batch

    def __init__(
        self, dataset, *, shuffle: bool, seed: int, rank: int, world_size: int, steps=None
    ):
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.steps = steps
        self.device = backend.get_device()
        self._pool = None

    @property
    def steps_per_epoch(self) -> int | None:
        count = self.dataset.num_batches
        if self.steps is None:
            return count
        return self.steps if count is None else min(self.steps, count)

    def _order(self, epoch: int):
        count = self.dataset.num_batches
        if count is None:
            index = 0
            while True:
                yield index
                index += 1
        order = (
            epoch_permutation(count, self.seed, epoch).tolist() if self.shuffle else range(count)
        )
        yield from order

    def _reader(self):
        workers = self.dataset.workers
        if workers <= 1:
            return None
        if self._pool is None:
            if self.dataset.use_multiprocessing:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    workers,
                    mp_context=multiprocessing.get_context("fork"),
                    initializer=_init_worker,
                    initargs=(self.dataset,),
                )
            else:
                self._pool = concurrent.futures.ThreadPoolExecutor(workers)
        return self._pool

    def _items(self, epoch: int) -> Iterator:
        steps = self.steps_per_epoch
        indices = self._order(epoch)
        if steps is not None:
            indices = (i for i, _ in zip(indices, range(steps)))
        pool = self._reader()
        if pool is None:
            for index in indices:
                yield self.dataset[index]
            return
        read = (
            _read_in_worker
            if isinstance(pool, concurrent.futures.ProcessPoolExecutor)
            else self.dataset.__getitem__
        )
        ahead = collections.deque()
        limit = max(1, int(self.dataset.max_queue_size))
        for index in indices:
            ahead.append(pool.submit(read, index))
            if len(ahead) >= limit:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()

    def epoch(self, epoch: int) -> Iterator[Batch]:
        self.dataset.on_epoch_begin()
        for item in self._items(epoch):
            yield self._to_batch(item)
        self.dataset.on_epoch_end()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __del__(self):
        self.close()

    def _to_batch(self, item) -> Batch:
        if isinstance(item, (tuple, list)) and len(item) in (1, 2, 3):
            x, y, sw = (list(item) + [None, None])[:3]
        else:
            x, y, sw = item, None, None
        leaves = flatten(x)
        if not leaves or not hasattr(leaves[0], "shape"):
            raise ValueError(
                f"{type(self.dataset).__name__}.__getitem__ must return arrays: x, (x, y) or "
                f"(x, y, sample_weight). Received: {type(item).__name__}"
            )
        size = int(leaves[0].shape[0])
        start, end = shard_bounds(size, self.world_size, self.rank)
        device = self.device

        def take(a):
            if a is None:
                return None
            # (text, as text_dataset_from_directory yields it, stays numpy for string layers)
            return to_model_input(a[start:end] if self.world_size > 1 else a, device)

        return Batch(
            x=map_structure(take, x),
            y=None if y is None else map_structure(take, y),
            sample_weight=take(sw),
            size=end - start,
            global_size=size,
            offset=start,
        )
