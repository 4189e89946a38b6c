"""A model with image augmentation layers; its results must not depend on the worker count.

Run as ``python -m launcher -n N --backend B augmentation_equivalence.py OUTDIR``; every rank
writes ``OUTDIR/rank<R>.npz`` (final weights, history, evaluate() and predict()), and
``tests/distributed/test_augmentation_equivalence.py`` compares 1 and 2 workers on both
backends. The per-sample layers (flip, rotation, zoom, translation, shear, contrast,
brightness, hue, grayscale, erasing, perspective...) are seeded and unseeded; 14 images of
6x6x3 in global batches of 4 (the last, 2, splits unevenly), shuffled, 2 epochs.
"""

import os
import sys

import numpy as np

import distkeras
from distkeras import layers


def build_model() -> distkeras.Model:
    inputs = distkeras.Input(shape=(6, 6, 3))
    x = layers.RandomFlip()(inputs)
    x = layers.RandomRotation(0.2, seed=3)(x)
    x = layers.RandomZoom(0.2, fill_mode="constant")(x)
    x = layers.RandomTranslation(0.2, 0.1, seed=4)(x)
    x = layers.RandomShear(x_factor=0.2, y_factor=0.1)(x)
    x = layers.RandomPerspective(factor=0.7, scale=0.3, seed=6)(x)
    x = layers.RandomContrast(0.3, value_range=(0, 1))(x)
    x = layers.RandomBrightness(0.2, value_range=(0, 1), seed=5)(x)
    x = layers.RandomHue(0.3, value_range=(0, 1))(x)
    x = layers.RandomGrayscale(0.3)(x)
    x = layers.RandomInvert(0.3, value_range=(0, 1))(x)
    x = layers.RandomErasing(value_range=(0, 1), seed=7)(x)
    x = layers.RandomElasticTransform(value_range=(0, 1))(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(3, activation="softmax")(x)
    model = distkeras.Model(inputs, outputs)
    model.compile(
        optimizer=distkeras.optimizers.Adam(learning_rate=0.02),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main(outdir: str) -> None:
    distkeras.utils.set_random_seed(11)
    rng = np.random.default_rng(0)
    x = rng.random((14, 6, 6, 3)).astype("float32")
    y = rng.integers(0, 3, 14)
    model = build_model()
    history = model.fit(x, y, batch_size=4, epochs=2, shuffle=True, verbose=0)
    results = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    results.update({f"history_{k}": np.asarray(v) for k, v in history.history.items()})
    results["evaluate"] = np.asarray(model.evaluate(x, y, batch_size=4, verbose=0))
    results["predict"] = model.predict(x, batch_size=4, verbose=0)
    results["world_size"] = np.asarray(distkeras.distributed.world_size())
    rank = distkeras.distributed.rank()
    np.savez(os.path.join(outdir, f"rank{rank}.npz"), **results)


if __name__ == "__main__":
    main(sys.argv[1])
