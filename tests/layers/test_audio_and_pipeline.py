"""MelSpectrogram (no weights; Keras's formulas on ops.stft) and Pipeline against Keras 3;
STFTSpectrogram's weight-carrying cases are in the layer sweep."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.harness import run_layer_test
from tests.ops.keras_reference import import_keras


@pytest.fixture(scope="module")
def keras():
    return import_keras()


MEL = [
    ({}, (2, 4000)),
    (
        {"fft_length": 256, "sequence_stride": 64, "num_mel_bins": 20, "power_to_db": False},
        (3, 999),
    ),
    (
        {
            "fft_length": 256,
            "sequence_stride": 100,
            "sequence_length": 200,
            "window": "hamming",
            "sampling_rate": 8000,
            "mag_exp": 1.0,
            "ref_power": 2.0,
            "top_db": 20.0,
            "min_freq": 100.0,
            "max_freq": 3000.0,
        },
        (1000,),
    ),
    ({"fft_length": 128, "sequence_stride": 32, "window": None, "num_mel_bins": 16}, (2, 500)),
]


@pytest.mark.parametrize(("kwargs", "shape"), MEL)
def test_mel_spectrogram_matches_keras(keras, kwargs, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    expected = np.asarray(keras.layers.MelSpectrogram(**kwargs)(x).detach().cpu())
    ours = layers.MelSpectrogram(**kwargs)
    got = ours(torch.as_tensor(x)).numpy()
    assert got.shape == expected.shape == tuple(ours.compute_output_shape(shape))
    # Mel weights are summed over ~1000 bins: float32 rounding, relative to the values.
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert ours.get_config().keys() == keras.layers.MelSpectrogram(**kwargs).get_config().keys()


def test_mel_filterbank_matches_keras(keras):
    theirs = keras.layers.MelSpectrogram().linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 8000.0)
    ours = layers.MelSpectrogram().linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 8000.0)
    np.testing.assert_allclose(ours.numpy(), np.asarray(theirs.cpu()), atol=1e-5)


def test_mel_spectrogram_in_a_model_and_through_keras_files(keras, tmp_path):
    x = np.random.default_rng(1).standard_normal((2, 800)).astype("float32")
    kwargs = {"fft_length": 128, "sequence_stride": 64, "num_mel_bins": 8}
    run_layer_test(layers.MelSpectrogram, kwargs, input_data=x, training_step=False, rtol=1e-4)
    inputs = keras.Input((800,))
    theirs = keras.Model(inputs, keras.layers.MelSpectrogram(**kwargs)(inputs))
    path = tmp_path / "mel.keras"
    theirs.save(path)
    loaded = distkeras.models.load_model(path)
    expected = np.asarray(theirs.predict(x, verbose=0))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-3)


def test_stft_refuses_bad_arguments_like_keras(keras):
    for kwargs in ({"mode": "power"}, {"frame_step": 0}, {"fft_length": 8, "frame_length": 16}):
        with pytest.raises(ValueError) as theirs:
            keras.layers.STFTSpectrogram(**kwargs)
        with pytest.raises(ValueError) as ours:
            layers.STFTSpectrogram(**kwargs)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError, match="Invalid input type"):
        layers.STFTSpectrogram(frame_length=8)(torch.ones(1, 20, 1, dtype=torch.int32))


# ---------------------------------------------------------------------------- Pipeline
def test_pipeline_matches_keras_and_moves_through_files(keras, tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6)).astype("float32")

    def make(mod):
        return mod.layers.Pipeline(
            [mod.layers.Dense(5, activation="relu", name="d1"), mod.layers.Dense(3, name="d2")],
            name="pipe",
        )

    theirs, ours = make(keras), make(distkeras)
    theirs(x)
    ours(torch.as_tensor(x))
    weights = [rng.standard_normal(w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    np.testing.assert_allclose(
        ours(torch.as_tensor(x)).detach().numpy(), np.asarray(theirs(x).detach()), atol=1e-5
    )
    assert ours.get_config().keys() == theirs.get_config().keys()
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]

    inputs = keras.Input((6,))
    model = keras.Model(inputs, make(keras)(inputs))
    model.set_weights(weights)
    path = tmp_path / "pipe.keras"
    model.save(path)
    loaded = distkeras.models.load_model(path)
    expected = np.asarray(model.predict(x, verbose=0))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-5)
    back = tmp_path / "back.keras"
    loaded.save(back)
    np.testing.assert_allclose(
        np.asarray(keras.models.load_model(back).predict(x, verbose=0)), expected, atol=1e-5
    )


def test_pipeline_trains_by_default_alone_but_not_in_predict():
    pipe = layers.Pipeline([layers.Dropout(0.5, seed=1)])
    x = torch.ones(8, 16)
    assert not torch.equal(pipe(x), x)  # Keras's call default: training=True
    torch.testing.assert_close(pipe(x, training=False), x)
    model = distkeras.Sequential([distkeras.Input((16,)), pipe, layers.Dense(2)])
    np.testing.assert_allclose(
        model.predict(x.numpy(), verbose=0), model.predict(x.numpy(), verbose=0)
    )


def test_pipeline_passes_masks_along():
    pipe = layers.Pipeline([layers.Embedding(10, 4, mask_zero=True), layers.Dense(3)])
    out = pipe(torch.tensor([[1, 2, 0]]))
    torch.testing.assert_close(out._keras_mask, torch.tensor([[True, True, False]]))
    with pytest.raises(ValueError, match="layers"):
        layers.Pipeline.from_config({"name": "p"})


def test_pipeline_of_augmentation_is_off_in_a_functional_models_predict():
    import numpy as np

    import distkeras
    from distkeras import layers as dk_layers

    inputs = distkeras.Input((4, 4, 1))
    outputs = dk_layers.Pipeline([dk_layers.RandomFlip("horizontal", seed=1)])(inputs)
    model = distkeras.Model(inputs, outputs)
    x = np.random.default_rng(0).random((32, 4, 4, 1)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    flipped = model(x, training=True).detach().numpy()
    assert not np.array_equal(flipped, x)
