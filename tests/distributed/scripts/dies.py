"""A worker that dies mid-training: ``dies.py OUTDIR``.

Rank 1 calls ``os._exit(3)`` from a callback in the middle of the second epoch (after writing
the time to OUTDIR/died_at); the survivors are inside, or about to enter, the gradient
all-reduce and must fail (or be stopped by their launcher) within seconds.
"""

import os
import sys
import time

import numpy as np

import distkeras
from distkeras import callbacks, distributed, layers


class DieOnRankOne(callbacks.Callback):
    def __init__(self, outdir: str):
        super().__init__()
        self.outdir = outdir
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if distributed.rank() == 1 and self.epoch == 1 and batch == 2:
            with open(os.path.join(self.outdir, "died_at"), "w") as f:
                f.write(repr(time.time()))
            os._exit(3)


def main(outdir: str) -> None:
    distkeras.utils.set_random_seed(1)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = distkeras.Sequential([distkeras.Input(shape=(4,)), layers.Dense(8), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, batch_size=8, epochs=1000, verbose=0, callbacks=[DieOnRankOne(outdir)])


if __name__ == "__main__":
    main(sys.argv[1])
