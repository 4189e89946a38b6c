"""Models with their own train_step/test_step/compute_loss: OUTDIR/user_steps_rank<R>.pkl.

Run on 1 worker and on 2 (``test_user_steps.py``): the histories, weights, evaluate() and
predict() of every program must agree, and each rank must have called train_step itself.
"""

import os
import pickle
import sys

import numpy as np

import distkeras
from distkeras import distributed
from distkeras.utils import set_random_seed

sys.path.insert(0, os.getcwd())
from tests.training.test_user_steps import (  # noqa: E402
    guide_model,
    lower_level_model,
    two_optimizer_model,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 6)).astype("float32")
Y = (X @ RNG.normal(size=(6, 1))).astype("float32")


def add_loss_model():
    """compile(optimizer) with no loss: trains on an endpoint layer's add_loss alone."""

    class Endpoint(distkeras.layers.Layer):
        def call(self, y_pred, y_true):
            self.add_loss(distkeras.ops.mean((y_pred - y_true) ** 2))
            return y_pred

    inputs, targets = distkeras.Input((6,)), distkeras.Input((1,))
    outputs = Endpoint()(distkeras.layers.Dense(1)(inputs), targets)
    model = distkeras.Model([inputs, targets], outputs)
    model.compile(optimizer=distkeras.optimizers.SGD(0.05))
    return model


def distill_model():
    """A compute_loss override (distillation's shape) with the built-in train_step."""

    class Model(distkeras.Model):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return distkeras.ops.mean(distkeras.ops.abs(y_pred - y)) + sum(self.losses)

    inputs = distkeras.Input((6,))
    dense = distkeras.layers.Dense(1, kernel_regularizer=distkeras.regularizers.l2(0.01))
    model = Model(inputs, dense(inputs))
    model.compile(optimizer="adam", metrics=["mse"])
    return model


def dropout_model():
    """The guide's train_step on a model with Dropout: masks are drawn per sample, so the
    2-worker run draws the 1-worker run's masks."""
    custom_model = type(guide_model(distkeras))
    inputs = distkeras.Input((6,))
    hidden = distkeras.layers.Dense(8, activation="relu")(inputs)
    outputs = distkeras.layers.Dense(1)(distkeras.layers.Dropout(0.3)(hidden))
    model = custom_model(inputs, outputs)
    model.compile(optimizer=distkeras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    return model


def run(name, build, fit_kwargs, batch_size):
    calls = []
    set_random_seed(0)
    model = build(calls) if name == "guide" else build()
    kwargs = dict(batch_size=batch_size, epochs=2, verbose=0, **fit_kwargs)
    if name == "two_optimizers":  # no call(), no compiled loss: training only, as in Keras
        history = model.fit(X, Y, **kwargs)
        evaluation = predictions = None
    elif name == "add_loss":
        history = model.fit([X, Y], **kwargs)
        evaluation = model.evaluate([X, Y], batch_size=batch_size, verbose=0)
        predictions = model.predict([X, Y], batch_size=batch_size, verbose=0)
    else:
        history = model.fit(X, Y, validation_data=(X, Y), **kwargs)
        evaluation = model.evaluate(X, Y, batch_size=batch_size, verbose=0)
        predictions = model.predict(X, batch_size=batch_size, verbose=0)
    return {
        "history": history.history,
        "weights": model.get_weights(),
        "evaluate": evaluation,
        "predict": predictions,
        "calls": len(calls),
    }


def main(outdir: str) -> None:
    results = {
        # 16 = 8 + 8 per worker: the guide's unweighted loss Mean is exact too.
        "guide": run("guide", lambda calls: guide_model(distkeras, calls), {}, 16),
        "lower_level": run("lower_level", lambda: lower_level_model(distkeras), {}, 16),
        "two_optimizers": run("two_optimizers", lambda: two_optimizer_model(distkeras), {}, 16),
        # 15 = 8 + 7: uneven parts; batch-size-weighted trackers stay exact.
        "distill": run("distill", distill_model, {"shuffle": True}, 15),
        "guide_dropout": run("guide_dropout", dropout_model, {"shuffle": True}, 16),
        "add_loss": run("add_loss", add_loss_model, {"shuffle": True}, 15),
    }
    rank = distributed.rank()
    with open(os.path.join(outdir, f"user_steps_rank{rank}.pkl"), "wb") as f:
        pickle.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1])
