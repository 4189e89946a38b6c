"""The torchrun-elastic fault test's job, run as `python elastic_job.py OUTDIR`.

A Dense regression without dropout (320 samples, 3 epochs of 20 global batches of 16, Adam),
seeded, with an end-of-epoch `BackupAndRestore(OUTDIR/backup)`. Rank 0 writes the final weights
(`weights.npz`), the history (`history.json`) and the steps this run trained (`batches.json`);
every rank writes `attempt<restart count>_rank<rank>.json` with the world size it saw.

Workers whose agent was started with `ELASTIC_DOOMED=1` SIGKILL that agent and then
themselves in epoch 2, step 6, of the first attempt: that node is gone. (torchrun numbers the
nodes in the order they join, so the node is marked by a variable, not by its GROUP_RANK.)
"""

import argparse
import json
import os
import signal
from pathlib import Path

import numpy as np

import distkeras
from distkeras import distributed, layers

FAULT_EPOCH, FAULT_BATCH = 1, 5


class KillNode(distkeras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epoch, self.batches = 0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if (self.epoch, batch) != (FAULT_EPOCH, FAULT_BATCH) or distributed.restart_count():
            return
        if os.environ.get("ELASTIC_DOOMED") == "1":
            os.kill(os.getppid(), signal.SIGKILL)  # the torchrun agent of this node
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)

    rank, count = distributed.rank(), distributed.restart_count()
    (args.outdir / f"attempt{count}_rank{rank}.json").write_text(
        json.dumps(
            {"restart_count": count, "world_size": distributed.world_size(), "pid": os.getpid()}
        )
    )

    distkeras.utils.set_random_seed(7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1)) + 0.1 * rng.normal(size=(320, 1))).astype("float32")
    model = distkeras.Sequential(
        [distkeras.Input((8,)), layers.Dense(16, activation="relu"), layers.Dense(1)]
    )
    model.compile(optimizer=distkeras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    fault = KillNode()
    callbacks = [distkeras.callbacks.BackupAndRestore(args.outdir / "backup"), fault]
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=callbacks)
    if rank == 0:
        np.savez(args.outdir / "weights.npz", *model.get_weights())
        (args.outdir / "history.json").write_text(json.dumps(history.history))
        (args.outdir / "batches.json").write_text(json.dumps(fault.batches))


if __name__ == "__main__":
    main()
