"""Inference agrees across ranks: OUTDIR/inference_rank<R>.pkl.

1. ``predict`` before any fit on a model each rank initialised differently (no shared seed)
   must use rank 0's weights everywhere.
2. After fit without ``synchronized``, BatchNormalization's moving statistics (which follow
   each rank's own batches) are averaged, so every rank holds the same ones.
"""

import os
import pickle

import numpy as np
import torch

from distkeras import distributed, layers
from distkeras.models import Sequential
from distkeras.utils import set_random_seed


def main(outdir: str) -> None:
    rank = distributed.rank()
    torch.manual_seed(1000 + rank)  # deliberately different initial weights per rank
    model = Sequential([layers.Input((4,)), layers.Dense(3, name="dense_predict")])
    x = np.arange(28, dtype="float32").reshape(7, 4) / 10.0
    predictions = model.predict(x, batch_size=4, verbose=0)

    set_random_seed(0)
    bn_model = Sequential([layers.Input((3,)), layers.Dense(3), layers.BatchNormalization()])
    bn_model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    bn_model.fit(
        rng.normal(size=(20, 3)).astype("float32") * (1 + np.arange(3)),
        rng.normal(size=(20, 3)).astype("float32"),
        batch_size=8,
        epochs=2,
        verbose=0,
    )
    moving = [w for w in bn_model.get_weights()[-2:]]
    result = {"predictions": predictions, "weights": model.get_weights(), "moving": moving, "x": x}
    with open(os.path.join(outdir, f"inference_rank{rank}.pkl"), "wb") as f:
        pickle.dump(result, f)
