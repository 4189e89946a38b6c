"""Eager calls on numpy/lists/scalars, symbolic masks, and RNN([cells]), against Keras 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from tests.ops.keras_reference import assert_same, import_keras

FLOATS = np.linspace(-1.0, 1.0, 24).reshape(2, 4, 3)


def _layer_pair(make, sample):
    """The same layer in both libraries, built, with Keras's weights copied into ours."""
    keras = import_keras()
    theirs, ours = make(keras), make(distkeras)
    theirs(sample)
    ours(sample)
    ours.set_weights(theirs.get_weights())
    return ours, theirs


LAYERS = {
    "Dense": lambda L: L.layers.Dense(2),
    "Conv1D": lambda L: L.layers.Conv1D(2, 2),
    "LayerNormalization": lambda L: L.layers.LayerNormalization(),
    "Activation": lambda L: L.layers.Activation("tanh"),
    "LSTM": lambda L: L.layers.LSTM(2),
    "Identity": lambda L: L.layers.Identity(),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numpy_floats_convert_to_floatx_as_keras(name, dtype):
    sample = FLOATS.astype(dtype)
    ours, theirs = _layer_pair(LAYERS[name], sample)
    assert_same(ours(sample), theirs(sample))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_python_lists_convert_like_the_same_numpy_array(name):
    # Keras refuses Python lists as positional inputs; distkeras converts them (README note).
    ours, theirs = _layer_pair(LAYERS[name], FLOATS.astype("float32"))
    assert_same(ours(FLOATS.tolist()), theirs(FLOATS.astype("float32")))


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_integer_and_boolean_arrays_keep_their_dtype_as_keras(dtype):
    keras = import_keras()
    ids = (np.arange(6).reshape(2, 3) % 4).astype(dtype)
    assert_same(distkeras.layers.Identity()(ids), keras.layers.Identity()(ids))
    if dtype != "bool":
        ours, theirs = _layer_pair(lambda L: L.layers.Embedding(5, 2), ids)
        assert_same(ours(ids), theirs(ids))
        assert_same(ours(ids.tolist()), theirs(ids))


def test_scalars_and_models_convert():
    keras = import_keras()
    assert_same(distkeras.layers.Activation("relu")(-2.0), torch.tensor(0.0))
    model = distkeras.Sequential([distkeras.Input((3,)), distkeras.layers.Dense(2)])
    reference = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.set_weights(reference.get_weights())
    assert_same(model(FLOATS[0]), reference(FLOATS[0]))


def masked_model(lib, calls):
    """Embedding(mask_zero) -> a custom layer reading mask= and making its own mask -> LSTM."""

    class Scale(lib.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            calls.append(("call", mask is not None))
            weights = lib.ops.cast(lib.ops.expand_dims(mask, -1), inputs.dtype)
            return inputs * weights * 2.0

        def compute_mask(self, inputs, mask=None):
            calls.append(("compute_mask", mask is not None))
            return mask

    ids = lib.Input((5,), dtype="int32")
    embedded = lib.layers.Embedding(7, 3, mask_zero=True)(ids)
    scaled = Scale()(embedded)
    outputs = lib.layers.LSTM(2)(scaled)
    return lib.Model(ids, outputs), embedded, scaled


def test_symbolic_masks_propagate_as_in_keras():
    keras = import_keras()
    ours_calls, their_calls = [], []
    ours, ours_embedded, ours_scaled = masked_model(distkeras, ours_calls)
    theirs, their_embedded, their_scaled = masked_model(keras, their_calls)
    for mine, reference in ((ours_embedded, their_embedded), (ours_scaled, their_scaled)):
        mask, keras_mask = mine._keras_mask, reference._keras_mask
        assert (mask.shape, mask.dtype) == (tuple(keras_mask.shape), keras_mask.dtype)
    # While the graph was built, the custom layer saw a mask in call and compute_mask ran.
    assert ("call", True) in ours_calls and ("compute_mask", True) in ours_calls
    assert ("compute_mask", True) in their_calls
    ours.set_weights(theirs.get_weights())
    ids = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 1]], dtype="int32")
    assert_same(ours(ids), theirs(ids))


@pytest.mark.parametrize(
    "cells",
    [
        lambda L: [L.layers.LSTMCell(4), L.layers.GRUCell(3)],
        lambda L: [L.layers.SimpleRNNCell(4), L.layers.SimpleRNNCell(2)],
    ],
    ids=["lstm_gru", "simple_simple"],
)
def test_rnn_of_a_cell_list_stacks_them_as_keras(cells):
    keras = import_keras()
    sample = FLOATS.astype("float32")

    def make(lib):
        return lib.layers.RNN(cells(lib), return_sequences=True, return_state=True)

    ours, theirs = _layer_pair(make, sample)
    assert type(ours.cell).__name__ == type(theirs.cell).__name__ == "StackedRNNCells"
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    # Keras nests each cell's states in the returned list; distkeras returns them flat.
    assert_same(_flat(ours(sample)), _flat(theirs(sample)))
    clone = distkeras.layers.RNN.from_config(ours.get_config())
    clone(sample)
    clone.set_weights(ours.get_weights())
    assert_same(_flat(clone(sample)), _flat(theirs(sample)))
    explicit = keras.layers.RNN(keras.layers.StackedRNNCells(cells(keras)))
    assert explicit(sample).shape == tuple(ours(sample)[0][:, -1].shape)


def _flat(values) -> list:
    if isinstance(values, (list, tuple)):
        return [leaf for value in values for leaf in _flat(value)]
    return [values]
