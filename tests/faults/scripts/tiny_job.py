"""A tiny training job for the fault tests, run as `python tiny_job.py OUTDIR [options]`.

A Dense regression on 320 samples, 3 epochs of 20 global batches of 16 with Adam, seeded, with
`BackupAndRestore(OUTDIR/backup)`. Rank 0 writes the final weights (`weights.npz`), the
history (`history.json`) and the steps this run trained (`batches.json`); every rank writes
`attempt<restart count>_rank<rank>.json` so the tests can see what
`distkeras.distributed.restart_count()` said. Options inject faults:

    --kill-rank R        rank R SIGKILLs itself in epoch 2, step 6, on the first attempt only
    --signal-ready FILE  rank 0 writes its pid to FILE in epoch 2 after step 6 and waits until
                         a SIGTERM or SIGUSR1 reaches it (the test sends it), once per OUTDIR
    --custom-step KIND   the model overrides train_step: "guide" (the keras.io guide's step)
                         or "every-other" (it trains on every other batch only)
"""

import argparse
import json
from pathlib import Path

import numpy as np
from fault_callback import Fault  # beside this script, on sys.path as its folder
from guide_step import EveryOtherStep, GuideStep

import distkeras
from distkeras import distributed, layers

MODELS = {None: distkeras.Sequential, "guide": GuideStep, "every-other": EveryOtherStep}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--kill-rank", type=int, default=-1)
    parser.add_argument("--signal-ready", default=None)
    parser.add_argument("--custom-step", choices=["guide", "every-other"], default=None)
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
    model = MODELS[args.custom_step](
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
