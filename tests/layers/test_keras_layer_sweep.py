"""Layers compared with Keras 3 itself: the same constructor arguments, Keras's weights copied
in, the same inputs. Each case also goes through the shared layer harness.

Add a layer's cases to ``CASES``; the sweep checks predictions, output shapes, config keys,
weight shapes and a ``.keras`` file written by Keras loading here with equal predictions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from tests.harness import run_layer_test
from tests.ops.keras_reference import import_keras

# (class name, constructor arguments, input shape with batch)
CASES = [
    ("AdaptiveAveragePooling1D", {"output_size": 3}, (2, 7, 4)),
    ("AdaptiveAveragePooling1D", {"output_size": 4, "data_format": "channels_first"}, (2, 3, 9)),
    ("AdaptiveAveragePooling2D", {"output_size": (3, 4)}, (2, 7, 9, 3)),
    ("AdaptiveAveragePooling2D", {"output_size": 2, "data_format": "channels_first"}, (2, 3, 5, 5)),
    ("AdaptiveAveragePooling3D", {"output_size": (2, 3, 2)}, (1, 5, 6, 4, 2)),
    ("AdaptiveMaxPooling1D", {"output_size": 3}, (2, 8, 4)),
    ("AdaptiveMaxPooling2D", {"output_size": (3, 4)}, (2, 7, 9, 3)),
    ("AdaptiveMaxPooling2D", {"output_size": 3, "data_format": "channels_first"}, (2, 3, 7, 8)),
    ("AdaptiveMaxPooling3D", {"output_size": 2}, (1, 5, 6, 4, 2)),
    ("RMSNormalization", {}, (3, 6)),
    ("RMSNormalization", {"axis": -1, "epsilon": 1e-3}, (3, 4, 5)),
    ("RMSNormalization", {"axis": [1, 2]}, (3, 4, 5)),
    ("Resizing", {"height": 4, "width": 6}, (2, 8, 9, 3)),
    ("Resizing", {"height": 5, "width": 5, "interpolation": "nearest"}, (2, 8, 9, 3)),
    ("Resizing", {"height": 6, "width": 4, "interpolation": "bicubic"}, (2, 5, 7, 2)),
    ("Resizing", {"height": 4, "width": 4, "crop_to_aspect_ratio": True}, (2, 8, 6, 3)),
    ("Resizing", {"height": 4, "width": 4, "pad_to_aspect_ratio": True}, (2, 8, 6, 3)),
    ("Resizing", {"height": 3, "width": 5, "data_format": "channels_first"}, (2, 3, 8, 9)),
    ("Resizing", {"height": 4, "width": 4, "antialias": True}, (2, 9, 9, 1)),
    ("Resizing", {"height": 4, "width": 3}, (8, 9, 3)),
    ("CenterCrop", {"height": 4, "width": 3}, (2, 8, 9, 3)),
    ("CenterCrop", {"height": 3, "width": 3}, (2, 4, 5, 1)),
    ("CenterCrop", {"height": 4, "width": 5, "data_format": "channels_first"}, (2, 3, 7, 8)),
    ("CenterCrop", {"height": 10, "width": 6}, (2, 5, 8, 3)),
    ("CenterCrop", {"height": 3, "width": 2}, (5, 6, 2)),
    ("EinsumDense", {"equation": "ab,bc->ac", "output_shape": 5, "bias_axes": "c"}, (3, 4)),
    ("EinsumDense", {"equation": "...b,bc->...c", "output_shape": 6}, (2, 3, 4)),
    (
        "EinsumDense",
        {"equation": "abc,cd->abd", "output_shape": (3, 5), "bias_axes": "d"},
        (2, 3, 4),
    ),
    (
        "EinsumDense",
        {"equation": "abc,cde->abde", "output_shape": (3, 2, 5), "bias_axes": "de"},
        (2, 3, 4),
    ),
    (
        "EinsumDense",
        {"equation": "ab...,bc->ac...", "output_shape": 5, "bias_axes": "c"},
        (2, 4, 3),
    ),
    (
        "EinsumDense",
        {"equation": "abc,bcd->ad", "output_shape": 4, "activation": "relu", "bias_axes": "d"},
        (2, 3, 5),
    ),
    ("ConvLSTM1D", {"filters": 3, "kernel_size": 3, "dilation_rate": 2}, (2, 4, 9, 2)),
    ("ConvLSTM1D", {"filters": 2, "kernel_size": 2, "return_sequences": True}, (2, 3, 6, 2)),
    ("ConvLSTM2D", {"filters": 3, "kernel_size": 2}, (2, 4, 5, 5, 2)),
    (
        "ConvLSTM2D",
        {"filters": 3, "kernel_size": 3, "padding": "same", "return_sequences": True},
        (2, 3, 5, 6, 2),
    ),
    (
        "ConvLSTM2D",
        {"filters": 2, "kernel_size": 2, "strides": 2, "go_backwards": True},
        (2, 3, 6, 6, 2),
    ),
    (
        "ConvLSTM2D",
        {"filters": 2, "kernel_size": 2, "data_format": "channels_first", "activation": "relu"},
        (2, 3, 2, 5, 5),
    ),
    ("ConvLSTM3D", {"filters": 2, "kernel_size": 2, "padding": "same"}, (1, 3, 4, 4, 3, 2)),
    ("STFTSpectrogram", {"frame_length": 32}, (2, 200, 1)),
    ("STFTSpectrogram", {"mode": "magnitude", "frame_length": 30, "fft_length": 32}, (2, 200, 2)),
    ("STFTSpectrogram", {"mode": "psd", "frame_length": 16, "padding": "same"}, (2, 100, 1)),
    ("STFTSpectrogram", {"mode": "stft", "frame_length": 16, "expand_dims": True}, (2, 100, 2)),
    ("STFTSpectrogram", {"mode": "angle", "frame_length": 16, "window": "hamming"}, (2, 90, 1)),
    (
        "STFTSpectrogram",
        {"mode": "real", "frame_length": 16, "data_format": "channels_first", "scaling": None},
        (2, 2, 90),
    ),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]
# Layers whose harness run also takes a training step reaching every trainable weight.
TRAINED = {"RMSNormalization", "EinsumDense", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
TRAINED.add("STFTSpectrogram")
# Single images (rank 3) have no batch axis: neither the harness nor a model input takes them.
BATCHED = [
    (case, case_id)
    for case, case_id in zip(CASES, IDS)
    if not (len(case[2]) == 3 and case[0] in ("Resizing", "CenterCrop"))
]


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def _random_weights(layer, rng):
    return [rng.standard_normal(w.shape).astype(w.dtype) for w in layer.get_weights()]


@pytest.mark.parametrize(("name", "kwargs", "shape"), CASES, ids=IDS)
def test_predictions_match_keras_on_the_same_weights(keras, name, kwargs, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype("float32")
    theirs = getattr(keras.layers, name)(**kwargs)
    theirs.build(shape)
    theirs.set_weights(_random_weights(theirs, rng))
    expected = np.asarray(theirs(x).detach().cpu())
    ours = getattr(layers, name)(**kwargs)
    ours.build(shape)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    ours.set_weights(theirs.get_weights())
    got = ours(torch.as_tensor(x)).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert tuple(ours.compute_output_shape(shape)) == tuple(expected.shape)
    assert set(ours.get_config()) == set(theirs.get_config())


@pytest.mark.parametrize(
    ("name", "kwargs", "shape"), [c for c, _ in BATCHED], ids=[i for _, i in BATCHED]
)
def test_layer_harness(name, kwargs, shape):
    run_layer_test(getattr(layers, name), kwargs, shape, training_step=name in TRAINED)


@pytest.mark.parametrize(
    ("name", "kwargs", "shape"), [c for c, _ in BATCHED], ids=[i for _, i in BATCHED]
)
def test_keras_file_loads_with_equal_predictions(keras, name, kwargs, shape, tmp_path):
    rng = np.random.default_rng(1)
    inputs = keras.Input(shape[1:])
    model = keras.Model(inputs, getattr(keras.layers, name)(**kwargs)(inputs))
    model.set_weights(_random_weights(model, rng))
    x = rng.standard_normal(shape).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = distkeras.models.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), np.asarray(model.predict(x, verbose=0)), atol=1e-5
    )


def test_rms_normalization_on_a_middle_axis_follows_the_formula():
    # Keras 3.15's torch backend fails on non-trailing axes (torch's rms_norm takes trailing
    # shapes only), so the reference here is the formula itself.
    x = np.random.default_rng(2).standard_normal((3, 4, 5)).astype("float32")
    layer = layers.RMSNormalization(axis=1, epsilon=1e-3)
    layer.build(x.shape)
    scale = np.arange(1, 5, dtype="float32")
    layer.set_weights([scale])
    expected = x / np.sqrt((x**2).mean(axis=1, keepdims=True) + 1e-3) * scale[None, :, None]
    np.testing.assert_allclose(layer(torch.as_tensor(x)).detach().numpy(), expected, rtol=1e-5)


def test_resizing_keeps_integer_images_integer_like_keras(keras):
    images = np.random.default_rng(4).integers(0, 256, size=(2, 7, 5, 3)).astype("uint8")
    expected = keras.layers.Resizing(4, 4)(images)
    got = layers.Resizing(4, 4)(torch.as_tensor(images))
    assert str(expected.dtype).endswith("uint8") and got.dtype == torch.uint8
    np.testing.assert_array_equal(got.numpy(), np.asarray(expected.cpu()))


def test_image_layers_refuse_dict_inputs_by_name():
    with pytest.raises(NotImplementedError, match="bounding"):
        layers.CenterCrop(2, 2)({"images": torch.ones(1, 4, 4, 3)})
