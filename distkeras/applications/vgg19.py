"""VGG19: VGG16's layout with four convolutions in each of the last three blocks."""

from __future__ import annotations

from distkeras.applications.vgg16 import build_vgg, decode_predictions, preprocess_input

__all__ = ["VGG19", "preprocess_input", "decode_predictions"]


def VGG19(
    include_top: bool = True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "vgg19",
):
    """VGG19, as ``keras.applications.VGG19``."""
    return build_vgg(
        (2, 2, 4, 4, 4), "vgg19", include_top, weights, input_tensor, input_shape, pooling,
        classes, classifier_activation, name,
    )  # fmt: skip
