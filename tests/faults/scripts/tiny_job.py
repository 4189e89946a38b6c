"""A tiny training job for the fault tests, run as `python tiny_job.py OUTDIR [options]`.

A Dense regression on 320 samples, 3 epochs of 20 global batches of 16 with Adam, seeded, with
`BackupAndRestore(OUTDIR/backup)`. Rank 0 writes the final weights (`weights.npz`), the
history (`history.json`) and the steps this run trained (`batches.json`); every rank writes
`attempt<restart count>_rank<rank>.json` so the tests can see what
`distkeras.distributed.restart_count()` said. Options inject faults:

    --kill-rank R        rank R SIGKILLs itself in epoch 2, step 6, on the first attempt only
    --signal-ready FILE  rank 0 writes its pid to FILE in epoch 2 after step 6 and waits until
                         a SIGTERM or SIGUSR1 reaches it (the test sends it), once per OUTDIR
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
    """Injects the requested fault at (FAULT_EPOCH, FAULT_BATCH)."""

    def __init__(self, args, outdir: Path):
        super().__init__()
        self.args, self.outdir, self.epoch = args, outdir, 0
        self.batches = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if (self.epoch, batch) != (FAULT_EPOCH, FAULT_BATCH):
            return
        rank = distributed.rank()
        if rank == self.args.kill_rank and distributed.restart_count() == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        once = self.outdir / "signalled"
        if self.args.signal_ready and rank == 0 and not once.exists():
            once.touch()
            self._wait_for_signal(Path(self.args.signal_ready))

    @staticmethod
    def _wait_for_signal(ready: Path) -> None:
        # Chain onto fit's handlers: they must still see the signal, we only want to know.
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
    parser.add_argument("--kill-rank", type=int, default=-1)
    parser.add_argument("--signal-ready", default=None)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)

    rank, count = distributed.rank(), distributed.restart_count()
    (args.outdir / f"attempt{count}_rank{rank}.json").write_text(
        json.dumps({"restart_count": count, "world_size": distributed.world_size()})
    )

    distkeras.utils.set_random_seed(7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1)) + 0.1 * rng.normal(size=(320, 1))).astype("float32")
    model = distkeras.Sequential(
        [distkeras.Input((8,)), layers.Dense(16, activation="relu"), layers.Dense(1)]
    )
    model.compile(optimizer=distkeras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    fault = Fault(args, args.outdir)
    callbacks = [distkeras.callbacks.BackupAndRestore(args.outdir / "backup"), fault]
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=callbacks)
    if rank == 0:
        np.savez(args.outdir / "weights.npz", *model.get_weights())
        (args.outdir / "history.json").write_text(json.dumps(history.history))
        (args.outdir / "batches.json").write_text(json.dumps(fault.batches))


if __name__ == "__main__":
    main()
