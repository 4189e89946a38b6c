"""Losses, mirroring ``keras.losses``: classes, functions, ``get``/``serialize``/``deserialize``.

Example::

    fn = distkeras.losses.get("categorical_crossentropy")      # the function
    loss = distkeras.losses.CategoricalCrossentropy(from_logits=True)
    value = loss(y_true, logits)                                # a scalar tensor
"""

from __future__ import annotations

import inspect

from distkeras.losses.base import Loss, LossFunctionWrapper, reduce_weighted_values
from distkeras.losses.classes import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)
from distkeras.losses.functions import (
    BCE,
    KLD,
    MAE,
    MAPE,
    MSE,
    MSLE,
    bce,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_hinge,
    cosine_similarity,
    hinge,
    huber,
    kl_divergence,
    kld,
    kullback_leibler_divergence,
    log_cosh,
    logcosh,
    mae,
    mape,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    mse,
    msle,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
)
from distkeras.utils.naming import to_snake_case
from distkeras.utils.serialization import get_custom_object, serialize_object

_CLASSES = (
    Loss,
    LossFunctionWrapper,
    KLDivergence,
    Poisson,
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    SparseCategoricalCrossentropy,
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    CosineSimilarity,
    LogCosh,
    Huber,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
)
_FUNCTIONS = (
    kl_divergence,
    poisson,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    sparse_categorical_crossentropy,
    mean_squared_error,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_logarithmic_error,
    cosine_similarity,
    log_cosh,
    huber,
    hinge,
    squared_hinge,
    categorical_hinge,
)

# Keras 3's lookup table: class names, function names and the short aliases.
ALL_OBJECTS_DICT: dict[str, object] = {obj.__name__: obj for obj in _CLASSES + _FUNCTIONS}
ALL_OBJECTS_DICT.update(
    {
        "bce": binary_crossentropy,
        "BCE": binary_crossentropy,
        "kld": kl_divergence,
        "KLD": kl_divergence,
        "kullback_leibler_divergence": kl_divergence,
        "mae": mean_absolute_error,
        "MAE": mean_absolute_error,
        "mse": mean_squared_error,
        "MSE": mean_squared_error,
        "mape": mean_absolute_percentage_error,
        "MAPE": mean_absolute_percentage_error,
        "msle": mean_squared_logarithmic_error,
        "MSLE": mean_squared_logarithmic_error,
        "logcosh": log_cosh,
    }
)


def _lookup(name: str):
    return ALL_OBJECTS_DICT.get(name) or get_custom_object(name)


def serialize(loss) -> dict | str | None:
    """The config Keras 3 writes: a dict for a Loss instance, the name for a function."""
    return serialize_object(loss, "keras.losses")


def deserialize(config, custom_objects: dict | None = None):
    """Rebuilds a loss from :func:`serialize`'s output (or a name)."""
    if config is None:
        return None
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        obj = custom_objects.get(config) or _lookup(config)
        if obj is None:
            raise ValueError(
                f"Unknown loss. Expected one of {sorted(ALL_OBJECTS_DICT)}. "
                f"Received: loss={config!r}"
            )
        return obj
    if isinstance(config, dict) and "class_name" in config:
        class_name = config["class_name"]
        if class_name == "function":  # Keras 3 stores functions as {"config": name}
            return deserialize(config.get("config"), custom_objects)
        cls = custom_objects.get(class_name) or _lookup(class_name)
        if cls is None or not inspect.isclass(cls):
            raise ValueError(
                f"Unknown loss class {class_name!r}. Pass custom classes with "
                "custom_objects={...}."
            )
        return cls.from_config(config.get("config") or {})
    raise ValueError(f"Could not interpret loss config. Received: config={config!r}")


def get(identifier):
    """Resolves a loss name, config dict, Loss instance or callable.

    Names of classes give an instance with default arguments; names of functions (and the
    short aliases ``"mse"``, ``"mae"``, ...) give the function, as in Keras.

    Example:
        >>> distkeras.losses.get("mse") is distkeras.losses.mean_squared_error
        True
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = _lookup(identifier)
        if obj is None:
            raise ValueError(
                f"Unknown loss. Expected one of {sorted(ALL_OBJECTS_DICT)} or a callable. "
                f"Received: loss={identifier!r}"
            )
    else:
        obj = identifier
    if inspect.isclass(obj):
        obj = obj()
    if not callable(obj):
        raise ValueError(f"Could not interpret loss identifier. Received: loss={identifier!r}")
    return obj


def is_binary_or_sparse_categorical(y_true_shape, y_pred_shape) -> tuple[bool, bool]:
    """Keras's shape test: binary when y_pred ends in 1; sparse categorical when y_true has
    lower rank, or ends in 1 while y_pred has more than one class."""
    y_true_shape = tuple(getattr(y_true_shape, "shape", y_true_shape) or ())
    y_pred_shape = tuple(getattr(y_pred_shape, "shape", y_pred_shape) or ())
    if not y_true_shape:  # no labels known: decide from the predictions alone
        y_true_shape = y_pred_shape
    t_last = y_true_shape[-1] if y_true_shape else None
    p_last = y_pred_shape[-1] if y_pred_shape else None
    is_binary = p_last == 1
    is_sparse = len(y_true_shape) < len(y_pred_shape) or (
        t_last == 1 and p_last is not None and p_last > 1
    )
    return is_binary, is_sparse


def _object_name(obj) -> str:
    if hasattr(obj, "name"):
        return obj.name
    if hasattr(obj, "__name__"):
        return to_snake_case(obj.__name__)
    return to_snake_case(type(obj).__name__)


def resolve_loss(identifier, y_true_shape, y_pred_shape) -> Loss | None:
    """What ``compile(loss=identifier)`` uses: always a :class:`Loss` instance.

    ``"crossentropy"``/``"ce"`` pick binary, sparse categorical or categorical crossentropy
    from the shapes; functions are wrapped in :class:`LossFunctionWrapper` named after the
    identifier (a string keeps its spelling).
    """
    if identifier is None:
        return None
    if str(identifier).lower() in ("crossentropy", "ce"):
        is_binary, is_sparse = is_binary_or_sparse_categorical(y_true_shape, y_pred_shape)
        if is_binary:
            obj = binary_crossentropy
        elif is_sparse:
            obj = sparse_categorical_crossentropy
        else:
            obj = categorical_crossentropy
    else:
        obj = get(identifier)
    if isinstance(obj, Loss):
        return obj
    name = identifier if isinstance(identifier, str) else _object_name(obj)
    wrapper = LossFunctionWrapper(obj, name=name)
    if obj is sparse_categorical_crossentropy:
        wrapper._keeps_integer_labels = True
    return wrapper


__all__ = [
    "Loss",
    "LossFunctionWrapper",
    "reduce_weighted_values",
    "get",
    "serialize",
    "deserialize",
    "resolve_loss",
    "is_binary_or_sparse_categorical",
    *(c.__name__ for c in _CLASSES[2:]),
    *(f.__name__ for f in _FUNCTIONS),
    "mse",
    "MSE",
    "mae",
    "MAE",
    "mape",
    "MAPE",
    "msle",
    "MSLE",
    "kld",
    "KLD",
    "kullback_leibler_divergence",
    "logcosh",
    "bce",
    "BCE",
]
