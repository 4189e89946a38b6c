"""Metrics, mirroring ``keras.metrics``, and the resolution ``compile(metrics=[...])`` uses.

Every metric keeps its state in ``metric.variables`` (device tensors, each a sum), so the
distributed trainer gets the exact global value by all-reducing them and calling ``result()``.

Example::

    m = distkeras.metrics.get("auc")
    m.update_state(y_true, y_pred)
    value = float(m.result())
"""

from __future__ import annotations

import inspect

from distkeras import losses as _losses
from distkeras.losses import functions as _loss_fns
from distkeras.metrics.accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from distkeras.metrics.auc import AUC
from distkeras.metrics.base import Metric
from distkeras.metrics.confusion import (
    FalseNegatives,
    FalsePositives,
    Precision,
    Recall,
    TrueNegatives,
    TruePositives,
)
from distkeras.metrics.f_score import F1Score, FBetaScore
from distkeras.metrics.probabilistic import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalHinge,
    Hinge,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)
from distkeras.metrics.reduction import Mean, MeanMetricWrapper, Sum
from distkeras.metrics.regression import (
    CosineSimilarity,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    R2Score,
    RootMeanSquaredError,
    cosine_similarity,
)
from distkeras.utils.naming import to_snake_case
from distkeras.utils.serialization import get_custom_object, serialize_object

# Functions Keras exports from keras.metrics (the loss functions are shared with losses).
binary_crossentropy = _loss_fns.binary_crossentropy
categorical_crossentropy = _loss_fns.categorical_crossentropy
sparse_categorical_crossentropy = _loss_fns.sparse_categorical_crossentropy
binary_focal_crossentropy = _loss_fns.binary_focal_crossentropy
categorical_focal_crossentropy = _loss_fns.categorical_focal_crossentropy
kl_divergence = _loss_fns.kl_divergence
poisson = _loss_fns.poisson
hinge = _loss_fns.hinge
squared_hinge = _loss_fns.squared_hinge
categorical_hinge = _loss_fns.categorical_hinge
huber = _loss_fns.huber
log_cosh = _loss_fns.log_cosh
mean_squared_error = _loss_fns.mean_squared_error
mean_absolute_error = _loss_fns.mean_absolute_error
mean_absolute_percentage_error = _loss_fns.mean_absolute_percentage_error
mean_squared_logarithmic_error = _loss_fns.mean_squared_logarithmic_error

_CLASSES = (
    Metric,
    Mean,
    Sum,
    MeanMetricWrapper,
    MeanSquaredError,
    RootMeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    CosineSimilarity,
    LogCoshError,
    R2Score,
    AUC,
    FalseNegatives,
    FalsePositives,
    Precision,
    Recall,
    TrueNegatives,
    TruePositives,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    KLDivergence,
    Poisson,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    F1Score,
    FBetaScore,
)

# Keras 3's table: class names and their snake_case forms, plus the short aliases.
ALL_OBJECTS_DICT: dict[str, type] = {cls.__name__: cls for cls in _CLASSES}
ALL_OBJECTS_DICT.update({to_snake_case(cls.__name__): cls for cls in _CLASSES})
ALL_OBJECTS_DICT.update(
    {
        "acc": Accuracy,
        "bce": BinaryCrossentropy,
        "BCE": BinaryCrossentropy,
        "mse": MeanSquaredError,
        "MSE": MeanSquaredError,
        "mae": MeanAbsoluteError,
        "MAE": MeanAbsoluteError,
        "mape": MeanAbsolutePercentageError,
        "MAPE": MeanAbsolutePercentageError,
        "msle": MeanSquaredLogarithmicError,
        "MSLE": MeanSquaredLogarithmicError,
        "rmse": RootMeanSquaredError,
        "kld": KLDivergence,
        "KLD": KLDivergence,
        "logcosh": LogCoshError,
    }
)

_FUNCTIONS = {
    fn.__name__: fn
    for fn in (
        accuracy,
        binary_accuracy,
        categorical_accuracy,
        sparse_categorical_accuracy,
        top_k_categorical_accuracy,
        sparse_top_k_categorical_accuracy,
        cosine_similarity,
    )
}


def get_function(name: str):
    """A per-sample metric or loss function by name (for ``MeanMetricWrapper`` configs)."""
    fn = _FUNCTIONS.get(name) or get_custom_object(name)
    if fn is None:
        fn = _losses.get(name)
    return fn


def serialize(metric) -> dict | str | None:
    """The config Keras 3 writes: a dict for a Metric instance, the name for a function."""
    return serialize_object(metric, "keras.metrics")


def deserialize(config, custom_objects: dict | None = None):
    """Rebuilds a metric from :func:`serialize`'s output (or a name)."""
    if config is None:
        return None
    custom_objects = custom_objects or {}
    if isinstance(config, str):
        return get(custom_objects.get(config, config))
    if isinstance(config, dict) and "class_name" in config:
        class_name = config["class_name"]
        if class_name == "function":
            return get_function(config.get("config"))
        cls = (
            custom_objects.get(class_name)
            or ALL_OBJECTS_DICT.get(class_name)
            or get_custom_object(class_name)
        )
        if cls is None or not inspect.isclass(cls):
            raise ValueError(
                f"Unknown metric class {class_name!r}. Pass custom classes with "
                "custom_objects={...}."
            )
        return cls.from_config(config.get("config") or {})
    raise ValueError(f"Could not interpret metric config. Received: config={config!r}")


