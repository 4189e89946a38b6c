"""One training script whose results must not depend on the number of workers.

Run as ``python -m launcher -n N --backend B equivalence.py OUTDIR``; every rank writes
``OUTDIR/rank<R>.npz`` with its final weights, history, evaluate() and predict() results, and
``tests/distributed/test_equivalence.py`` compares them across worker counts and ranks.

What it exercises: a functional two-output model with loss_weights, an L2 regularizer,
BatchNormalization(synchronized=True), Adam, accuracy/AUC/Precision metrics, validation_split,
shuffle=True, and sample counts whose last global batch is uneven and smaller than the
number of workers (so some ranks hold zero samples of it).
"""

import os
import sys

import numpy as np

import distkeras
from distkeras import layers

SAMPLES = 34  # 25 training (8, 8, 8, 1: the last batch leaves ranks with no sample), 9 val


def build_model() -> distkeras.Model:
    inputs = distkeras.Input(shape=(5,), name="features")
    hidden = layers.Dense(
        6, activation="relu", kernel_regularizer=distkeras.regularizers.l2(0.01), name="hidden"
    )(inputs)
    hidden = layers.BatchNormalization(synchronized=True, momentum=0.8, name="bn")(hidden)
    binary = layers.Dense(1, activation="sigmoid", name="binary")(hidden)
    classes = layers.Dense(3, activation="softmax", name="classes")(hidden)
    model = distkeras.Model(inputs, [binary, classes], name="two_heads")
    model.compile(
        optimizer=distkeras.optimizers.Adam(learning_rate=0.05),
        loss={"binary": "binary_crossentropy", "classes": "sparse_categorical_crossentropy"},
        loss_weights={"binary": 0.7, "classes": 0.3},
        metrics={
            "binary": [
                "accuracy",
                distkeras.metrics.AUC(name="auc"),
                distkeras.metrics.Precision(name="precision"),
            ],
            "classes": ["accuracy"],
        },
    )
    return model


def main(outdir: str) -> None:
    distkeras.utils.set_random_seed(7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, 5)).astype("float32")
    y_binary = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")[:, None]
    y_classes = np.digitize(x[:, 2], [-0.4, 0.4]).astype("int64")

    model = build_model()
    history = model.fit(
        x,
        {"binary": y_binary, "classes": y_classes},
        batch_size=8,
        epochs=3,
        validation_split=0.25,
        shuffle=True,
        verbose=0,
    )
    # 34 samples in batches of 7: 7, 7, 7, 7, 6 (uneven, never fewer than 3 per batch).
    evaluation = model.evaluate(
        x, {"binary": y_binary, "classes": y_classes}, batch_size=7, verbose=0, return_dict=True
    )
    predicted = model.predict(x, batch_size=5, verbose=0)  # 5, ..., 5, 4

    rank = distkeras.distributed.rank()
    record = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    record.update({f"history_{k}": np.asarray(v) for k, v in history.history.items()})
    record.update({f"evaluate_{k}": np.asarray(v) for k, v in evaluation.items()})
    record.update({f"predict_{i}": p for i, p in enumerate(predicted)})
    record["world_size"] = np.asarray(distkeras.distributed.world_size())
    np.savez(os.path.join(outdir, f"rank{rank}.npz"), **record)


if __name__ == "__main__":
    main(sys.argv[1])
