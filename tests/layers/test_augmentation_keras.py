"""Image augmentation layers against Keras 3 itself, given the same transformation.

Each case draws a transformation with our layer (seeded, outside fit), hands the same values
to Keras's layer's ``transform_images(images, transformation, training=True)`` and compares
the images at 1e-4. Config keys are compared with Keras's for the same arguments.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distkeras import layers
from tests.ops.keras_reference import import_keras

FIRST = {"data_format": "channels_first"}
# (class name, constructor arguments, input shape with batch)
CASES = [
    ("RandomFlip", {}, (4, 5, 6, 3)),
    ("RandomFlip", {"mode": "horizontal"}, (4, 5, 6, 3)),
    ("RandomFlip", {"mode": "vertical", **FIRST}, (4, 3, 5, 6)),
    ("RandomRotation", {"factor": 0.2}, (3, 7, 6, 2)),
    (
        "RandomRotation",
        {"factor": (-0.3, 0.1), "fill_mode": "constant", "fill_value": 2.0},
        (3, 6, 6, 1),
    ),
    (
        "RandomRotation",
        {"factor": 0.5, "fill_mode": "wrap", "interpolation": "nearest"},
        (2, 5, 7, 3),
    ),
    ("RandomRotation", {"factor": 0.2, "fill_mode": "nearest", **FIRST}, (2, 3, 6, 5)),
    ("RandomZoom", {"height_factor": 0.3}, (3, 7, 6, 2)),
    ("RandomZoom", {"height_factor": (-0.4, -0.1), "width_factor": 0.3}, (3, 6, 8, 1)),
    ("RandomZoom", {"height_factor": 0.3, "fill_mode": "constant", **FIRST}, (2, 3, 6, 5)),
    ("RandomTranslation", {"height_factor": 0.2, "width_factor": 0.3}, (3, 7, 6, 2)),
    (
        "RandomTranslation",
        {"height_factor": (-0.2, 0.0), "width_factor": 0.3, "fill_mode": "wrap"},
        (2, 6, 6, 3),
    ),
    ("RandomShear", {"x_factor": 0.3, "y_factor": 0.2}, (3, 7, 6, 2)),
    ("RandomShear", {"x_factor": 0.4, "fill_mode": "constant", **FIRST}, (2, 3, 6, 5)),
    ("RandomCrop", {"height": 4, "width": 3}, (3, 7, 6, 2)),
    ("RandomCrop", {"height": 8, "width": 5}, (2, 6, 6, 3)),
    ("RandomCrop", {"height": 3, "width": 4, **FIRST}, (2, 3, 6, 5)),
    ("RandomPerspective", {"scale": 0.5}, (3, 7, 6, 2)),
    ("RandomPerspective", {"factor": 0.5, "interpolation": "nearest", **FIRST}, (3, 3, 6, 6)),
    ("RandomContrast", {"factor": 0.5}, (3, 5, 6, 3)),
    ("RandomContrast", {"factor": (0.2, 0.7), "value_range": (0, 1), **FIRST}, (3, 3, 5, 6)),
    ("RandomBrightness", {"factor": 0.3}, (3, 5, 6, 3)),
    ("RandomBrightness", {"factor": (-0.5, 0.1), "value_range": (0, 1)}, (3, 5, 6, 3)),
    ("RandomGrayscale", {"factor": 0.5}, (6, 5, 6, 3)),
    ("RandomGrayscale", {"factor": 0.7, **FIRST}, (6, 3, 5, 6)),
    ("RandomInvert", {"factor": 0.6}, (6, 5, 6, 3)),
    ("RandomColorDegeneration", {"factor": 0.6}, (4, 5, 6, 3)),
    ("RandomSaturation", {"factor": 0.7, "value_range": (0, 1)}, (4, 5, 6, 3)),
    ("RandomSaturation", {"factor": (0.2, 0.4), "value_range": (0, 1), **FIRST}, (4, 3, 5, 6)),
    ("RandomHue", {"factor": 0.8}, (4, 5, 6, 3)),
    ("RandomHue", {"factor": 0.5, "value_range": (0, 1), **FIRST}, (4, 3, 5, 6)),
    ("AutoContrast", {}, (3, 5, 6, 3)),
    ("AutoContrast", {"value_range": (0, 1)}, (3, 5, 6, 3)),
    ("Equalization", {}, (3, 5, 6, 3)),
    ("Equalization", {"bins": 32, "value_range": (0, 1), **FIRST}, (3, 3, 5, 6)),
    ("Solarization", {}, (3, 5, 6, 3)),
    ("Solarization", {"addition_factor": 0.3, "threshold_factor": (0.2, 0.6)}, (4, 5, 6, 3)),
    ("RandomPosterization", {"factor": 4}, (4, 5, 6, 3)),
    ("RandomPosterization", {"factor": (2, 6), "value_range": (0, 1)}, (4, 5, 6, 3)),
    ("RandomSharpness", {"factor": 0.7}, (4, 5, 6, 3)),
    ("RandomSharpness", {"factor": (0.1, 0.9), **FIRST}, (4, 3, 5, 6)),
    ("RandomGaussianBlur", {"factor": 0.8, "kernel_size": 3, "sigma": 0.8}, (4, 7, 6, 3)),
    ("RandomGaussianBlur", {"kernel_size": 5, "sigma": (0.3, 1.0)}, (4, 7, 6, 3)),
    ("RandomGaussianBlur", {"kernel_size": 5, "sigma": (0.3, 1.0), **FIRST}, (4, 3, 7, 6)),
    ("RandomErasing", {}, (4, 8, 7, 3)),
    (
        "RandomErasing",
        {"factor": 0.7, "fill_value": 5.0, "scale": (0.1, 0.5), **FIRST},
        (4, 3, 8, 7),
    ),
    ("MixUp", {"alpha": 0.4}, (4, 5, 6, 3)),
    ("CutMix", {}, (4, 8, 7, 3)),
    ("CutMix", {"factor": 0.5, **FIRST}, (4, 3, 8, 7)),
    ("RandAugment", {"num_ops": 3}, (3, 8, 8, 3)),
    ("RandAugment", {"factor": 0.3, "value_range": (0, 1), **FIRST}, (3, 3, 8, 8)),
    ("AugMix", {}, (3, 8, 8, 3)),
    ("AugMix", {"all_ops": False, "num_chains": 2, "chain_depth": 2}, (3, 8, 8, 3)),
    ("RandomElasticTransform", {"scale": 0.8}, (3, 12, 10, 3)),
    ("MaxNumBoundingBoxes", {"max_number": 4}, (2, 5, 6, 3)),
    ("ContrastLimitedAdaptiveHistogramEqualization", {}, (2, 16, 16, 3)),
    (
        "ContrastLimitedAdaptiveHistogramEqualization",
        {"tile_grid_size": (3, 2), "clip_limit": 2.0},
        (2, 10, 9, 1),
    ),
    (
        "ContrastLimitedAdaptiveHistogramEqualization",
        {"value_range": (0, 1), **FIRST},
        (2, 3, 12, 12),
    ),
]
_UNIT = {"value_range": (0, 1)}


def _ids(case):
    return f"{case[0]}-{'-'.join(f'{k}={v}' for k, v in case[1].items())}"


def _images(name, kwargs, shape, seed):
    rng = np.random.default_rng(seed)
    scale = 1.0 if kwargs.get("value_range") == (0, 1) else 255.0
    return (rng.random(shape) * scale).astype("float32")


def _torch_copy(value):
    """Transformation values for Keras: torch tensors cloned (Keras may write in place)."""
    if isinstance(value, dict):
        return {k: _torch_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_torch_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_torch_copy(v) for v in value)
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return value


@pytest.fixture(scope="module")
def keras():
    return import_keras()


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_transform_matches_keras(keras, case):
    name, kwargs, shape = case
    x = _images(name, kwargs, shape, seed=len(name))
    ours = getattr(layers, name)(**kwargs, **({"seed": 3} if _seeded(name) else {}))
    theirs = getattr(keras.layers, name)(**kwargs)
    images = torch.from_numpy(x)
    transformation = ours.get_random_transformation(images, training=True)
    if name == "RandomElasticTransform":
        # Keras draws the displacement fields inside ops.image.elastic_transform, so only
        # the selection and clipping compare here; test_elastic_fields_* checks the warp.
        transformation = dict(transformation, seed=7)
        transformation["apply_transform"] = torch.zeros_like(transformation["apply_transform"])
        del transformation["fields"]
    if name == "RandAugment":
        # Keras's RandomBrightness adds in place (`images += delta`) on torch, so inside
        # RandAugment every candidate op would see the brightened batch: call it on a copy.
        brightness = theirs.random_brightness.transform_images
        theirs.random_brightness.transform_images = lambda images, t, training=True: brightness(
            images.clone(), t, training
        )
    expected = theirs.transform_images(torch.from_numpy(x.copy()), _torch_copy(transformation))
    got = ours.transform_images(images, transformation, training=True)
    np.testing.assert_allclose(
        got.detach().numpy(), np.asarray(expected.detach().cpu()), atol=1e-4, rtol=1e-4
    )
    assert got.dtype == torch.float32 and tuple(got.shape) == tuple(expected.shape)


def _seeded(name):
    return name not in (
        "AutoContrast",
        "Equalization",
        "MaxNumBoundingBoxes",
        "ContrastLimitedAdaptiveHistogramEqualization",
    )


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_config_keys_and_values_match_keras(keras, case):
    name, kwargs, _ = case
    extra = {"seed": 5} if _seeded(name) else {}
    ours = getattr(layers, name)(**kwargs, **extra).get_config()
    theirs = getattr(keras.layers, name)(**kwargs, **extra).get_config()
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        if key != "name":
            a, b = ours[key], theirs[key]
            if isinstance(b, (tuple, list)):
                a, b = list(a), list(b)
            assert a == b, f"{name}.{key}: {a!r} != Keras {b!r}"


def test_elastic_fields_are_the_ops_formula():
    """Our per-sample fields path equals ops.image.elastic_transform's warp on the same noise:
    checked on zero noise (no displacement) and against a shifted image for constant noise."""
    layer = layers.RandomElasticTransform(fill_mode="nearest", seed=1)
    x = torch.rand(2, 9, 9, 3) * 255
    zero = {"apply_transform": torch.ones(2, dtype=torch.bool), "distortion_factor": 1.0}
    out = layer.transform_images(x, dict(zero, fields=torch.zeros(2, 2, 9, 9)))
    torch.testing.assert_close(out, x)
    # A uniform field of one pixel after the blur's interior: x shifts by one column.
    alpha, sigma = layer._params(9, 9, 1.0)
    fields = torch.zeros(2, 2, 9, 9)
    fields[:, 0] = 1.0 / (alpha * sigma)
    out = layer._elastic(x, fields, alpha, sigma)
    torch.testing.assert_close(out[:, 4, 3:6], x[:, 4, 4:7], atol=1e-3, rtol=1e-3)
