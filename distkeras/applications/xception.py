"""Xception: depthwise-separable convolutions with residual connections throughout.

Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions" (CVPR 2017).
Default input 299x299, at least 71x71; inputs scaled to [-1, 1] ("tf" mode).
"""

from __future__ import annotations

from distkeras import layers
from distkeras.applications import _base, imagenet_utils

__all__ = ["Xception", "preprocess_input", "decode_predictions"]

_URL = "https://storage.googleapis.com/tensorflow/keras-applications/xception/"


def _sep_bn(x, filters, name):
    x = layers.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(axis=-1, name=f"{name}_bn")(x)


def _strided_residual(x, filters):
    # Keras leaves the residual branch's layers unnamed; the file loads by place, not name.
    residual = layers.Conv2D(filters, (1, 1), strides=(2, 2), padding="same", use_bias=False)(x)
    return layers.BatchNormalization(axis=-1)(residual)


def _entry_block(x, filters: tuple[int, int], block: int, first_relu: bool):
    """Two separable convs and a strided max pool, added to a strided 1x1 conv of the input."""
    residual = _strided_residual(x, filters[1])
    if first_relu:
        x = layers.Activation("relu", name=f"block{block}_sepconv1_act")(x)
    x = _sep_bn(x, filters[0], f"block{block}_sepconv1")
    x = layers.Activation("relu", name=f"block{block}_sepconv2_act")(x)
    x = _sep_bn(x, filters[1], f"block{block}_sepconv2")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=f"block{block}_pool")(x)
    return layers.add([x, residual])


def _xception(
    include_top, weights, input_tensor, input_shape, pooling, classes,
    classifier_activation, name,
):  # fmt: skip
    """The body of :func:`Xception` (Keras's standard arguments, in order)."""
    file_name = _base.h5_file_name("xception" + _base.TF_KERNELS, include_top)
    img_input, weights_path = _base.start(
        weights, include_top, classes, pooling, classifier_activation, input_tensor,
        input_shape, 299, 71, file_name, _URL + file_name,
    )  # fmt: skip
    x = layers.Conv2D(32, (3, 3), strides=(2, 2), use_bias=False, name="block1_conv1")(img_input)
    x = layers.BatchNormalization(axis=-1, name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = layers.Conv2D(64, (3, 3), use_bias=False, name="block1_conv2")(x)
    x = layers.BatchNormalization(axis=-1, name="block1_conv2_bn")(x)
    x = layers.Activation("relu", name="block1_conv2_act")(x)
    # Entry flow: block 2 follows a ReLU already, so it starts with its separable conv.
    x = _entry_block(x, (128, 128), 2, first_relu=False)
    x = _entry_block(x, (256, 256), 3, first_relu=True)
    x = _entry_block(x, (728, 728), 4, first_relu=True)
    for block in range(5, 13):  # middle flow: eight identity-residual triples
        residual = x
        for i in (1, 2, 3):
            x = layers.Activation("relu", name=f"block{block}_sepconv{i}_act")(x)
            x = _sep_bn(x, 728, f"block{block}_sepconv{i}")
        x = layers.add([x, residual])
    x = _entry_block(x, (728, 1024), 13, first_relu=True)
    x = _sep_bn(x, 1536, "block14_sepconv1")
    x = layers.Activation("relu", name="block14_sepconv1_act")(x)
    x = _sep_bn(x, 2048, "block14_sepconv2")
    x = layers.Activation("relu", name="block14_sepconv2_act")(x)
    x = _base.classifier_head(x, include_top, pooling, classes, classifier_activation)
    return _base.finish(img_input, input_tensor, x, name, weights_path)


Xception = _base.constructor(
    _xception, "Xception", "xception",
    """Xception, as ``keras.applications.Xception``.

    Example:
        >>> model = Xception(weights=None, include_top=False, input_shape=(71, 71, 3))
    """,
    __name__,
)  # fmt: skip


preprocess_input, decode_predictions = imagenet_utils.family_functions("Xception", "tf", __name__)
