"""A model with every random layer; its results must not depend on the number of workers.

Run as ``python -m launcher -n N --backend B dropout_equivalence.py OUTDIR``; every rank writes
``OUTDIR/rank<R>.npz`` (final weights, history, evaluate() and predict()), and
``tests/distributed/test_dropout_equivalence.py`` compares 1, 2 and 3 workers on both backends.

Three inputs feed Dropout (unseeded, seeded, with a noise_shape), SpatialDropout1D/2D/3D,
GaussianNoise, GaussianDropout, AlphaDropout and a custom layer calling
``distkeras.random.dropout`` with its own SeedGenerator. 22 training samples in global batches
of 8 (the last one, 6, splits unevenly), shuffled, 3 epochs, Adam, validation data. A second
model overrides ``train_step`` and draws latent vectors with ``distkeras.random.normal`` in its
body (as a GAN does), outside any layer call; it trains with a periodic BackupAndRestore
(``save_freq=2``: the backup's metric reduction must not count into the epoch's sums) and logs
a loss tracker updated once per step with the batch mean (3 workers split 8 as 3/3/2: each
worker's mean weighs its share). A third model runs LSTM(dropout, recurrent_dropout),
MultiHeadAttention(dropout) and Attention(dropout) on sequences.
"""

import os
import sys

import numpy as np
import torch

import distkeras
from distkeras import layers


class RandomOpDropout(distkeras.layers.Layer):
    """A custom layer in the Keras guides' style: ``random.dropout`` with a SeedGenerator."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = distkeras.random.SeedGenerator()

    def call(self, inputs, training=None):
        if training:
            return distkeras.random.dropout(inputs, self.rate, seed=self.seed_generator)
        return inputs


def build_model() -> distkeras.Model:
    seq = distkeras.Input(shape=(5, 4), name="seq")
    image = distkeras.Input(shape=(3, 3, 2), name="image")
    volume = distkeras.Input(shape=(2, 2, 2, 2), name="volume")
    a = layers.GaussianNoise(0.2)(seq)
    a = layers.SpatialDropout1D(0.3)(a)
    a = layers.Flatten()(a)
    b = layers.Flatten()(layers.SpatialDropout2D(0.3)(image))
    c = layers.Flatten()(layers.SpatialDropout3D(0.3, seed=4)(volume))
    x = layers.Concatenate()([a, b, c])
    x = layers.Dense(12, activation="relu")(x)
    x = layers.Dropout(0.4)(x)
    x = layers.Dropout(0.3, seed=5)(x)
    x = layers.GaussianDropout(0.2)(x)
    x = layers.Dense(8, activation="selu")(x)
    x = layers.AlphaDropout(0.1)(x)
    x = layers.Dropout(0.25, noise_shape=(1, None))(x)
    x = RandomOpDropout(0.2)(x)
    out = layers.Dense(1, activation="sigmoid")(x)
    model = distkeras.Model([seq, image, volume], out)
    model.compile(
        optimizer=distkeras.optimizers.Adam(learning_rate=0.02),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


class LatentStep(distkeras.Sequential):
    """A keras.io-guide train_step that feeds each sample a latent vector drawn in the step."""

    def train_step(self, data):
        x, y = data
        self.zero_grad()
        z = distkeras.random.normal((x.shape[0], 3), seed=self.latent_seed)
        y_pred = self(torch.cat([x, z], dim=1), training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        weights = self.trainable_weights
        with torch.no_grad():
            self.optimizer.apply([v.value.grad for v in weights], weights)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def latent_model() -> distkeras.Model:
    model = LatentStep(
        [distkeras.Input((7,)), layers.Dense(6, activation="relu"), layers.Dropout(0.3),
         layers.Dense(1)]
    )  # fmt: skip
    model.latent_seed = distkeras.random.SeedGenerator(5)
    model.compile(optimizer="adam", loss="mse")
    return model


def sequence_model() -> distkeras.Model:
    seq = distkeras.Input(shape=(5, 4))
    h = layers.LSTM(4, dropout=0.3, recurrent_dropout=0.25, return_sequences=True)(seq)
    h = layers.MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.3, seed=2)(h, h)
    h = layers.Attention(dropout=0.2)([h, seq[:, :, :1] * h])
    out = layers.Dense(1)(layers.Flatten()(h))
    model = distkeras.Model(seq, out)
    model.compile(optimizer=distkeras.optimizers.Adam(learning_rate=0.02), loss="mse")
    return model


def data(n: int, rng):
    seq = rng.normal(size=(n, 5, 4)).astype("float32")
    image = rng.normal(size=(n, 3, 3, 2)).astype("float32")
    volume = rng.normal(size=(n, 2, 2, 2, 2)).astype("float32")
    y = (seq[:, 0, 0] + image[:, 0, 0, 0] > 0).astype("float32")[:, None]
    return [seq, image, volume], y


def main(outdir: str) -> None:
    distkeras.utils.set_random_seed(11)
    rng = np.random.default_rng(0)
    x, y = data(22, rng)
    x_val, y_val = data(7, rng)
    model = build_model()
    history = model.fit(
        x, y, batch_size=8, epochs=3, shuffle=True, validation_data=(x_val, y_val), verbose=0
    )
    results = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    results.update({f"history_{k}": np.asarray(v) for k, v in history.history.items()})
    results["evaluate"] = np.asarray(model.evaluate(x_val, y_val, batch_size=4, verbose=0))
    results["predict"] = model.predict(x_val, batch_size=4, verbose=0)
    custom = latent_model()
    flat = x[0].reshape(len(y), -1)[:, :4]
    backup = distkeras.callbacks.BackupAndRestore(os.path.join(outdir, "backup"), save_freq=2)
    custom_history = custom.fit(
        flat, y, batch_size=8, epochs=2, shuffle=True, verbose=0, callbacks=[backup]
    )
    results.update({f"custom_weight_{i}": w for i, w in enumerate(custom.get_weights())})
    results["custom_loss"] = np.asarray(custom_history.history["loss"])
    seq_model = sequence_model()
    seq_history = seq_model.fit(x[0], y, batch_size=8, epochs=2, shuffle=True, verbose=0)
    results.update({f"seq_weight_{i}": w for i, w in enumerate(seq_model.get_weights())})
    results["seq_loss"] = np.asarray(seq_history.history["loss"])
    results["world_size"] = np.asarray(distkeras.distributed.world_size())
    rank = distkeras.distributed.rank()
    np.savez(os.path.join(outdir, f"rank{rank}.npz"), **results)


if __name__ == "__main__":
    main(sys.argv[1])
