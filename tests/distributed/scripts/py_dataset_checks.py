"""Training on a ``utils.PyDataset`` (threads reading ahead), whose results must not depend on
the number of workers: every rank writes ``OUTDIR/py_dataset_rank<R>.npz``.

The global batches are the dataset's batches (8, 8, 8, 8, 5: uneven), shuffled in order per
epoch; each rank keeps its part of every batch.
"""

import math
import os
import sys

import numpy as np

import distkeras
from distkeras import layers, utils

SAMPLES = 37


class Batches(utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


def main(outdir: str) -> None:
    distkeras.utils.set_random_seed(11)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(SAMPLES, 4)).astype("float32")
    y = np.digitize(x[:, 0] - x[:, 1], [-0.5, 0.5]).astype("int64")
    model = distkeras.Sequential(
        [distkeras.Input((4,)), layers.Dense(8, activation="relu"), layers.Dense(3)]
    )
    model.compile(
        optimizer=distkeras.optimizers.Adam(0.05),
        loss=distkeras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        Batches(x, y, 8, workers=2),
        validation_data=Batches(x[:10], y[:10], 4),
        epochs=3,
        shuffle=True,
        verbose=0,
    )
    evaluation = model.evaluate(Batches(x, y, 6), verbose=0, return_dict=True)
    predicted = model.predict(Batches(x, y, 5), verbose=0)

    record = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    record.update({f"history_{k}": np.asarray(v) for k, v in history.history.items()})
    record.update({f"evaluate_{k}": np.asarray(v) for k, v in evaluation.items()})
    record["predict"] = predicted
    rank = distkeras.distributed.rank()
    np.savez(os.path.join(outdir, f"py_dataset_rank{rank}.npz"), **record)


if __name__ == "__main__":
    main(sys.argv[1])
