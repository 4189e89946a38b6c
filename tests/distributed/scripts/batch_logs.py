"""Per-step logs under N workers: OUTDIR/batch_logs_rank<R>.pkl (``test_batch_logs.py``).

Two fits, each recording what ``on_train_batch_end`` received on this rank:

* ``two_outputs``: a two-output functional model with a kernel regularizer and an activity
  penalty, global batches of 15 (8 + 7 on 2 workers), loss weights. Its per-step "loss" and
  "<output>_loss" must be the one-process values on every rank.
* ``nan``: sample 21 is NaN (it lands on one worker's part of the third batch); with
  TerminateOnNaN every rank must stop after that batch, as one process does, and fit must
  return normally.
"""

import os
import pickle
import sys

import numpy as np

import distkeras
from distkeras import distributed, layers

RNG = np.random.default_rng(0)
X = RNG.normal(size=(45, 5)).astype("float32")
Y1 = (X @ RNG.normal(size=(5, 1))).astype("float32")
Y2 = (X[:, :1] > 0).astype("float32")


class Record(distkeras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(dict(logs))


def two_outputs() -> list[dict]:
    distkeras.utils.set_random_seed(0)
    inputs = distkeras.Input((5,))
    hidden = layers.Dense(6, activation="relu", kernel_regularizer="l2", activity_regularizer="l1")(
        inputs
    )
    model = distkeras.Model(
        inputs,
        {"value": layers.Dense(1, name="value")(hidden),
         "sign": layers.Dense(1, activation="sigmoid", name="sign")(hidden)},
    )  # fmt: skip
    model.compile(
        optimizer="adam",
        loss={"value": "mse", "sign": "binary_crossentropy"},
        loss_weights={"value": 1.0, "sign": 0.5},
    )
    record = Record()
    model.fit(X, {"value": Y1, "sign": Y2}, batch_size=15, epochs=2, verbose=0,
              callbacks=[record])  # fmt: skip
    return record.steps


def nan() -> list[dict]:
    distkeras.utils.set_random_seed(0)
    x = X.copy()
    x[21] = np.nan
    model = distkeras.Sequential([distkeras.Input((5,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    record = Record()
    model.fit(x, Y1, batch_size=10, epochs=2, verbose=0, shuffle=False,
              callbacks=[record, distkeras.callbacks.TerminateOnNaN()])  # fmt: skip
    return record.steps


def main(outdir: str) -> None:
    results = {"two_outputs": two_outputs(), "nan": nan()}
    with open(os.path.join(outdir, f"batch_logs_rank{distributed.rank()}.pkl"), "wb") as f:
        pickle.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1])
