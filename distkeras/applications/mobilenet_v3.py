"""MobileNetV3Small and MobileNetV3Large: inverted residuals with hard-swish and squeeze-excite.

Howard et al., "Searching for MobileNetV3" (ICCV 2019). ``minimalistic`` drops the
squeeze-excite blocks, hard-swish and 5x5 kernels. With ``include_preprocessing=True`` (the
default) the model rescales [0, 255] pixels itself, so :func:`preprocess_input` is the
identity, as in Keras.
"""

from __future__ import annotations

import warnings

from distkeras import layers
from distkeras.applications import _base, imagenet_utils
from distkeras.applications.mobilenet_v2 import make_divisible as _depth

__all__ = ["MobileNetV3Small", "MobileNetV3Large", "preprocess_input", "decode_predictions"]

BASE_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
# Each block: (expansion, filters, kernel ("k": the variant's), stride, squeeze-excite?, "hs":
# the variant's activation else ReLU). Keras's two stacks.
_SMALL = [
    (1, 16, 3, 2, True, False), (72 / 16, 24, 3, 2, False, False),
    (88 / 24, 24, 3, 1, False, False),
    (4, 40, "k", 2, True, True), (6, 40, "k", 1, True, True), (6, 40, "k", 1, True, True),
    (3, 48, "k", 1, True, True), (3, 48, "k", 1, True, True), (6, 96, "k", 2, True, True),
    (6, 96, "k", 1, True, True), (6, 96, "k", 1, True, True),
]  # fmt: skip
_LARGE = [
    (1, 16, 3, 1, False, False), (4, 24, 3, 2, False, False), (3, 24, 3, 1, False, False),
    (3, 40, "k", 2, True, False), (3, 40, "k", 1, True, False), (3, 40, "k", 1, True, False),
    (6, 80, 3, 2, False, True), (2.5, 80, 3, 1, False, True), (2.3, 80, 3, 1, False, True),
    (2.3, 80, 3, 1, False, True), (6, 112, 3, 1, True, True), (6, 112, 3, 1, True, True),
    (6, 160, "k", 2, True, True), (6, 160, "k", 1, True, True), (6, 160, "k", 1, True, True),
]  # fmt: skip


def _relu(x):
    return layers.ReLU()(x)


def _hard_sigmoid(x):
    return layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)


def _hard_swish(x):
    return layers.Activation("hard_swish")(x)


def _bn(x, name):
    return layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name=name)(x)


def _se_block(inputs, filters, se_ratio, prefix):
    x = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}squeeze_excite_avg_pool")(
        inputs
    )
    x = layers.Conv2D(
        _depth(filters * se_ratio), 1, padding="same", name=f"{prefix}squeeze_excite_conv"
    )(x)
    x = layers.ReLU(name=f"{prefix}squeeze_excite_relu")(x)
    x = layers.Conv2D(filters, 1, padding="same", name=f"{prefix}squeeze_excite_conv_1")(x)
    x = _hard_sigmoid(x)
    return layers.Multiply(name=f"{prefix}squeeze_excite_mul")([inputs, x])


def _inverted_res_block(x, expansion, filters, kernel_size, stride, se_ratio, activation, block_id):
    shortcut = x
    prefix = "expanded_conv_"
    in_filters = x.shape[-1]
    if block_id:
        prefix = f"expanded_conv_{block_id}_"
        x = layers.Conv2D(
            _depth(in_filters * expansion), 1, padding="same", use_bias=False,
            name=f"{prefix}expand",
        )(x)  # fmt: skip
        x = activation(_bn(x, f"{prefix}expand_bn"))
    if stride == 2:
        pad = _base.correct_pad(x, kernel_size)
        x = layers.ZeroPadding2D(padding=pad, name=f"{prefix}depthwise_pad")(x)
    x = layers.DepthwiseConv2D(
        kernel_size, strides=stride, padding="same" if stride == 1 else "valid", use_bias=False,
        name=f"{prefix}depthwise",
    )(x)  # fmt: skip
    x = activation(_bn(x, f"{prefix}depthwise_bn"))
    if se_ratio:
        x = _se_block(x, _depth(in_filters * expansion), se_ratio, prefix)
    x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"{prefix}project")(x)
    x = _bn(x, f"{prefix}project_bn")
    if stride == 1 and in_filters == filters:
        x = layers.Add(name=f"{prefix}add")([shortcut, x])
    return x


