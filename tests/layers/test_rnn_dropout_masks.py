"""Dropout masks of RNN cells called step by step (Keras's DropoutRNNCell contract).

An RNN over stacked or custom cells calls each cell once per time step. As in Keras, a cell
keeps one dropout mask (and one recurrent dropout mask) for every step of a sequence, drawn at
its first step, and the RNN layer clears them after the call, so the next batch gets new ones.
"""

import numpy as np
import torch

import distkeras
from distkeras import layers


def _identity_cell(**kwargs) -> layers.SimpleRNNCell:
    """h_t = x_t * mask: identity kernel, zero recurrent kernel, linear activation."""
    cell = layers.SimpleRNNCell(
        6,
        activation="linear",
        use_bias=False,
        kernel_initializer="identity",
        recurrent_initializer="zeros",
        **kwargs,
    )
    return cell


def test_stacked_cells_keep_one_input_mask_per_sequence():
    layer = layers.RNN([_identity_cell(dropout=0.5, seed=3)], return_sequences=True)
    x = torch.ones(4, 5, 6)
    first = layer(x, training=True).detach().numpy()
    # Every step of a sequence sees the same mask: outputs equal across time.
    for t in range(1, 5):
        np.testing.assert_array_equal(first[:, t], first[:, 0])
    kept = first[:, 0] != 0
    assert 0 < kept.sum() < kept.size  # some dropped, some kept (rate 0.5 over 24 entries)
    np.testing.assert_allclose(first[:, 0][kept], 2.0)  # scaled by 1 / (1 - rate)
    # The layer cleared the masks after the call: the next call draws new ones.
    assert layer.cell.cells[0]._dropout_mask_cache is None
    second = layer(x, training=True).detach().numpy()
    assert not np.array_equal(first, second)


def test_recurrent_mask_is_reused_across_steps():
    cell = layers.SimpleRNNCell(
        3,
        activation="linear",
        use_bias=False,
        kernel_initializer="zeros",
        recurrent_initializer="identity",
        recurrent_dropout=0.5,
        seed=1,
    )
    layer = layers.RNN([cell], return_sequences=True, return_state=True)
    out, *_ = layer(torch.zeros(8, 4, 2), initial_state=[torch.ones(8, 3)], training=True)
    out = out.detach().numpy()
    # h_t = h_{t-1} * mask each step: with one mask, h_t = mask ** t.
    mask = out[:, 0]
    for t in range(1, 4):
        np.testing.assert_allclose(out[:, t], mask ** (t + 1), rtol=1e-6)


def test_direct_cell_calls_reuse_the_mask_until_reset():
    cell = _identity_cell(dropout=0.5, seed=4)
    x, h = torch.ones(3, 6), [torch.zeros(3, 6)]
    a, _ = cell(x, h, training=True)
    b, _ = cell(x, h, training=True)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    cell.reset_dropout_mask()
    c, _ = cell(x, h, training=True)
    assert not np.array_equal(a.detach().numpy(), c.detach().numpy())
    # Inference never drops.
    np.testing.assert_array_equal(cell(x, h, training=False)[0].detach().numpy(), x.numpy())


def test_fit_with_stacked_dropout_cells_trains():
    model = distkeras.Sequential(
        [
            distkeras.Input((5, 3)),
            layers.RNN([layers.LSTMCell(4, dropout=0.3, recurrent_dropout=0.3)]),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 5, 3)).astype("float32"), rng.normal(size=(16, 1))
    history = model.fit(x, y.astype("float32"), batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
