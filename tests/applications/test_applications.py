"""distkeras.applications against keras.applications on the same weights (Keras's torch backend).

Each model is built by Keras with ``weights=None``, its weights are written to a file (Keras 3's
``.weights.h5``, or the legacy ``.h5`` that Keras's ImageNet downloads use) and loaded into
ours: the predictions must agree. Batch-norm statistics are randomised first, so the loaded
non-trainable state is checked too. Inputs are tiny (the family's minimum size) for speed.
"""

from __future__ import annotations

import importlib
import os
import re
from contextlib import nullcontext

import h5py
import numpy as np
import pytest

from tests.ops.keras_reference import import_keras

keras = import_keras()
from keras.src.legacy.saving import legacy_h5_format  # noqa: E402

# (family module, model, input size, extra keyword arguments)
MODELS = [
    ("resnet50", "ResNet50", 32, {"classes": 10}),
    ("resnet_v2", "ResNet50V2", 32, {"classes": 10}),
    ("mobilenet_v2", "MobileNetV2", 32, {"alpha": 0.35}),
    ("vgg16", "VGG16", 32, {"classes": 10}),
    ("vgg19", "VGG19", 32, {"classes": 10}),
    ("efficientnet", "EfficientNetB0", 32, {"classes": 10}),
    ("densenet", "DenseNet121", 32, {"classes": 10}),
    ("xception", "Xception", 71, {"classes": 10}),
    ("mobilenet", "MobileNet", 32, {"alpha": 0.25, "classes": 10}),
    ("inception_v3", "InceptionV3", 75, {"classes": 10}),
    ("mobilenet_v3", "MobileNetV3Small", 32, {"classes": 10}),
    ("mobilenet_v3", "MobileNetV3Large", 32, {"minimalistic": True, "classes": 10}),
    ("convnext", "ConvNeXtTiny", 32, {"classes": 10}),
    ("efficientnet_v2", "EfficientNetV2B0", 32, {"classes": 10}),
]
IDS = [m[1] for m in MODELS]


def ours(module: str, name: str):
    return getattr(importlib.import_module(f"distkeras.applications.{module}"), name)


def theirs(module: str, name: str):
    # Keras exports MobileNetV3Small/Large only flat, not from keras.applications.mobilenet_v3.
    found = getattr(getattr(keras.applications, module), name, None)
    return found or getattr(keras.applications, name)


def randomise_statistics(model, seed: int = 0) -> None:
    """Non-default normalization statistics, so that loading them is observable.

    Means stay small and variances near one, so activations neither vanish behind ReLUs nor
    blow up through the depth.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ in ("BatchNormalization", "Normalization"):
            for var in layer.non_trainable_weights:
                if "mean" in var.name:
                    var.assign(rng.uniform(-0.1, 0.1, var.shape).astype("float32"))
                elif "variance" in var.name:
                    var.assign(rng.uniform(0.5, 1.5, var.shape).astype("float32"))


def layer_names(model) -> list[str]:
    # Unnamed layers take a per-process counter suffix (conv2d_7), which differs between
    # Keras and us once either has built more models: compare names without it.
    return [re.sub(r"_\d+$", "", layer.name) for layer in model.layers]


def images(size: int, n: int = 2) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 255, (n, size, size, 3)).astype("float32")


def assert_close(a: np.ndarray, b: np.ndarray, what: str) -> float:
    assert a.shape == b.shape, f"{what}: shape {a.shape} != Keras {b.shape}"
    diff = float(np.abs(a - b).max())
    scale = max(1.0, float(np.abs(b).max()))
    assert np.abs(b).max() > 1e-3, f"{what}: Keras's outputs are all ~0, a vacuous comparison"
    assert diff <= 1e-4 * scale, f"{what}: max |ours - Keras| = {diff} (scale {scale})"
    return diff


def _keras_imagenet_model(module, name, kwargs, monkeypatch, tmp_path):
    """Keras's model for weights="imagenet" (random weights) and the file it asks for."""
    asked = []

    def get_file(fname, origin=None, **_):
        asked.append((fname, origin))
        return str(tmp_path / fname)

    with monkeypatch.context() as patch:
        patch.setattr("keras.src.utils.file_utils.get_file", get_file)
        patch.setattr("keras.src.models.model.Model.load_weights", lambda self, path: None)
        with _warns_for_small_mobilenet(module):
            model = theirs(module, name)(weights="imagenet", **kwargs)
    assert len(asked) == 1
    return model, asked[0]


def _warns_for_small_mobilenet(module):
    # Keras warns that it loads the 224x224 weights for an input size it has none for.
    small = module in ("mobilenet", "mobilenet_v2", "mobilenet_v3")
    return pytest.warns(UserWarning, match="224") if small else nullcontext()


