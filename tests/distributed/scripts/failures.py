"""Misconfigured workers must fail loudly on every rank: ``failures.py OUTDIR``.

1. Each rank gets arrays of a different length: fit, evaluate and predict raise.
2. Rank r builds ``Dense(4 + r)``: fit raises, naming the layer.
Each rank records the messages in OUTDIR/failures_rank<R>.json. Then
3. the last rank stops taking part (it sleeps) while rank 0 enters a collective: with
   DISTKERAS_TIMEOUT set low, rank 0 raises a timeout error, uncaught, and the launcher
   must end the job with a non-zero exit code within seconds.
"""

import json
import os
import sys
import time

import numpy as np

import distkeras
from distkeras import distributed, layers


def model_with(units: int) -> distkeras.Model:
    model = distkeras.Sequential(
        [distkeras.Input(shape=(3,)), layers.Dense(units, name="mismatched"), layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def error_of(fn) -> str | None:
    try:
        fn()
    except ValueError as error:
        return str(error)
    return None


def main(outdir: str) -> None:
    comm = distributed.init()
    rank = comm.rank
    record = {}

    n = 12 + rank
    x, y = np.ones((n, 3), "float32"), np.ones((n, 1), "float32")
    model = model_with(4)
    record["uneven_fit"] = error_of(lambda: model.fit(x, y, batch_size=4, verbose=0))
    record["uneven_evaluate"] = error_of(lambda: model.evaluate(x, y, batch_size=4, verbose=0))
    record["uneven_predict"] = error_of(lambda: model.predict(x, batch_size=4, verbose=0))

    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    record["mismatch_fit"] = error_of(
        lambda: model_with(4 + rank).fit(x, y, batch_size=4, verbose=0)
    )
    # Still usable after those errors: the checks raised on every rank at the same point.
    record["after_errors"] = comm.all_gather_object(rank)
    with open(os.path.join(outdir, f"failures_rank{rank}.json"), "w") as f:
        json.dump(record, f)
    comm.barrier()

    if rank == comm.world_size - 1:
        time.sleep(120)  # alive but gone quiet: only the timeout can end rank 0's wait
    else:
        with open(os.path.join(outdir, f"collective_start_rank{rank}"), "w") as f:
            f.write(repr(time.time()))
        model.fit(x, y, batch_size=4, epochs=100, verbose=0)


if __name__ == "__main__":
    main(sys.argv[1])
