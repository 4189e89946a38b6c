"""EfficientNetV2 B0-B3, S, M, L: EfficientNet with fused MBConv blocks in the early stages.

Tan & Le, "EfficientNetV2: Smaller Models and Faster Training" (ICML 2021). With
``include_preprocessing=True`` (the default) the model rescales [0, 255] pixels itself, so
:func:`preprocess_input` is the identity, as in Keras.
"""

from __future__ import annotations

import math

from distkeras import initializers, layers
from distkeras.applications import _base, imagenet_utils
from distkeras.applications.mbconv import (
    CONV_KERNEL_INITIALIZER,
    DENSE_KERNEL_INITIALIZER,
    residual,
    squeeze_excite,
)
from distkeras.applications.mbconv import conv as _conv

__all__ = [
    *(f"EfficientNetV2{v}" for v in ("B0", "B1", "B2", "B3", "S", "M", "L")),
    "preprocess_input",
    "decode_predictions",
]

BASE_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/"
# Stages: (kernel, repeats, filters_in, filters_out, expand_ratio, se_ratio, strides, fused).
_B = [
    (3, 1, 32, 16, 1, 0, 1, True), (3, 2, 16, 32, 4, 0, 2, True), (3, 2, 32, 48, 4, 0, 2, True),
    (3, 3, 48, 96, 4, 0.25, 2, False), (3, 5, 96, 112, 6, 0.25, 1, False),
    (3, 8, 112, 192, 6, 0.25, 2, False),
]  # fmt: skip
_STAGES = {
    "b": _B,
    "s": [
        (3, 2, 24, 24, 1, 0, 1, True), (3, 4, 24, 48, 4, 0, 2, True),
        (3, 4, 48, 64, 4, 0, 2, True), (3, 6, 64, 128, 4, 0.25, 2, False),
        (3, 9, 128, 160, 6, 0.25, 1, False), (3, 15, 160, 256, 6, 0.25, 2, False),
    ],
    "m": [
        (3, 3, 24, 24, 1, 0, 1, True), (3, 5, 24, 48, 4, 0, 2, True),
        (3, 5, 48, 80, 4, 0, 2, True), (3, 7, 80, 160, 4, 0.25, 2, False),
        (3, 14, 160, 176, 6, 0.25, 1, False), (3, 18, 176, 304, 6, 0.25, 2, False),
        (3, 5, 304, 512, 6, 0.25, 1, False),
    ],
    "l": [
        (3, 4, 32, 32, 1, 0, 1, True), (3, 7, 32, 64, 4, 0, 2, True),
        (3, 7, 64, 96, 4, 0, 2, True), (3, 10, 96, 192, 4, 0.25, 2, False),
        (3, 19, 192, 224, 6, 0.25, 1, False), (3, 25, 224, 384, 6, 0.25, 2, False),
        (3, 7, 384, 640, 6, 0.25, 1, False),
    ],
}  # fmt: skip
# variant -> (stages, width, depth, default size)
_VARIANTS = {
    "b0": ("b", 1.0, 1.0, 224),
    "b1": ("b", 1.0, 1.1, 240),
    "b2": ("b", 1.1, 1.2, 260),
    "b3": ("b", 1.2, 1.4, 300),
    "s": ("s", 1.0, 1.0, 384),
    "m": ("m", 1.0, 1.0, 480),
    "l": ("l", 1.0, 1.0, 480),
}


def _block(x, fused, f_in, f_out, expand, kernel, strides, se_ratio, momentum, act, drop, name):
    """MBConv (1x1 expand, depthwise) or fused MBConv (one kxk expand), then SE and projection."""
    inputs = x
    filters = f_in * expand
    if expand != 1:
        k, s = (kernel, strides) if fused else (1, 1)
        x = _conv(filters, k, s, name=f"{name}expand_conv")(x)
        x = layers.BatchNormalization(axis=3, momentum=momentum, name=f"{name}expand_bn")(x)
        x = layers.Activation(act, name=f"{name}expand_activation")(x)
    if not fused:
        x = layers.DepthwiseConv2D(
            kernel, strides=strides, depthwise_initializer=CONV_KERNEL_INITIALIZER,
            padding="same", use_bias=False, name=f"{name}dwconv2",
        )(x)  # fmt: skip
        x = layers.BatchNormalization(axis=3, momentum=momentum, name=f"{name}bn")(x)
        x = layers.Activation(act, name=f"{name}activation")(x)
    if 0 < se_ratio <= 1:
        x = squeeze_excite(x, filters, f_in, se_ratio, act, name)
    # A fused block without expansion does its kxk (strided) conv here, as the projection.
    spatial = fused and expand == 1
    k, s = (kernel, strides) if spatial else (1, 1)
    x = _conv(f_out, k, s, name=f"{name}project_conv")(x)
    x = layers.BatchNormalization(axis=3, momentum=momentum, name=f"{name}project_bn")(x)
    if spatial:
        x = layers.Activation(act, name=f"{name}project_activation")(x)
    # Keras passes the drop-connect rate as `drop` (it names it survival_probability).
    return residual(x, inputs, strides, f_in, f_out, drop, name)


