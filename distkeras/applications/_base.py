"""What every application shares: argument checks, the input, the head, loading weights.

Each family module only lays out its own layers between :func:`image_input` and
:func:`finish`, so the checks and errors are the same everywhere, and Keras's.
"""

from __future__ import annotations

import os
import warnings

from distkeras import activations, layers
from distkeras.applications import legacy_h5
from distkeras.applications.imagenet_utils import keras_cache_dir
from distkeras.layers.input import KerasTensor
from distkeras.models.functional import Functional
from distkeras.utils import get_source_inputs


def check_arguments(
    weights, include_top: bool, classes: int, pooling, classifier_activation
) -> None:
    """Keras's checks on the common arguments, plus ours on values Keras ignores silently."""
    if not (weights in ("imagenet", None) or (isinstance(weights, (str, os.PathLike)))):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            "'imagenet' (pre-training on ImageNet), or the path to the weights file to be "
            f"loaded. Received: weights={weights}"
        )
    if weights not in ("imagenet", None) and not os.path.exists(weights):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            "'imagenet' (pre-training on ImageNet), or the path to the weights file to be "
            f"loaded; no file exists at that path. Received: weights={weights}"
        )
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            "If using `weights='imagenet'` with `include_top=True`, `classes` should be "
            f"1000. Received: classes={classes}"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(
            f"`pooling` must be one of None, 'avg' or 'max'. Received: pooling={pooling!r}"
        )
    if include_top and weights is not None:
        act = activations.get(classifier_activation)
        if act not in (activations.get("softmax"), activations.get(None)):
            raise ValueError(
                "Only `None` and `softmax` activations are allowed for the "
                "`classifier_activation` argument when using pretrained weights, with "
                f"`include_top=True`; Received: classifier_activation={classifier_activation}"
            )


def obtain_input_shape(
    input_shape, default_size: int, min_size: int, require_flatten: bool, weights
) -> tuple:
    """The model's (H, W, C) input shape, validated as Keras does (channels_last)."""
    if input_shape is not None:
        input_shape = tuple(input_shape)
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        if input_shape[-1] not in (1, 3):
            warnings.warn(
                "This model usually expects 1 or 3 input channels. However, it was passed "
                f"an input_shape with {input_shape[-1]} input channels.",
                stacklevel=3,
            )
        default_shape = (default_size, default_size, input_shape[-1])
    else:
        default_shape = (default_size, default_size, 3)
    if weights == "imagenet" and require_flatten:
        if input_shape is not None and input_shape != default_shape:
            raise ValueError(
                "When setting `include_top=True` and loading `imagenet` weights, "
                f"`input_shape` should be {default_shape}. Received: input_shape={input_shape}"
            )
        return default_shape
    if input_shape:
        if len(input_shape) != 3:
            raise ValueError(
                "`input_shape` must be a tuple of three integers (height, width, channels). "
                f"Received: input_shape={input_shape}"
            )
        if input_shape[-1] != 3 and weights == "imagenet":
            raise ValueError(
                f"The input must have 3 channels; Received `input_shape={input_shape}`"
            )
        if any(d is not None and d < min_size for d in input_shape[:2]):
            raise ValueError(
                f"Input size must be at least {min_size}x{min_size}; Received: "
                f"input_shape={input_shape}"
            )
    else:
        input_shape = default_shape if require_flatten else (None, None, 3)
    if require_flatten and None in input_shape:
        raise ValueError(
            "If `include_top` is True, you should specify a static `input_shape`. "
            f"Received: input_shape={input_shape}"
        )
    return input_shape


def image_input(input_tensor, input_shape: tuple) -> KerasTensor:
    """The tensor the network starts from: a new Input, or the user's symbolic tensor."""
    if input_tensor is None:
        return layers.Input(shape=input_shape)
    if isinstance(input_tensor, KerasTensor):
        return input_tensor
    return layers.Input(tensor=input_tensor, shape=input_shape)