def get(identifier):
    """Resolves a metric name, config dict, Metric instance or callable.

    Names give a fresh instance (``"auc"``, ``"precision"``, ``"mse"``,
    ``"categorical_accuracy"``, ...). A name that is only a loss function (e.g. ``"huber"``)
    gives that function; ``compile`` wraps functions in :class:`MeanMetricWrapper`.

    Example:
        >>> distkeras.metrics.get("mse")
        <MeanSquaredError name=mean_squared_error>
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier) or get_custom_object(identifier)
        if obj is None:
            obj = _FUNCTIONS.get(identifier) or _losses.ALL_OBJECTS_DICT.get(identifier)
            if inspect.isclass(obj):  # a loss class name is not a metric
                obj = None
        if obj is None:
            raise ValueError(
                f"Unknown metric. Expected one of {sorted(ALL_OBJECTS_DICT)} or a callable. "
                f"Received: metric={identifier!r}"
            )
    else:
        obj = identifier
    if inspect.isclass(obj):
        obj = obj()
    if not callable(obj) and not isinstance(obj, Metric):
        raise ValueError(f"Could not interpret metric identifier. Received: metric={identifier!r}")
    return obj


def _object_name(obj) -> str:
    if hasattr(obj, "name"):
        return obj.name
    if hasattr(obj, "__name__"):
        return to_snake_case(obj.__name__)
    return to_snake_case(type(obj).__name__)


def _crossentropy_settings(loss):
    """(kind, from_logits) of a crossentropy loss, or (None, False)."""
    if loss is None:
        return None, False
    if isinstance(loss, str):
        loss = _losses.ALL_OBJECTS_DICT.get(loss, loss)
    if inspect.isclass(loss):
        loss = loss()
    fn = getattr(loss, "fn", loss)
    kwargs = getattr(loss, "_fn_kwargs", {})
    if isinstance(loss, _losses.BinaryCrossentropy) or fn is _loss_fns.binary_crossentropy:
        return "binary", bool(kwargs.get("from_logits", False))
    if fn is _loss_fns.sparse_categorical_crossentropy:
        return "sparse", bool(kwargs.get("from_logits", False))
    if fn is _loss_fns.categorical_crossentropy:
        return "categorical", bool(kwargs.get("from_logits", False))
    return None, False


def resolve_metric(identifier, y_true_shape, y_pred_shape, loss=None) -> Metric | None:
    """What ``compile(metrics=[identifier])`` builds for one output: always a Metric.

    ``"accuracy"``/``"acc"`` become BinaryAccuracy when ``y_pred``'s last dim is 1,
    SparseCategoricalAccuracy when ``y_true`` has lower rank (or last dim 1 against more than
    one class), else CategoricalAccuracy: Keras 3's shape rule, which ignores the loss.
    ``"crossentropy"``/``"ce"`` pick the crossentropy metric the same way (binary also when the
    loss is binary crossentropy) and take ``from_logits`` from a crossentropy ``loss``.
    The metric keeps the user's spelling as its name; functions are wrapped in
    :class:`MeanMetricWrapper`.

    Args:
        identifier: a name, config dict, Metric instance or function.
        y_true_shape: shape (or a tensor/array) of the labels of one batch.
        y_pred_shape: shape (or a tensor/array) of the predictions of one batch.
        loss: the output's loss (name, function or Loss), consulted for ``"crossentropy"``.

    Example:
        >>> resolve_metric("accuracy", (32,), (32, 10))
        <SparseCategoricalAccuracy name=accuracy>
    """
    if identifier is None:
        return None
    key = str(identifier).lower() if isinstance(identifier, str) else None
    if key in ("accuracy", "acc"):
        is_binary, is_sparse = _losses.is_binary_or_sparse_categorical(y_true_shape, y_pred_shape)
        if is_binary:
            metric = BinaryAccuracy(name=identifier)
        elif is_sparse:
            metric = SparseCategoricalAccuracy(name=identifier)
        else:
            metric = CategoricalAccuracy(name=identifier)
    elif key in ("crossentropy", "ce"):
        is_binary, is_sparse = _losses.is_binary_or_sparse_categorical(y_true_shape, y_pred_shape)
        kind, from_logits = _crossentropy_settings(loss)
        if is_binary or kind == "binary":
            metric = BinaryCrossentropy(name=identifier, from_logits=from_logits)
        elif is_sparse:
            metric = SparseCategoricalCrossentropy(name=identifier, from_logits=from_logits)
        else:
            metric = CategoricalCrossentropy(name=identifier, from_logits=from_logits)
    else:
        metric = get(identifier)
    name = identifier if isinstance(identifier, str) else _object_name(metric)
    if not isinstance(metric, Metric):
        metric = MeanMetricWrapper(metric, name=name)
    metric.name = name
    return metric


__all__ = [
    "get",
    "serialize",
    "deserialize",
    "resolve_metric",
    "get_function",
    *(cls.__name__ for cls in _CLASSES),
    *_FUNCTIONS,
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "kl_divergence",
    "poisson",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "huber",
    "log_cosh",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
]
