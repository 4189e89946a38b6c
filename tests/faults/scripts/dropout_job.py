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
from pathlib import Path

import numpy as np
from fault_callback import Fault  # beside this script, on sys.path as its folder

import distkeras
from distkeras import distributed, layers


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
    fault = Fault(args, args.outdir, kill_once=True)
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
