"""Each family's preprocess_input and decode_predictions against Keras's on the same inputs."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch

from tests.ops.keras_reference import assert_same, import_keras

keras = import_keras()

# Every family module and the mode Keras's preprocess_input uses there (read from Keras).
FAMILIES = ["resnet", "resnet50", "resnet_v2", "vgg16", "vgg19", "mobilenet_v2"]
FAMILIES += ["efficientnet", "densenet", "xception", "mobilenet", "inception_v3"]
FAMILIES += ["inception_resnet_v2", "mobilenet_v3", "convnext", "efficientnet_v2"]


def family(name: str):
    return importlib.import_module(f"distkeras.applications.{name}")


def pixels(shape, dtype="float32") -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, shape).astype(dtype)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize(
    ("shape", "data_format"),
    [((2, 5, 4, 3), None), ((5, 4, 3), "channels_last"), ((2, 3, 5, 4), "channels_first")],
)
def test_preprocess_input_matches_keras(name, shape, data_format):
    ours, theirs = family(name).preprocess_input, getattr(keras.applications, name).preprocess_input
    # numpy floats: same values, and modified in place exactly when Keras modifies its copy.
    a, b = pixels(shape), pixels(shape)
    out_a, out_b = ours(a, data_format=data_format), theirs(b, data_format=data_format)
    assert_same(out_a, out_b, atol=1e-5)
    assert_same(a, b, atol=1e-5)
    # numpy integers become float32, as in Keras.
    ints = pixels(shape).astype("uint8")
    assert_same(ours(ints.copy(), data_format), theirs(ints.copy(), data_format), atol=1e-5)
    # tensors (Keras's tensor path).
    t = torch.from_numpy(pixels(shape))
    assert_same(ours(t.clone(), data_format), theirs(t.clone(), data_format), atol=1e-5)


def test_imagenet_utils_modes_and_errors():
    from distkeras.applications import imagenet_utils

    for mode in ("caffe", "tf", "torch"):
        x = pixels((1, 3, 3, 3))
        assert_same(
            imagenet_utils.preprocess_input(x.copy(), mode=mode),
            keras.applications.imagenet_utils.preprocess_input(x.copy(), mode=mode),
            atol=1e-5,
        )
    with pytest.raises(ValueError, match="mode=bgr"):
        imagenet_utils.preprocess_input(pixels((1, 2, 2, 3)), mode="bgr")
    with pytest.raises(ValueError, match="data_format=nhwc"):
        imagenet_utils.preprocess_input(pixels((1, 2, 2, 3)), data_format="nhwc")


def test_preprocess_input_in_a_functional_model():
    import distkeras

    inputs = distkeras.Input((4, 4, 3))
    outputs = family("resnet50").preprocess_input(inputs)
    model = distkeras.Model(inputs, outputs)
    x = pixels((2, 4, 4, 3))
    theirs = keras.applications.resnet50.preprocess_input(x.copy())
    assert_same(model.predict(x, verbose=0), theirs, atol=1e-4)


def test_decode_predictions_reads_the_keras_cache(tmp_path, monkeypatch):
    from distkeras.applications import imagenet_utils

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(imagenet_utils, "_class_index", None)
    preds = np.random.default_rng(0).random((2, 1000)).astype("float32")
    with pytest.raises(FileNotFoundError) as err:
        family("resnet50").decode_predictions(preds)
    assert str(tmp_path / "models" / "imagenet_class_index.json") in str(err.value)
    assert imagenet_utils.CLASS_INDEX_URL in str(err.value)
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "imagenet_class_index.json").write_text(json.dumps(index))
    kutils = importlib.import_module("keras.src.applications.imagenet_utils")
    monkeypatch.setattr(kutils, "CLASS_INDEX", index)
    for name in FAMILIES:
        ours = family(name).decode_predictions(preds, top=3)
        theirs = getattr(keras.applications, name).decode_predictions(preds, top=3)
        assert ours == theirs
    with pytest.raises(ValueError, match=r"\(2, 10\)"):
        family("vgg16").decode_predictions(preds[:, :10])
