"""The multi-host test's job: `python multihost_job.py OUTDIR [--hold]`.

A tiny seeded regression (64 samples, 2 epochs of 4 global batches of 16, Adam); rank 0 writes
the final weights (`weights.npz`) and history (`history.json`). With `--hold` every rank then
writes `holding_rank<R>` and keeps all-reducing a small tensor every 0.1 s for up to 60 s, so
the test can cut the network while the workers talk.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import distkeras
from distkeras import distributed, layers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args()

    distkeras.utils.set_random_seed(5)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1))).astype("float32")
    model = distkeras.Sequential(
        [distkeras.Input((4,)), layers.Dense(8, activation="tanh"), layers.Dense(1)]
    )
    model.compile(optimizer=distkeras.optimizers.Adam(0.01), loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    rank = distributed.rank()
    if rank == 0:
        np.savez(args.outdir / "weights.npz", *model.get_weights())
        (args.outdir / "history.json").write_text(json.dumps(history.history))
    if args.hold:
        (args.outdir / f"holding_rank{rank}").write_text(str(time.time()))
        deadline = time.monotonic() + 60
        tensor = torch.ones(4)
        while time.monotonic() < deadline:
            distributed.communicator().all_reduce(tensor)
            time.sleep(0.1)


if __name__ == "__main__":
    main()