def EfficientNetV2(
    variant: str,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    include_preprocessing=True,
    name="efficientnetv2",
    dropout_rate=0.2,
    drop_connect_rate=0.2,
    depth_divisor=8,
    bn_momentum=0.9,
    activation="swish",
):
    """EfficientNetV2-``variant``: its stages widened and deepened by the coefficients."""
    stages, width, depth, default_size = _VARIANTS[variant]
    stages = _STAGES[stages]
    # Not _base.start: the preprocessing below reads the resolved input shape's channels.
    _base.check_arguments(weights, include_top, classes, pooling, classifier_activation)
    input_shape = _base.obtain_input_shape(input_shape, default_size, 32, include_top, weights)
    file_name = _base.h5_file_name(name, include_top)
    weights_path = _base.resolve_weights(weights, file_name, BASE_WEIGHTS_URL + file_name)
    img_input = _base.image_input(input_tensor, input_shape)

    def round_filters(filters):
        filters *= width
        rounded = int(filters + depth_divisor / 2) // depth_divisor * depth_divisor
        return int(max(depth_divisor, rounded))

    x = img_input
    if include_preprocessing:
        # Keras tells the B models from S/M/L by the model's name.
        if name.split("-")[-1].startswith("b") and input_shape[-1] == 3:
            x = layers.Rescaling(scale=1.0 / 255)(x)
            x = layers.Normalization(
                mean=[0.485, 0.456, 0.406], variance=[0.229**2, 0.224**2, 0.225**2], axis=3
            )(x)
        else:
            x = layers.Rescaling(scale=1.0 / 128.0, offset=-1)(x)
    x = _conv(round_filters(stages[0][2]), 3, strides=2, name="stem_conv")(x)
    x = layers.BatchNormalization(axis=3, momentum=bn_momentum, name="stem_bn")(x)
    x = layers.Activation(activation, name="stem_activation")(x)
    total = float(sum(stage[1] for stage in stages))
    b = 0
    for i, (kernel, repeats, f_in, f_out, expand, se_ratio, strides, fused) in enumerate(stages):
        f_in, f_out = round_filters(f_in), round_filters(f_out)
        for j in range(int(math.ceil(depth * repeats))):
            if j > 0:
                strides, f_in = 1, f_out
            x = _block(
                x, fused, f_in, f_out, expand, kernel, strides, se_ratio, bn_momentum, activation,
                drop_connect_rate * b / total, f"block{i + 1}{chr(j + 97)}_",
            )  # fmt: skip
            b += 1
    x = _conv(round_filters(1280), 1, name="top_conv")(x)
    x = layers.BatchNormalization(axis=3, momentum=bn_momentum, name="top_bn")(x)
    x = layers.Activation(activation, name="top_activation")(x)
    x = _base.classifier_head(
        x, include_top, pooling, classes, classifier_activation,
        pool_names=("avg_pool", "max_pool"), dropout_rate=dropout_rate,
        kernel_initializer=DENSE_KERNEL_INITIALIZER, bias_initializer=initializers.Constant(0.0),
    )  # fmt: skip
    return _base.finish(img_input, input_tensor, x, name, weights_path)


def _variant(variant: str):
    title = variant.upper()

    def constructor(
        include_top: bool = True,
        weights="imagenet",
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes: int = 1000,
        classifier_activation="softmax",
        include_preprocessing: bool = True,
        name: str = f"efficientnetv2-{variant}",
    ):
        return EfficientNetV2(
            variant, include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, include_preprocessing, name,
        )  # fmt: skip

    constructor.__name__ = constructor.__qualname__ = f"EfficientNetV2{title}"
    constructor.__doc__ = (
        f"EfficientNetV2{title}, as ``keras.applications.EfficientNetV2{title}``.\n\n"
        "    Example:\n"
        f"        >>> model = EfficientNetV2{title}(weights=None, input_shape=(32, 32, 3))\n"
    )
    return constructor


EfficientNetV2B0 = _variant("b0")
EfficientNetV2B1 = _variant("b1")
EfficientNetV2B2 = _variant("b2")
EfficientNetV2B3 = _variant("b3")
EfficientNetV2S = _variant("s")
EfficientNetV2M = _variant("m")
EfficientNetV2L = _variant("l")


def preprocess_input(x, data_format: str | None = None):
    """The identity: the models rescale their inputs themselves (a Keras no-op)."""
    imagenet_utils._check_data_format(data_format)
    return x


def decode_predictions(preds, top: int = 5):
    """See :func:`distkeras.applications.imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
