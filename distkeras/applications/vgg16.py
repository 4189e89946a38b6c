"""VGG16 (and the builder VGG19 shares): stacks of 3x3 convs and 2x2 max pools.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition"
(ICLR 2015). Inputs are preprocessed in "caffe" mode (BGR, minus the ImageNet means).
"""

from __future__ import annotations

from distkeras import layers
from distkeras.applications import _base, imagenet_utils

__all__ = ["VGG16", "preprocess_input", "decode_predictions"]

_URL = "https://storage.googleapis.com/tensorflow/keras-applications/{0}/{1}"


def build_vgg(
    convs_per_block: tuple[int, ...],
    family: str,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
):
    """Five blocks of ``convs_per_block[i]`` convolutions (64, 128, 256, 512, 512 filters)."""
    file_name = _base.h5_file_name(family + _base.TF_KERNELS, include_top)
    img_input, weights_path = _base.start(
        weights, include_top, classes, pooling, classifier_activation, input_tensor,
        input_shape, 224, 32, file_name, _URL.format(family, file_name),
    )  # fmt: skip
    x = img_input
    for block, (filters, convs) in enumerate(zip((64, 128, 256, 512, 512), convs_per_block), 1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(
                filters, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{i}"
            )(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = _base.pool_features(x, pooling)
    return _base.finish(img_input, input_tensor, x, name, weights_path)


def variant(convs_per_block: tuple, func_name: str, doc: str, module=__name__):
    """The public ``VGG..`` function for one layout; ``func_name.lower()`` is its family."""
    family = func_name.lower()

    def build(*args):
        return build_vgg(convs_per_block, family, *args)

    return _base.constructor(build, func_name, family, doc, module)


VGG16 = variant(
    (2, 2, 3, 3, 3), "VGG16",
    """VGG16, as ``keras.applications.VGG16``.

    Example:
        >>> base = VGG16(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg")
    """,
)  # fmt: skip


preprocess_input, decode_predictions = imagenet_utils.family_functions("VGG", "caffe", __name__)
