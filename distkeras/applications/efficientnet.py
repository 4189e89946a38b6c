"""EfficientNetB0-B7: MBConv blocks with squeeze-and-excitation, compound-scaled.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks" (ICML
2019). The model rescales its own inputs (Rescaling and Normalization layers come first), so
it takes pixels in [0, 255] and :func:`preprocess_input` is the identity, as in Keras.
"""

from __future__ import annotations

import math

from distkeras import layers
from distkeras.applications import _base, imagenet_utils
from distkeras.applications.mbconv import (
    CONV_KERNEL_INITIALIZER,
    DENSE_KERNEL_INITIALIZER,
    conv,
    residual,
    squeeze_excite,
)

__all__ = [f"EfficientNetB{i}" for i in range(8)] + ["preprocess_input", "decode_predictions"]

BASE_WEIGHTS_URL = "https://storage.googleapis.com/keras-applications/"
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
# (kernel_size, repeats, filters_in, filters_out, expand_ratio, strides) of the seven stages;
# every block skips its identity when shapes allow and squeezes to 1/4 of filters_in.
DEFAULT_BLOCKS = (
    (3, 1, 32, 16, 1, 1),
    (3, 2, 16, 24, 6, 2),
    (5, 2, 24, 40, 6, 2),
    (3, 3, 40, 80, 6, 2),
    (5, 3, 80, 112, 6, 1),
    (5, 4, 112, 192, 6, 2),
    (3, 1, 192, 320, 6, 1),
)
# name suffix -> (width, depth, default size, dropout)
_VARIANTS = {
    0: (1.0, 1.0, 224, 0.2),
    1: (1.0, 1.1, 240, 0.2),
    2: (1.1, 1.2, 260, 0.3),
    3: (1.2, 1.4, 300, 0.3),
    4: (1.4, 1.8, 380, 0.4),
    5: (1.6, 2.2, 456, 0.4),
    6: (1.8, 2.6, 528, 0.5),
    7: (2.0, 3.1, 600, 0.5),
}


def _block(x, activation, drop_rate, name, filters_in, filters_out, kernel_size, strides, expand):
    """MBConv: 1x1 expand, depthwise kxk, squeeze-excite, 1x1 project (+ stochastic skip)."""
    inputs = x
    filters = filters_in * expand
    if expand != 1:
        x = conv(filters, 1, name=f"{name}expand_conv")(x)
        x = layers.BatchNormalization(axis=3, name=f"{name}expand_bn")(x)
        x = layers.Activation(activation, name=f"{name}expand_activation")(x)
    if strides == 2:
        pad = _base.correct_pad(x, kernel_size)
        x = layers.ZeroPadding2D(padding=pad, name=f"{name}dwconv_pad")(x)
    x = layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding="valid" if strides == 2 else "same",
        use_bias=False, depthwise_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}dwconv",
    )(x)  # fmt: skip
    x = layers.BatchNormalization(axis=3, name=f"{name}bn")(x)
    x = layers.Activation(activation, name=f"{name}activation")(x)
    x = squeeze_excite(x, filters, filters_in, 0.25, activation, name)
    x = conv(filters_out, 1, name=f"{name}project_conv")(x)
    x = layers.BatchNormalization(axis=3, name=f"{name}project_bn")(x)
    return residual(x, inputs, strides, filters_in, filters_out, drop_rate, name)


def EfficientNet(
    variant: int,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="efficientnet",
    drop_connect_rate: float = 0.2,
    depth_divisor: int = 8,
    activation="swish",
):
    """EfficientNet-B``variant``: B0's stages widened and deepened by its coefficients."""
    width, depth, default_size, dropout_rate = _VARIANTS[variant]
    # Keras names the weight file after the model's name, so a renamed model finds none.
    file_name = _base.h5_file_name(name, include_top)
    img_input, weights_path = _base.start(
        weights, include_top, classes, pooling, classifier_activation, input_tensor,
        input_shape, default_size, 32, file_name, BASE_WEIGHTS_URL + file_name,
    )  # fmt: skip

    def round_filters(filters):
        filters *= width
        new = max(depth_divisor, int(filters + depth_divisor / 2) // depth_divisor * depth_divisor)
        return int(new + depth_divisor if new < 0.9 * filters else new)

    def round_repeats(repeats):
        return int(math.ceil(depth * repeats))

    x = layers.Rescaling(1.0 / 255.0)(img_input)
    x = layers.Normalization(axis=3)(x)
    if weights == "imagenet":
        # The released weights' Normalization holds the variance; this makes it the std.
        x = layers.Rescaling([1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB])(x)
    x = layers.ZeroPadding2D(padding=_base.correct_pad(x, 3), name="stem_conv_pad")(x)
    x = layers.Conv2D(
        round_filters(32), 3, strides=2, padding="valid", use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER, name="stem_conv",
    )(x)  # fmt: skip
    x = layers.BatchNormalization(axis=3, name="stem_bn")(x)
    x = layers.Activation(activation, name="stem_activation")(x)
    total = float(sum(round_repeats(stage[1]) for stage in DEFAULT_BLOCKS))
    b = 0
    for i, (kernel, repeats, f_in, f_out, expand, strides) in enumerate(DEFAULT_BLOCKS):
        f_in, f_out = round_filters(f_in), round_filters(f_out)
        for j in range(round_repeats(repeats)):
            if j > 0:
                strides, f_in = 1, f_out
            x = _block(
                x, activation, drop_connect_rate * b / total, f"block{i + 1}{chr(j + 97)}_",
                f_in, f_out, kernel, strides, expand,
            )  # fmt: skip
            b += 1
    x = conv(round_filters(1280), 1, name="top_conv")(x)
    x = layers.BatchNormalization(axis=3, name="top_bn")(x)
    x = layers.Activation(activation, name="top_activation")(x)
    x = _base.classifier_head(
        x, include_top, pooling, classes, classifier_activation,
        pool_names=("avg_pool", "max_pool"), dropout_rate=dropout_rate,
        kernel_initializer=DENSE_KERNEL_INITIALIZER,
    )  # fmt: skip
    return _base.finish(img_input, input_tensor, x, name, weights_path)


def _variant(index: int):
    def build(*args):
        return EfficientNet(index, *args)

    width, depth, size, dropout = _VARIANTS[index]
    doc = (
        f"EfficientNetB{index} (width {width}, depth {depth}, {size}x{size} default input, "
        f"dropout {dropout}), as ``keras.applications.EfficientNetB{index}``.\n\n"
        "    Example:\n"
        f"        >>> model = EfficientNetB{index}(weights=None, input_shape=(32, 32, 3))\n"
    )
    return _base.constructor(build, f"EfficientNetB{index}", f"efficientnetb{index}", doc, __name__)


EfficientNetB0 = _variant(0)
EfficientNetB1 = _variant(1)
EfficientNetB2 = _variant(2)
EfficientNetB3 = _variant(3)
EfficientNetB4 = _variant(4)
EfficientNetB5 = _variant(5)
EfficientNetB6 = _variant(6)
EfficientNetB7 = _variant(7)


def preprocess_input(x, data_format: str | None = None):
    """The identity: EfficientNet models rescale their inputs themselves (a Keras no-op)."""
    imagenet_utils._check_data_format(data_format)
    return x


def decode_predictions(preds, top: int = 5):
    """See :func:`distkeras.applications.imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
