"""A tiny training job with Dropout for the exact-resume tests: `dropout_job.py OUTDIR [options]`.

A Dense-Dropout-Dense regression on 320 samples, 3 epochs of 20 global batches of 16 with Adam,
shuffled, seeded, with `BackupAndRestore(OUTDIR/backup)`. Rank 0 writes the final weights
(`weights.npz`), the history (`history.json`) and the steps this run trained (`batches.json`).

    --save-freq N        back up every N batches instead of at each epoch's end
    --kill-rank R        rank R SIGKILLs itself after epoch 2, step 6, on the first attempt
                         (restart count 0); a plain process (rank 0) can kill itself too
    --signal-ready FILE  rank 0 writes its pid to FILE after epoch 2, step 6 and waits for the
                         test's SIGTERM/SIGUSR1, once per OUTDIR
"""

import argparse
import json
import os
import signal
import time
from pathlib import Path

import numpy as np

import distkeras
from distkeras import distributed, layers

FAULT_EPOCH, FAULT_BATCH = 1, 5


class Fault(distkeras.callbacks.Callback):
    def __init__(self, args, outdir: Path):
        super().__init__()
        self.args, self.outdir, self.epoch, self.batches = args, outdir, 0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if (self.epoch, batch) != (FAULT_EPOCH, FAULT_BATCH):
            return
        rank = distributed.rank()
        if rank == self.args.kill_rank and distributed.restart_count() == 0:
            marker = self.outdir / "killed"
            if not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        once = self.outdir / "signalled"
        if self.args.signal_ready and rank == 0 and not once.exists():
            once.touch()
            ready = Path(self.args.signal_ready)
            arrived = []
            previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}

            def note(signum, frame):
                arrived.append(signum)
                if callable(previous[signum]):
                    previous[signum](signum, frame)

            for signum in previous:
                signal.signal(signum, note)
            ready.with_suffix(".tmp").write_text(str(os.getpid()))
            os.replace(ready.with_suffix(".tmp"), ready)
            deadline = time.monotonic() + 60
            while not arrived and time.monotonic() < deadline:
                time.sleep(0.005)
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--save-freq", type=int, default=None)
    parser.add_argument("--kill-rank", type=int, default=-1)
    parser.add_argument("--signal-ready", default=None)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)

    distkeras.utils.set_random_seed(7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1)) + 0.1 * rng.normal(size=(320, 1))).astype("float32")
    model = distkeras.Sequential(
        [
            distkeras.Input((8,)),
            layers.Dense(16, activation="relu"),
            layers.Dropout(0.25),
            layers.GaussianNoise(0.05),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer=distkeras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    fault = Fault(args, args.outdir)
    backup = distkeras.callbacks.BackupAndRestore(
        args.outdir / "backup", save_freq=args.save_freq or "epoch"
    )
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[backup, fault])
    if distributed.rank() == 0:
        np.savez(args.outdir / "weights.npz", *model.get_weights())
        (args.outdir / "history.json").write_text(json.dumps(history.history))
        (args.outdir / "batches.json").write_text(json.dumps(fault.batches))


if __name__ == "__main__":
    main()
