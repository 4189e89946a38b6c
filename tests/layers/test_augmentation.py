"""Image augmentation layers: inference identity, shapes and dtypes, configs, ``.keras`` files
both ways with Keras, the statistics of the draws at fixed seeds, and per-sample draws that
do not depend on how a batch is split between workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from distkeras.random import streams
from tests.ops.keras_reference import import_keras

# (class name, constructor arguments); every augmentation layer.
LAYERS = [
    ("RandomFlip", {}),
    ("RandomRotation", {"factor": 0.2}),
    ("RandomZoom", {"height_factor": 0.2}),
    ("RandomTranslation", {"height_factor": 0.2, "width_factor": 0.2}),
    ("RandomShear", {"x_factor": 0.2, "y_factor": 0.2}),
    ("RandomCrop", {"height": 5, "width": 4}),
    ("RandomPerspective", {}),
    ("RandomElasticTransform", {}),
    ("RandomContrast", {"factor": 0.4}),
    ("RandomBrightness", {"factor": 0.3}),
    ("RandomGrayscale", {}),
    ("RandomInvert", {}),
    ("RandomColorDegeneration", {"factor": 0.5}),
    ("RandomSaturation", {"factor": 0.5}),
    ("RandomHue", {"factor": 0.5}),
    ("RandomColorJitter", {"brightness_factor": 0.2, "contrast_factor": 0.3, "hue_factor": 0.2}),
    ("Solarization", {"addition_factor": 0.2, "threshold_factor": 0.5}),
    ("RandomPosterization", {"factor": 3}),
    ("RandomSharpness", {"factor": 0.5}),
    ("RandomGaussianBlur", {"sigma": (0.5, 1.0)}),
    ("RandomErasing", {}),
    ("MixUp", {}),
    ("CutMix", {}),
    ("RandAugment", {}),
    ("AugMix", {}),
    ("Equalization", {}),
    ("AutoContrast", {}),
    ("MaxNumBoundingBoxes", {"max_number": 2}),
    ("ContrastLimitedAdaptiveHistogramEqualization", {"tile_grid_size": (2, 2)}),
]
ALWAYS = {"AutoContrast", "ContrastLimitedAdaptiveHistogramEqualization"}
IDENTITY = {"MaxNumBoundingBoxes"}
UNSEEDED = {"Equalization", "AutoContrast", "MaxNumBoundingBoxes"}
UNSEEDED |= {"ContrastLimitedAdaptiveHistogramEqualization"}
# Per-sample draws: the split of a batch between workers must not show.
PER_SAMPLE = [
    name for name, _ in LAYERS if name not in ("MixUp", "CutMix", "Equalization", "RandomCrop")
]
PER_SAMPLE = [n for n in PER_SAMPLE if n not in ALWAYS | IDENTITY | {"RandAugment", "AugMix"}]


def _make(name, kwargs, seed=1):
    extra = {} if name in UNSEEDED else {"seed": seed}
    return getattr(layers, name)(**kwargs, **extra)


def _images(shape=(6, 8, 8, 3), seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random(shape).astype("float32") * 255)


@pytest.mark.parametrize("name,kwargs", LAYERS, ids=[n for n, _ in LAYERS])
def test_inference_and_training_shapes_dtypes(name, kwargs):
    layer = _make(name, kwargs)
    x = _images()
    inference = layer(x, training=False)
    trained = layer(x)  # Keras's default when called on its own: training=True
    single = layer(x[0])
    assert inference.dtype == trained.dtype == torch.float32
    if name in ALWAYS:
        assert not torch.equal(inference, x)
    elif name == "RandomCrop":  # the centre window, as Keras documents
        assert torch.equal(inference, x[:, 0:5, 1:5])
    else:  # the identity at inference, as in Keras
        assert torch.equal(inference, x)
    if name == "RandomCrop":
        assert tuple(trained.shape) == (6, 5, 4, 3) and tuple(single.shape) == (5, 4, 3)
    else:
        assert trained.shape == x.shape and single.shape == x[0].shape
        assert torch.equal(trained, x) == (name in IDENTITY)
    # Integer images are cast to the layer's float dtype, as Keras does.
    assert layer(x.to(torch.uint8), training=False).dtype == torch.float32


@pytest.mark.parametrize("name,kwargs", LAYERS, ids=[n for n, _ in LAYERS])
def test_seeded_layer_reproduces_and_config_round_trips(name, kwargs):
    x = _images()
    first, second = _make(name, kwargs, seed=4), _make(name, kwargs, seed=4)
    torch.testing.assert_close(first(x), second(x))
    clone = type(first).from_config(first.get_config())
    assert clone.get_config() == first.get_config()


def test_dict_inputs_raise_naming_them():
    layer = layers.RandomFlip()
    with pytest.raises(NotImplementedError, match="bounding_boxes"):
        layer({"images": _images(), "bounding_boxes": {"boxes": torch.zeros(6, 1, 4)}})


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="mode"):
        layers.RandomFlip("diagonal")
    with pytest.raises(NotImplementedError, match="fill_mode"):
        layers.RandomRotation(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="factor"):
        layers.RandomRotation(2.0)
    with pytest.raises(ValueError, match="value_range"):
        layers.RandomContrast(0.2, value_range=3)
    with pytest.raises(ValueError, match="kernel_size"):
        layers.RandomGaussianBlur(kernel_size=4)


def test_flip_frequency_and_factor_ranges():
    x = _images((2000, 2, 2, 1))
    flip = layers.RandomFlip("horizontal", seed=3)
    flips = flip.get_random_transformation(x)["flips"].float().mean()
    assert abs(float(flips) - 0.5) < 0.04
    rotation = layers.RandomRotation((-0.1, 0.3), seed=3).get_random_transformation(x)["angle"]
    assert -36.0 <= float(rotation.min()) < -30 and 100 < float(rotation.max()) <= 108.0
    zoom = layers.RandomZoom(0.2, seed=3).get_random_transformation(x)
    assert torch.equal(zoom["height_zoom"], zoom["width_zoom"])
    assert 0.8 <= float(zoom["height_zoom"].min()) < 0.82
    assert 1.18 < float(zoom["height_zoom"].max()) <= 1.2
    contrast = layers.RandomContrast(0.5, seed=3).get_random_transformation(x)["contrast_factor"]
    assert 1.0 <= float(contrast.min()) < 1.02 and 1.48 < float(contrast.max()) <= 1.5
    gray = layers.RandomGrayscale(0.3, seed=3).get_random_transformation(x)
    assert abs(float(gray.float().mean()) - 0.3) < 0.04
    bits = layers.RandomPosterization((2, 6), seed=3).get_random_transformation(x)
    assert sorted(set((8 - bits["shift_factor"].int()).tolist())) == [2, 3, 4, 5]
    mix = layers.MixUp(alpha=0.4, seed=3).get_random_transformation(x)
    weights = mix["mix_weight"]
    # Beta(0.4, 0.4): mean 1/2, variance 1/(4 (2 alpha + 1)) = 0.1389.
    assert abs(float(weights.mean()) - 0.5) < 0.03 and abs(float(weights.var()) - 0.1389) < 0.02
    assert sorted(mix["permutation_order"].tolist()) == list(range(2000))


def test_different_images_get_different_transformations():
    x = _images((8, 6, 6, 3))
    angles = layers.RandomRotation(0.3, seed=2).get_random_transformation(x)["angle"]
    assert len(set(angles.tolist())) == 8


def _split_call(layer, x, parts):
    """The layer in a training step, this process holding rows [start, stop) of ``x``."""
    outputs = []
    for start, stop in parts:
        streams.SAMPLES.begin(start, stop - start, len(x), 3, 99)
        try:
            outputs.append(layer(x[start:stop], training=True))
        finally:
            streams.SAMPLES.end()
    return torch.cat(outputs)


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_per_sample_draws_do_not_depend_on_the_split(name):
    kwargs = dict(LAYERS)[name]
    x = _images((7, 8, 8, 3))
    layer = _make(name, kwargs, seed=None if name == "RandomFlip" else 6)
    whole = _split_call(layer, x, [(0, 7)])
    split = _split_call(layer, x, [(0, 4), (4, 7)])
    torch.testing.assert_close(split, whole, atol=1e-4, rtol=1e-5)
    assert not torch.equal(whole, x)


def _sequential(module, names):
    stack = [module.Input((8, 8, 3))]
    for name in names:
        kwargs = dict(LAYERS)[name]
        stack.append(getattr(module.layers, name)(**kwargs))
    stack += [module.layers.Flatten(), module.layers.Dense(2)]
    return module.Sequential(stack)


# Keras 3.15 cannot load its own RandomShear config (x_factor=(-f, f) fails its range check).
# Keras cannot build Equalization in a Sequential (its output spec is its input: "cycle").
EXCLUDED = ("RandomCrop", "RandomColorJitter", "RandomShear", "Equalization")
FILE_LAYERS = [n for n, _ in LAYERS if n not in EXCLUDED]


@pytest.mark.parametrize("chunk", range(4))
def test_keras_files_both_ways(tmp_path, chunk):
    keras = import_keras()
    names = FILE_LAYERS[chunk::4]
    x = _images((3, 8, 8, 3)).numpy()
    theirs = _sequential(keras, names)
    theirs.save(tmp_path / "keras.keras")
    ours = distkeras.models.load_model(tmp_path / "keras.keras")
    expected = theirs.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, atol=1e-4, rtol=1e-4)
    assert [type(layer).__name__ for layer in ours.layers[: len(names)]] == names
    ours.save(tmp_path / "ours.keras")
    back = keras.models.load_model(tmp_path / "ours.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), expected, atol=1e-4, rtol=1e-4)
    for a, b in zip(ours.layers[: len(names)], back.layers):
        config_a, config_b = a.get_config(), b.get_config()
        assert sorted(config_a) == sorted(config_b), type(a).__name__


def test_model_trains_behind_augmentation():
    distkeras.utils.set_random_seed(2)
    model = _sequential(distkeras, ["RandomFlip", "RandomRotation", "RandomCrop", "MixUp"])
    model.compile(optimizer="adam", loss="mse")
    x, y = _images((8, 8, 8, 3)).numpy() / 255, np.zeros((8, 2), "float32")
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # predict: the augmentations are the identity, RandomCrop takes the centre window.
    expected = model.layers[-1](model.layers[-2](torch.from_numpy(x[:, 0:5, 1:5])))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected.detach().numpy(), atol=1e-5)