def MobileNetV3(
    blocks, last_point_ch, input_shape, alpha, model_type, minimalistic, include_top, weights,
    input_tensor, classes, pooling, dropout_rate, classifier_activation, include_preprocessing,
    name,
):  # fmt: skip
    """The network around one of the two stacks, as Keras's ``MobileNetV3`` builder."""
    _base.check_arguments(weights, include_top, classes, pooling, classifier_activation)
    both = input_shape is not None and input_tensor is not None
    if both and input_tensor.shape[2] != input_shape[1]:
        raise ValueError(
            "input_shape[1] must equal input_tensor.shape[2]. Received "
            f"input_shape={input_shape}, input_tensor.shape={input_tensor.shape}"
        )
    if input_shape is None:
        if input_tensor is not None:
            input_shape = (input_tensor.shape[2], input_tensor.shape[1], 3)
        else:
            input_shape = (None, None, 3)
    rows, cols = input_shape[0], input_shape[1]
    if rows and cols and (rows < 32 or cols < 32):
        raise ValueError(f"Input size must be at least 32x32; Received `input_shape={input_shape}`")
    weights_path = None
    if weights == "imagenet":
        if (not minimalistic and alpha not in (0.75, 1.0)) or (minimalistic and alpha != 1.0):
            raise ValueError(
                "If imagenet weights are being loaded, alpha can be one of `0.75`, `1.0` for "
                f"non minimalistic or `1.0` for minimalistic only. Received: alpha={alpha}"
            )
        if rows != cols or rows != 224:
            warnings.warn(
                "`input_shape` is undefined or non-square, or `rows` is not 224. Weights for "
                "input shape (224, 224) will be loaded as the default.",
                stacklevel=3,
            )
        model_name = f"{model_type}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
        suffix = "" if include_top else "_no_top_v2"
        file_name = f"weights_mobilenet_v3_{model_name}{suffix}.h5"
        weights_path = _base.resolve_weights(weights, file_name, BASE_WEIGHTS_URL + file_name)
    elif weights is not None:
        weights_path = _base.resolve_weights(weights, None, None)
    img_input = _base.image_input(input_tensor, input_shape)
    kernel, activation, se_ratio = (3, _relu, None) if minimalistic else (5, _hard_swish, 0.25)
    x = img_input
    if include_preprocessing:
        x = layers.Rescaling(scale=1.0 / 127.5, offset=-1.0)(x)
    x = layers.Conv2D(16, 3, strides=(2, 2), padding="same", use_bias=False, name="conv")(x)
    x = activation(_bn(x, "conv_bn"))
    for block_id, (expansion, filters, k, stride, se, hs) in enumerate(blocks):
        x = _inverted_res_block(
            x, expansion, _depth(filters * alpha), kernel if k == "k" else k, stride,
            se_ratio if se else None, activation if hs else _relu, block_id,
        )  # fmt: skip
    last_conv_ch = _depth(x.shape[-1] * 6)
    if alpha > 1.0:
        last_point_ch = _depth(last_point_ch * alpha)
    x = layers.Conv2D(last_conv_ch, 1, padding="same", use_bias=False, name="conv_1")(x)
    x = activation(_bn(x, "conv_1_bn"))
    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Conv2D(last_point_ch, 1, padding="same", use_bias=True, name="conv_2")(x)
        x = activation(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate)(x)
        x = layers.Conv2D(classes, 1, padding="same", name="logits")(x)
        x = layers.Flatten()(x)
        x = layers.Activation(activation=classifier_activation, name="predictions")(x)
    else:
        x = _base.pool_features(x, pooling, "avg_pool", "max_pool")
    return _base.finish(img_input, input_tensor, x, name, weights_path)


def MobileNetV3Small(
    input_shape=None,
    alpha: float = 1.0,
    minimalistic: bool = False,
    include_top: bool = True,
    weights="imagenet",
    input_tensor=None,
    classes: int = 1000,
    pooling=None,
    dropout_rate: float = 0.2,
    classifier_activation="softmax",
    include_preprocessing: bool = True,
    name: str = "MobileNetV3Small",
):
    """MobileNetV3Small, as ``keras.applications.MobileNetV3Small``.

    Example:
        >>> model = MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=10)
    """
    return MobileNetV3(
        _SMALL, 1024, input_shape, alpha, "small", minimalistic, include_top, weights,
        input_tensor, classes, pooling, dropout_rate, classifier_activation,
        include_preprocessing, name,
    )  # fmt: skip


def MobileNetV3Large(
    input_shape=None,
    alpha: float = 1.0,
    minimalistic: bool = False,
    include_top: bool = True,
    weights="imagenet",
    input_tensor=None,
    classes: int = 1000,
    pooling=None,
    dropout_rate: float = 0.2,
    classifier_activation="softmax",
    include_preprocessing: bool = True,
    name: str = "MobileNetV3Large",
):
    """MobileNetV3Large, as ``keras.applications.MobileNetV3Large``."""
    return MobileNetV3(
        _LARGE, 1280, input_shape, alpha, "large", minimalistic, include_top, weights,
        input_tensor, classes, pooling, dropout_rate, classifier_activation,
        include_preprocessing, name,
    )  # fmt: skip


def preprocess_input(x, data_format: str | None = None):
    """The identity: the models rescale their inputs themselves (a Keras no-op)."""
    imagenet_utils._check_data_format(data_format)
    return x


def decode_predictions(preds, top: int = 5):
    """See :func:`distkeras.applications.imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