@pytest.mark.parametrize(("module", "name", "size", "kwargs"), MODELS, ids=IDS)
def test_keras_weights_load_and_predict_the_same(module, name, size, kwargs, tmp_path, monkeypatch):
    """Two checks per model, each on a model Keras built with the same arguments.

    1. include_top=True with logits out, Keras 3's ``.weights.h5`` given as ``weights=``: same
       name, same layer names, same weight shapes, same predictions.
    2. weights="imagenet", include_top=False with pooling: the missing file is named in the
       error with its expected path and Keras's download URL; written to $KERAS_HOME/models
       in the legacy format of Keras's downloads, it loads (by order, as Keras loads it).
    """
    x = images(size)
    top_kwargs = dict(kwargs, input_shape=(size, size, 3), classifier_activation=None)
    if name != "VGG19":  # VGG19's top is VGG16's (one builder); its 140 MB file costs seconds
        reference = theirs(module, name)(weights=None, **top_kwargs)
        randomise_statistics(reference)
        path = str(tmp_path / "model.weights.h5")
        reference.save_weights(path)
        model = ours(module, name)(weights=path, **top_kwargs)
        assert model.name == reference.name
        assert layer_names(model) == layer_names(reference)
        assert [w.shape for w in model.get_weights()] == [w.shape for w in reference.get_weights()]
        expected = reference.predict(x, verbose=0)
        diff = assert_close(model.predict(x, verbose=0), expected, name)
        print(f"{name} include_top: max |ours - Keras| {diff:.2e} of max |logit| "
              f"{np.abs(expected).max():.2e}")  # fmt: skip
        del reference, model

    pooling = "avg" if IDS.index(name) % 2 == 0 else "max"
    extra = {k: v for k, v in kwargs.items() if k != "classes"}
    kwargs = dict(extra, include_top=False, pooling=pooling, input_shape=(size, size, 3))
    reference, (file_name, url) = _keras_imagenet_model(module, name, kwargs, monkeypatch, tmp_path)
    randomise_statistics(reference)
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    expected_path = os.path.join(str(home), "models", file_name)
    with pytest.raises(FileNotFoundError) as err, _warns_for_small_mobilenet(module):
        ours(module, name)(weights="imagenet", **kwargs)
    for part in (file_name, expected_path, url):
        assert part in str(err.value)
    os.makedirs(home / "models")
    with h5py.File(expected_path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, reference)
    with _warns_for_small_mobilenet(module):
        model = ours(module, name)(weights="imagenet", **kwargs)
    out = model.predict(x, verbose=0)
    assert out.ndim == 2
    diff = assert_close(out, reference.predict(x, verbose=0), f"{name} pooling={pooling}")
    print(f"{name} imagenet file, pooling={pooling}: max |ours - Keras| {diff:.2e}")


# EfficientNet's width/depth rounding (B1) and InceptionResNetV2: the same names and
# predictions as Keras, on a file Keras wrote. (ResNet101/152, DenseNet169/201 only change
# block counts of builders tested above; each would add seconds to build.)
VARIANTS = [
    ("efficientnet", "EfficientNetB1", 32),
    ("inception_resnet_v2", "InceptionResNetV2", 75),
    ("efficientnet_v2", "EfficientNetV2S", 32),  # S/M/L: other stages, other preprocessing
]


@pytest.mark.parametrize(("module", "name", "size"), VARIANTS, ids=[v[1] for v in VARIANTS])
def test_family_variants_match_keras(module, name, size, tmp_path):
    kwargs = {"weights": None, "input_shape": (size, size, 3), "include_top": False}
    reference = theirs(module, name)(pooling="avg", **kwargs)
    randomise_statistics(reference)
    path = str(tmp_path / "model.weights.h5")
    reference.save_weights(path)
    model = ours(module, name)(pooling="avg", **dict(kwargs, weights=path))
    assert model.name == reference.name
    assert layer_names(model) == layer_names(reference)
    x = images(size)
    diff = assert_close(model.predict(x, verbose=0), reference.predict(x, verbose=0), name)
    print(f"{name} pooling=avg: max |ours - Keras| {diff:.2e}")


def test_classes_and_pooling_arguments():
    """classes sizes the head; Keras's errors for imagenet + classes, and ours for pooling."""
    model = ours("vgg16", "VGG16")(weights=None, input_shape=(32, 32, 3), classes=7)
    assert model.output_shape == (None, 7)
    features = ours("resnet50", "ResNet50")(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    assert features.output_shape == (None, 1, 1, 2048)
    with pytest.raises(ValueError, match="classes"):
        ours("vgg16", "VGG16")(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="pooling='mean'"):
        ours("vgg16", "VGG16")(weights=None, include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="weights=nowhere.h5"):
        ours("vgg16", "VGG16")(weights="nowhere.h5")
    with pytest.raises(ValueError, match="at least 71x71"):
        ours("xception", "Xception")(weights=None, include_top=False, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="classifier_activation"):
        ours("vgg16", "VGG16")(weights="imagenet", classifier_activation="relu")


def test_flat_namespace_matches_keras():
    import distkeras

    for module, name, _, _ in MODELS:
        assert getattr(distkeras.applications, name) is ours(module, name)
    assert distkeras.applications.resnet50.ResNet50 is distkeras.applications.resnet.ResNet50


def test_keras_file_of_an_application_loads(tmp_path):
    """A whole application saved by Keras as .keras loads here: same layers, same outputs."""
    import distkeras

    kwargs = {"weights": None, "input_shape": (32, 32, 3), "alpha": 0.35, "classes": 5}
    reference = keras.applications.MobileNetV2(**kwargs)
    randomise_statistics(reference)
    path = str(tmp_path / "mobilenet_v2.keras")
    reference.save(path)
    model = distkeras.models.load_model(path)
    assert layer_names(model) == layer_names(reference)
    x = images(32)
    assert_close(model.predict(x, verbose=0), reference.predict(x, verbose=0), "MobileNetV2 .keras")
