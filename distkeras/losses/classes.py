"""Loss classes with Keras 3's names, arguments, defaults and configs.

Each wraps the function of the same name in ``functions.py``; all share the ``reduction``
(default ``"sum_over_batch_size"``), ``name`` and ``dtype`` arguments of :class:`Loss`.
"""

from __future__ import annotations

from distkeras.losses import functions as fns
from distkeras.losses.base import Loss, LossFunctionWrapper

_SOBS = "sum_over_batch_size"


def _check_label_smoothing(cls_name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(
            f"{cls_name}: `label_smoothing` must be a float in [0, 1]. "
            f"Received: label_smoothing={value!r}"
        )
    return float(value)


class _BuiltinLoss(LossFunctionWrapper):
    """A Keras loss class: its config is the base config plus the function's arguments."""

    def __init__(self, fn, reduction, name, dtype, **kwargs):
        super().__init__(fn, reduction=reduction, name=name, dtype=dtype, **kwargs)
        for key, value in kwargs.items():
            setattr(self, key, value)

    def get_config(self) -> dict:
        return {**Loss.get_config(self), **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


class MeanSquaredError(_BuiltinLoss):
    """Mean of squares of errors: ``mean((y_true - y_pred)^2)``.

    Example:
        >>> MeanSquaredError()([[0.0, 1.0]], [[1.0, 1.0]])
        tensor(0.5000)
    """

    def __init__(self, reduction=_SOBS, name: str = "mean_squared_error", dtype=None):
        super().__init__(fns.mean_squared_error, reduction, name, dtype)


class MeanAbsoluteError(_BuiltinLoss):
    """Mean of absolute errors: ``mean(|y_true - y_pred|)``.

    Example:
        >>> MeanAbsoluteError()([[0.0, 1.0]], [[1.0, 1.0]])
        tensor(0.5000)
    """

    def __init__(self, reduction=_SOBS, name: str = "mean_absolute_error", dtype=None):
        super().__init__(fns.mean_absolute_error, reduction, name, dtype)


class MeanAbsolutePercentageError(_BuiltinLoss):
    """``100 * mean(|(y_true - y_pred) / y_true|)`` (denominator at least 1e-7).

    Example:
        >>> MeanAbsolutePercentageError()([[2.0, 4.0]], [[1.0, 4.0]])
        tensor(25.)
    """

    def __init__(self, reduction=_SOBS, name: str = "mean_absolute_percentage_error", dtype=None):
        super().__init__(fns.mean_absolute_percentage_error, reduction, name, dtype)


class MeanSquaredLogarithmicError(_BuiltinLoss):
    """``mean((log(y_pred + 1) - log(y_true + 1))^2)`` (inputs at least 1e-7).

    Example:
        >>> loss = MeanSquaredLogarithmicError()([[0.0, 1.0]], [[1.0, 1.0]])
    """

    def __init__(self, reduction=_SOBS, name: str = "mean_squared_logarithmic_error", dtype=None):
        super().__init__(fns.mean_squared_logarithmic_error, reduction, name, dtype)


class CosineSimilarity(_BuiltinLoss):
    """Negative cosine similarity along ``axis``: -1 is best, 0 orthogonal.

    Example:
        >>> CosineSimilarity()([[0.0, 1.0]], [[0.0, 2.0]])
        tensor(-1.)
    """

    def __init__(
        self, axis: int = -1, reduction=_SOBS, name: str = "cosine_similarity", dtype=None
    ):
        super().__init__(fns.cosine_similarity, reduction, name, dtype, axis=axis)


class Huber(_BuiltinLoss):
    """Huber loss: quadratic for errors up to ``delta``, linear beyond.

    Example:
        >>> Huber(delta=1.0)([[0.0]], [[3.0]])
        tensor(2.5000)
    """

    def __init__(self, delta: float = 1.0, reduction=_SOBS, name: str = "huber_loss", dtype=None):
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or delta < 0:
            raise ValueError(f"Huber: `delta` must be a float >= 0. Received: delta={delta!r}")
        super().__init__(fns.huber, reduction, name, dtype, delta=float(delta))


class LogCosh(_BuiltinLoss):
    """``mean(log(cosh(y_pred - y_true)))``.

    Example:
        >>> loss = LogCosh()([[0.0, 1.0]], [[1.0, 1.0]])
    """

    def __init__(self, reduction=_SOBS, name: str = "log_cosh", dtype=None):
        super().__init__(fns.log_cosh, reduction, name, dtype)


class Hinge(_BuiltinLoss):
    """``mean(max(1 - y_true * y_pred, 0))``; {0, 1} labels are mapped to {-1, 1}.

    Example:
        >>> Hinge()([[1.0, 0.0]], [[0.5, -0.5]])
        tensor(0.5000)
    """

    def __init__(self, reduction=_SOBS, name: str = "hinge", dtype=None):
        super().__init__(fns.hinge, reduction, name, dtype)


class SquaredHinge(_BuiltinLoss):
    """``mean(max(1 - y_true * y_pred, 0)^2)``; {0, 1} labels are mapped to {-1, 1}.

    Example:
        >>> SquaredHinge()([[1.0, 0.0]], [[0.5, -0.5]])
        tensor(0.2500)
    """

    def __init__(self, reduction=_SOBS, name: str = "squared_hinge", dtype=None):
        super().__init__(fns.squared_hinge, reduction, name, dtype)


class CategoricalHinge(_BuiltinLoss):
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)``.

    Example:
        >>> CategoricalHinge()([[0.0, 1.0]], [[0.2, 0.7]])
        tensor(0.5000)
    """

    def __init__(self, reduction=_SOBS, name: str = "categorical_hinge", dtype=None):
        super().__init__(fns.categorical_hinge, reduction, name, dtype)


class KLDivergence(_BuiltinLoss):
    """Kullback-Leibler divergence ``sum(y_true * log(y_true / y_pred))``, inputs in [1e-7, 1].

    Example:
        >>> loss = KLDivergence()([[0.5, 0.5]], [[0.9, 0.1]])
    """

    def __init__(self, reduction=_SOBS, name: str = "kl_divergence", dtype=None):
        super().__init__(fns.kl_divergence, reduction, name, dtype)


class Poisson(_BuiltinLoss):
    """``mean(y_pred - y_true * log(y_pred + 1e-7))``.

    Example:
        >>> loss = Poisson()([[1.0, 2.0]], [[1.0, 1.5]])
    """

    def __init__(self, reduction=_SOBS, name: str = "poisson", dtype=None):
        super().__init__(fns.poisson, reduction, name, dtype)


class BinaryCrossentropy(_BuiltinLoss):
    """Crossentropy for 0/1 labels against probabilities (or logits with ``from_logits``).

    Probabilities are clipped to ``[1e-7, 1 - 1e-7]``; logits use the fused stable kernel.

    Args:
        from_logits: whether ``y_pred`` holds logits instead of probabilities.
        label_smoothing: in [0, 1]; labels become ``y * (1 - ls) + 0.5 * ls``.
        axis: the axis averaged over (the features axis).

    Example:
        >>> BinaryCrossentropy(from_logits=True)([[0.0, 1.0]], [[-18.6, 0.51]])
        tensor(0.2352)
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction=_SOBS,
        name: str = "binary_crossentropy",
        dtype=None,
    ):
        label_smoothing = _check_label_smoothing("BinaryCrossentropy", label_smoothing)
        super().__init__(
            fns.binary_crossentropy,
            reduction,
            name,
            dtype,
            from_logits=bool(from_logits),
            label_smoothing=label_smoothing,
            axis=axis,
        )


