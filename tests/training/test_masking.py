"""Masking end to end: Embedding(mask_zero=True) -> LSTM -> Dense, trained with fit.

A hand-written LSTM (Keras gate order i, f, c, o; Keras-layout weights from get_weights) run on
the unpadded tokens is the reference: padding must change neither predictions nor losses.
"""

import numpy as np
import torch

import distkeras
from distkeras import layers

VOCAB, DIM, UNITS = 12, 4, 5


def reference_last_state(weights, tokens):
    """Keras LSTM over ``tokens`` (no padding): the last hidden state."""
    table, kernel, recurrent, bias = (torch.tensor(w, dtype=torch.float64) for w in weights)
    h = torch.zeros(UNITS, dtype=torch.float64)
    c = torch.zeros(UNITS, dtype=torch.float64)
    for token in tokens:
        z = table[token] @ kernel + h @ recurrent + bias
        i, f, g, o = z.split(UNITS)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    return h


def pad(sequences, length, pre=False):
    out = np.zeros((len(sequences), length), dtype="int64")
    for row, seq in enumerate(sequences):
        if pre:
            out[row, length - len(seq) :] = seq
        else:
            out[row, : len(seq)] = seq
    return out


def make_data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    sequences = [rng.integers(1, VOCAB, rng.integers(2, 7)).tolist() for _ in range(n)]
    y = np.array([[float(np.mean(s) > VOCAB / 2)] for s in sequences], dtype="float32")
    return sequences, y


def test_masked_lstm_classifier_ignores_padding():
    sequences, y = make_data()
    model = distkeras.Sequential(
        [
            distkeras.Input((None,), dtype="int32"),  # any length
            layers.Embedding(VOCAB, DIM, mask_zero=True),
            layers.LSTM(UNITS),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(pad(sequences, 8), y, batch_size=8, epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < history.history["loss"][0]

    table, kernel, recurrent, bias, dense_k, dense_b = model.get_weights()
    expected = np.stack(
        [
            torch.sigmoid(
                reference_last_state([table, kernel, recurrent, bias], s)
                @ torch.tensor(dense_k, dtype=torch.float64)
                + torch.tensor(dense_b, dtype=torch.float64)
            ).numpy()
            for s in sequences
        ]
    )
    for padded in (pad(sequences, 8), pad(sequences, 11), pad(sequences, 8, pre=True)):
        np.testing.assert_allclose(
            model.predict(padded, batch_size=5, verbose=0), expected, rtol=1e-5, atol=1e-6
        )
    # The same rows unpadded, one at a time.
    for s, want in zip(sequences[:3], expected):
        np.testing.assert_allclose(
            model.predict_on_batch(np.array([s])), [want], rtol=1e-5, atol=1e-6
        )
    # Losses agree too: evaluate on two paddings.
    np.testing.assert_allclose(
        model.evaluate(pad(sequences, 8), y, verbose=0),
        model.evaluate(pad(sequences, 10, pre=True), y, verbose=0),
        rtol=1e-5,
    )


def test_masked_per_step_loss_averages_over_unpadded_steps():
    sequences, _ = make_data(10, seed=1)
    x = pad(sequences, 7)
    targets = np.random.default_rng(2).standard_normal((10, 7, 1)).astype("float32")
    inputs = distkeras.Input((7,), dtype="int64")
    hidden = layers.LSTM(UNITS, return_sequences=True)(
        layers.Embedding(VOCAB, DIM, mask_zero=True)(inputs)
    )
    model = distkeras.Model(inputs, layers.Dense(1)(hidden))
    model.compile(optimizer="sgd", loss="mse")
    pred = model.predict(x, verbose=0)
    valid = x != 0
    squared = ((pred - targets) ** 2)[..., 0]
    np.testing.assert_allclose(
        model.evaluate(x, targets, batch_size=10, verbose=0), squared[valid].mean(), rtol=1e-5
    )
    # Targets at padded steps do not matter.
    noisy = targets.copy()
    noisy[~valid] = 100.0
    np.testing.assert_allclose(
        model.evaluate(x, noisy, batch_size=10, verbose=0), squared[valid].mean(), rtol=1e-5
    )
    history = model.fit(x, noisy, batch_size=5, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all() and history.history["loss"][0] < 50