def correct_pad(x: KerasTensor, kernel_size) -> tuple:
    """ZeroPadding2D amounts that make a stride-2 'valid' conv behave like TF's 'same'."""
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    rows, cols = x.shape[1:3]
    adjust = (1, 1) if rows is None else (1 - rows % 2, 1 - cols % 2)
    half = (kernel_size[0] // 2, kernel_size[1] // 2)
    return ((half[0] - adjust[0], half[0]), (half[1] - adjust[1], half[1]))


def pool_features(x: KerasTensor, pooling, avg_name=None, max_name=None) -> KerasTensor:
    """The ``include_top=False`` ending: ``pooling`` None, "avg" or "max"."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=avg_name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=max_name)(x)
    return x


def start(
    weights,
    include_top: bool,
    classes: int,
    pooling,
    classifier_activation,
    input_tensor,
    input_shape,
    default_size: int,
    min_size: int,
    imagenet_file: str | None,
    imagenet_url: str | None,
) -> tuple[KerasTensor, str | None]:
    """Every family's first steps, in Keras's order: the argument checks, the input shape,
    the weights file (found before anything is built), then the input tensor.

    Returns ``(img_input, weights_path)``; ``weights_path`` goes to :func:`finish`.
    """
    check_arguments(weights, include_top, classes, pooling, classifier_activation)
    input_shape = obtain_input_shape(input_shape, default_size, min_size, include_top, weights)
    weights_path = resolve_weights(weights, imagenet_file, imagenet_url)
    return image_input(input_tensor, input_shape), weights_path


def conv_bn(
    x: KerasTensor,
    filters: int,
    kernel_size,
    strides,
    padding: str,
    activation,
    names: tuple = (None, None, None),
) -> KerasTensor:
    """The Inception families' unit: Conv2D without bias, BatchNormalization without scale
    (the activation that follows makes a scale redundant), then ``activation`` unless None.
    ``names`` are the three layers' names (None: automatic)."""
    conv_name, bn_name, act_name = names
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=conv_name
    )(x)
    x = layers.BatchNormalization(axis=3, scale=False, name=bn_name)(x)
    if activation is None:
        return x
    return layers.Activation(activation, name=act_name)(x)


def constructor(build, func_name: str, default_name: str, doc: str, module: str):
    """A public model function with Keras's standard signature (``include_top`` ...
    ``name``, ``name`` defaulting to ``default_name``) that calls ``build`` with those eight
    arguments in that order; one definition instead of one copy per variant."""

    def model_fn(
        include_top: bool = True,
        weights="imagenet",
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes: int = 1000,
        classifier_activation="softmax",
        name: str = default_name,
    ):
        return build(
            include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation, name,
        )  # fmt: skip

    model_fn.__name__ = model_fn.__qualname__ = func_name
    model_fn.__doc__ = doc
    model_fn.__module__ = module
    return model_fn


def classifier_head(
    x: KerasTensor,
    include_top: bool,
    pooling,
    classes: int,
    classifier_activation,
    avg_name: str | None = "avg_pool",
    pool_names: tuple = (None, None),
    dropout_rate: float = 0.0,
    **dense_kwargs,
) -> KerasTensor:
    """Keras's usual ending: global average pooling (``avg_name``), an optional "top_dropout"
    and the "predictions" Dense; or, without the top, :func:`pool_features` (``pool_names``
    are its average and max pooling layer names)."""
    if not include_top:
        return pool_features(x, pooling, *pool_names)
    x = layers.GlobalAveragePooling2D(name=avg_name)(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="top_dropout")(x)
    return layers.Dense(
        classes, activation=classifier_activation, name="predictions", **dense_kwargs
    )(x)


def h5_file_name(stem: str, include_top: bool) -> str:
    """Keras's ImageNet file names: ``<stem>.h5``, or ``<stem>_notop.h5`` without the top."""
    return f"{stem}{'' if include_top else '_notop'}.h5"


TF_KERNELS = "_weights_tf_dim_ordering_tf_kernels"  # in most of Keras's legacy file names


def finish(img_input: KerasTensor, input_tensor, outputs: KerasTensor, name: str, weights_path):
    """Makes the model from its input(s), then loads ``weights_path`` (None: no weights)."""
    inputs = get_source_inputs(input_tensor) if input_tensor is not None else img_input
    model = Functional(inputs, outputs, name=name)
    if weights_path is not None:
        load_weights(model, weights_path)
    return model


def resolve_weights(weights, imagenet_file: str | None, imagenet_url: str | None) -> str | None:
    """The file ``weights`` (None, "imagenet" or a path) names, checked before any building."""
    if weights is None:
        return None
    if weights == "imagenet":
        return imagenet_weights_path(imagenet_file, imagenet_url)
    return os.fspath(weights)


def imagenet_weights_path(file_name: str | None, url: str | None) -> str:
    """Where Keras caches ``file_name``; an error saying how to get it when it is not there."""
    if file_name is None:
        raise ValueError("There are no ImageNet weights for this configuration.")
    path = os.path.join(keras_cache_dir(), file_name)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"weights='imagenet' reads Keras's weights file {file_name}, expected at {path}, "
            f"which does not exist. Nothing is downloaded here: fetch it from {url} (where "
            "Keras downloads it from) and put it there (or set KERAS_HOME to the folder whose "
            "models/ holds it), or pass the file's path as `weights`."
        )
    return path


def load_weights(model: Functional, path: str) -> None:
    """Keras 3 files (``.weights.h5``, ``.keras``) by place; legacy HDF5 (``.h5``) by order."""
    if path.endswith((".weights.h5", ".keras")):
        model.load_weights(path)
    elif path.endswith((".h5", ".hdf5")):
        legacy_h5.load_legacy_weights(model, path)
    else:
        raise ValueError(
            "Application weights must be a Keras weights file: `.weights.h5`, `.keras`, or a "
            f"legacy `.h5` file like Keras's ImageNet downloads. Received: weights={path}"
        )
