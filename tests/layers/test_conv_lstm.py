"""ConvLSTM1D/2D/3D beyond the sweep: masks, states, stateful batches and dropout, against
Keras 3 on the same weights (Keras runs them on torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from distkeras.random import streams
from tests.ops.keras_reference import import_keras


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def _pair(keras, kwargs, shape, seed=0):
    rng = np.random.default_rng(seed)
    theirs = keras.layers.ConvLSTM2D(**kwargs)
    theirs.build(shape)
    weights = [0.3 * rng.standard_normal(w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours = layers.ConvLSTM2D(**kwargs)
    ours.build(shape)
    ours.set_weights(weights)
    return theirs, ours, rng


def _np(x):
    return np.asarray(x.detach().cpu())


@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_masked_steps_keep_states_like_keras(keras, zero_output_for_mask):
    kwargs = dict(filters=2, kernel_size=2, return_sequences=True, return_state=True)
    kwargs["zero_output_for_mask"] = zero_output_for_mask
    theirs, ours, rng = _pair(keras, kwargs, (3, 5, 4, 4, 2))
    x = rng.standard_normal((3, 5, 4, 4, 2)).astype("float32")
    mask = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=bool)
    expected = theirs(x, mask=mask)
    got = ours(torch.as_tensor(x), mask=torch.as_tensor(mask))
    for a, b in zip(got, expected):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-5)


def test_initial_state_and_return_state_match_keras(keras):
    kwargs = dict(filters=3, kernel_size=3, padding="same", return_state=True)
    theirs, ours, rng = _pair(keras, kwargs, (2, 3, 5, 5, 2))
    x = rng.standard_normal((2, 3, 5, 5, 2)).astype("float32")
    h0, c0 = (rng.standard_normal((2, 5, 5, 3)).astype("float32") for _ in range(2))
    expected = theirs(x, initial_state=[h0, c0])
    got = ours(torch.as_tensor(x), initial_state=[torch.as_tensor(h0), torch.as_tensor(c0)])
    for a, b in zip(got, expected):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-5)


def test_stateful_layer_carries_states_between_batches(keras):
    kwargs = dict(filters=2, kernel_size=2, stateful=True)
    theirs, ours, rng = _pair(keras, kwargs, (2, 3, 4, 4, 1))
    for _ in range(2):
        x = rng.standard_normal((2, 3, 4, 4, 1)).astype("float32")
        np.testing.assert_allclose(_np(ours(torch.as_tensor(x))), _np(theirs(x)), atol=1e-5)
    ours.reset_state()
    theirs.reset_state()
    x = rng.standard_normal((2, 3, 4, 4, 1)).astype("float32")
    np.testing.assert_allclose(_np(ours(torch.as_tensor(x))), _np(theirs(x)), atol=1e-5)


def test_keras_rank_error_comes_from_input_spec(keras):
    ours = layers.ConvLSTM2D(2, 2)
    with pytest.raises(ValueError) as err:
        ours(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError) as keras_err:
        keras.layers.ConvLSTM2D(2, 2, name=ours.name)(np.zeros((2, 3, 4, 4), "float32"))
    assert str(err.value) == str(keras_err.value)


def _step(layer, x, offset, global_size):
    streams.SAMPLES.begin(offset, x.shape[0], global_size, 3, 11)
    try:
        return layer(x, training=True)
    finally:
        streams.SAMPLES.end()


@pytest.mark.parametrize("kind", ["dropout", "recurrent_dropout"])
def test_dropout_masks_are_per_sample_whatever_the_worker(kind):
    layer = layers.ConvLSTM2D(2, 2, **{kind: 0.5}, seed=4)
    x = torch.rand(6, 3, 4, 4, 2) + 0.5
    whole = _step(layer, x, 0, 6)
    plain = layer(x, training=False)
    assert not torch.allclose(whole, plain)  # dropout was applied
    for lo, hi in [(0, 2), (2, 6)]:
        torch.testing.assert_close(_step(layer, x[lo:hi], lo, 6), whole[lo:hi])


def test_trains_in_fit_and_round_trips_keras_files(keras, tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 3, 5, 5, 1)).astype("float32")
    y = rng.standard_normal((8, 4, 4, 2)).astype("float32")
    model = distkeras.Sequential(
        [distkeras.Input((3, 5, 5, 1)), layers.ConvLSTM2D(2, 2, recurrent_dropout=0.2)]
    )
    model.compile(optimizer="adam", loss="mse")
    before = model.get_weights()
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert all(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    path = tmp_path / "ours.keras"
    model.save(path)
    theirs = keras.models.load_model(path)
    np.testing.assert_allclose(
        np.asarray(theirs.predict(x, verbose=0)), model.predict(x, verbose=0), atol=1e-5
    )


def test_stacked_cells_keras_files_move_both_ways(keras, tmp_path):
    # RNN([cells]) is StackedRNNCells (layers/stacked_cells.py); its weights sit under
    # cell/cells/<cell> in Keras's files.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 5)).astype("float32")
    inputs = keras.Input((4, 5))
    cells = [keras.layers.LSTMCell(3), keras.layers.GRUCell(2)]
    theirs = keras.Model(inputs, keras.layers.RNN(cells, return_sequences=True)(inputs))
    theirs.set_weights([rng.standard_normal(w.shape).astype("float32") for w in theirs.weights])
    path = tmp_path / "theirs.keras"
    theirs.save(path)
    ours = distkeras.models.load_model(path)
    expected = np.asarray(theirs.predict(x, verbose=0))
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, atol=1e-5)
    back = tmp_path / "ours.keras"
    ours.save(back)
    np.testing.assert_allclose(
        np.asarray(keras.models.load_model(back).predict(x, verbose=0)), expected, atol=1e-5
    )