class BinaryFocalCrossentropy(_BuiltinLoss):
    """Binary crossentropy scaled by the focal factor ``(1 - p_t)^gamma``.

    Args:
        apply_class_balancing: weight positives by ``alpha`` and negatives by ``1 - alpha``.
        alpha: the class-balancing weight of positives.
        gamma: the focusing parameter; 0 gives plain binary crossentropy.
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: in [0, 1], as in :class:`BinaryCrossentropy`.
        axis: the axis averaged over.

    Example:
        >>> loss = BinaryFocalCrossentropy(gamma=2.0, from_logits=True)([[0.0, 1.0]], [[-1.0, 0.5]])
    """

    def __init__(
        self,
        apply_class_balancing: bool = False,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction=_SOBS,
        name: str = "binary_focal_crossentropy",
        dtype=None,
    ):
        label_smoothing = _check_label_smoothing("BinaryFocalCrossentropy", label_smoothing)
        super().__init__(
            fns.binary_focal_crossentropy,
            reduction,
            name,
            dtype,
            apply_class_balancing=bool(apply_class_balancing),
            alpha=alpha,
            gamma=gamma,
            from_logits=bool(from_logits),
            label_smoothing=label_smoothing,
            axis=axis,
        )


class CategoricalCrossentropy(_BuiltinLoss):
    """Crossentropy between one-hot labels and class probabilities (or logits).

    Probabilities are renormalised per row and clipped to ``[1e-7, 1 - 1e-7]``; logits go
    through ``log_softmax``.

    Args:
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: in [0, 1]; labels become ``y * (1 - ls) + ls / num_classes``.
        axis: the class axis.

    Example:
        >>> CategoricalCrossentropy()([[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
        tensor(1.1769)
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction=_SOBS,
        name: str = "categorical_crossentropy",
        dtype=None,
    ):
        label_smoothing = _check_label_smoothing("CategoricalCrossentropy", label_smoothing)
        super().__init__(
            fns.categorical_crossentropy,
            reduction,
            name,
            dtype,
            from_logits=bool(from_logits),
            label_smoothing=label_smoothing,
            axis=axis,
        )


class CategoricalFocalCrossentropy(_BuiltinLoss):
    """Categorical crossentropy scaled by ``alpha * (1 - p)^gamma`` per class.

    Example:
        >>> loss = CategoricalFocalCrossentropy()([[0, 1, 0]], [[0.05, 0.95, 0]])
    """

    def __init__(
        self,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction=_SOBS,
        name: str = "categorical_focal_crossentropy",
        dtype=None,
    ):
        label_smoothing = _check_label_smoothing("CategoricalFocalCrossentropy", label_smoothing)
        super().__init__(
            fns.categorical_focal_crossentropy,
            reduction,
            name,
            dtype,
            alpha=alpha,
            gamma=gamma,
            from_logits=bool(from_logits),
            label_smoothing=label_smoothing,
            axis=axis,
        )


class SparseCategoricalCrossentropy(_BuiltinLoss):
    """Crossentropy between integer labels and class probabilities (or logits).

    Labels may be shaped ``(N,)`` or ``(N, 1)`` (generally: ``y_pred``'s shape without the
    class axis, optionally with a trailing 1), integers or floats holding integers.

    Args:
        from_logits: whether ``y_pred`` holds logits (then torch's fused ``cross_entropy``).
        ignore_class: a label whose entries are left out of the loss and of its average.
        axis: the class axis.

    Example:
        >>> SparseCategoricalCrossentropy()([1, 2], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
        tensor(1.1769)
    """

    _keeps_integer_labels = True

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        reduction=_SOBS,
        axis: int = -1,
        name: str = "sparse_categorical_crossentropy",
        dtype=None,
    ):
        if ignore_class is not None and (
            isinstance(ignore_class, bool) or not isinstance(ignore_class, int)
        ):
            raise ValueError(
                "SparseCategoricalCrossentropy: `ignore_class` must be an int or None. "
                f"Received: ignore_class={ignore_class!r}"
            )
        super().__init__(
            fns.sparse_categorical_crossentropy,
            reduction,
            name,
            dtype,
            from_logits=bool(from_logits),
            ignore_class=ignore_class,
            axis=axis,
        )
