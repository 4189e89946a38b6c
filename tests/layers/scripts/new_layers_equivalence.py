"""A model with GroupQueryAttention and ConvLSTM2D dropout, SpectralNormalization, EinsumDense
and a TorchModuleWrapper; its results must not depend on the number of workers.

Run as ``python -m launcher -n N --backend B new_layers_equivalence.py OUTDIR``; every rank
writes ``OUTDIR/rank<R>.npz`` (final weights, history, predict()), which
``tests/layers/test_new_layers_distributed.py`` compares for 1 and 2 workers.
"""

import os
import sys

import numpy as np
import torch

import distkeras
from distkeras import layers


def build_model() -> distkeras.Model:
    seq = distkeras.Input(shape=(5, 6), name="seq")
    video = distkeras.Input(shape=(3, 4, 4, 1), name="video")
    a = layers.GroupQueryAttention(3, 4, 2, dropout=0.3)(seq, seq)
    a = layers.Flatten()(a)
    b = layers.ConvLSTM2D(2, 2, dropout=0.3, recurrent_dropout=0.3, seed=3)(video)
    b = layers.Flatten()(b)
    x = layers.Concatenate()([a, b])
    x = layers.SpectralNormalization(layers.Dense(6, activation="tanh"))(x)
    x = layers.EinsumDense("ab,bc->ac", 4, bias_axes="c", activation="relu")(x)
    out = layers.TorchModuleWrapper(torch.nn.Linear(4, 1))(x)
    model = distkeras.Model([seq, video], out)
    # SGD: the GQA key bias gets ~0 gradients (softmax ignores a per-row shift), which
    # Adam would scale up to full steps of rounding noise.
    model.compile(optimizer=distkeras.optimizers.SGD(learning_rate=0.05), loss="mse")
    return model


def main(outdir: str) -> None:
    distkeras.utils.set_random_seed(11)
    rng = np.random.default_rng(0)
    x = [
        rng.normal(size=(22, 5, 6)).astype("float32"),
        rng.normal(size=(22, 3, 4, 4, 1)).astype("float32"),
    ]
    y = rng.normal(size=(22, 1)).astype("float32")
    model = build_model()
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=True, verbose=0)
    results = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    results["history_loss"] = np.asarray(history.history["loss"])
    results["predict"] = model.predict(x, batch_size=8, verbose=0)
    results["world_size"] = np.asarray(distkeras.distributed.world_size())
    np.savez(os.path.join(outdir, f"rank{distkeras.distributed.rank()}.npz"), **results)


if __name__ == "__main__":
    main(sys.argv[1])
