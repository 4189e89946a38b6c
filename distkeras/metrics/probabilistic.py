"""Losses as metrics: crossentropies, KL divergence, Poisson and the hinges, averaged."""

from __future__ import annotations

from distkeras.losses import functions as loss_fns
from distkeras.metrics.reduction import MeanMetricWrapper


class _LossMetric(MeanMetricWrapper):
    """A loss function averaged over samples; its config is name, dtype and the arguments."""

    def __init__(self, fn, name, dtype, **kwargs):
        super().__init__(fn, name=name, dtype=dtype, **kwargs)
        for key, value in kwargs.items():
            setattr(self, key, value)
        self._direction = "down"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, **self._fn_kwargs}


class BinaryCrossentropy(_LossMetric):
    """Mean binary crossentropy between 0/1 labels and probabilities (or logits).

    Example:
        >>> m = BinaryCrossentropy()
        >>> m.update_state([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
        >>> m.result()
        tensor(0.8149)
    """

    def __init__(
        self,
        name: str = "binary_crossentropy",
        dtype=None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
    ):
        super().__init__(
            loss_fns.binary_crossentropy,
            name,
            dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
        )


class CategoricalCrossentropy(_LossMetric):
    """Mean crossentropy between one-hot labels and class probabilities (or logits).

    Example:
        >>> m = CategoricalCrossentropy()
        >>> m.update_state([[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
        >>> m.result()
        tensor(1.1769)
    """

    def __init__(
        self,
        name: str = "categorical_crossentropy",
        dtype=None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
    ):
        super().__init__(
            loss_fns.categorical_crossentropy,
            name,
            dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class SparseCategoricalCrossentropy(_LossMetric):
    """Mean crossentropy between integer labels and class probabilities (or logits).

    Entries whose label is ``ignore_class`` are left out of the mean.

    Example:
        >>> m = SparseCategoricalCrossentropy()
        >>> m.update_state([1, 2], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
        >>> m.result()
        tensor(1.1769)
    """

    def __init__(
        self,
        name: str = "sparse_categorical_crossentropy",
        dtype=None,
        from_logits: bool = False,
        ignore_class: int | None = None,
        axis: int = -1,
    ):
        super().__init__(
            loss_fns.sparse_categorical_crossentropy,
            name,
            dtype,
            from_logits=from_logits,
            ignore_class=ignore_class,
            axis=axis,
        )


class KLDivergence(_LossMetric):
    """Mean Kullback-Leibler divergence ``sum(y_true * log(y_true / y_pred))``.

    Example:
        >>> m = KLDivergence()
        >>> m.update_state([[0.5, 0.5]], [[0.5, 0.5]])
        >>> m.result()
        tensor(0.)
    """

    def __init__(self, name: str = "kl_divergence", dtype=None):
        super().__init__(loss_fns.kl_divergence, name, dtype)


class Poisson(_LossMetric):
    """Mean Poisson loss ``y_pred - y_true * log(y_pred)``.

    Example:
        >>> m = Poisson()
        >>> m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
        >>> m.result()
        tensor(0.5000)
    """

    def __init__(self, name: str = "poisson", dtype=None):
        super().__init__(loss_fns.poisson, name, dtype)


class Hinge(_LossMetric):
    """Mean hinge loss ``max(1 - y_true * y_pred, 0)``.

    Example:
        >>> m = Hinge()
        >>> m.update_state([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
        >>> m.result()
        tensor(1.3000)
    """

    def __init__(self, name: str = "hinge", dtype=None):
        super().__init__(loss_fns.hinge, name, dtype)


class SquaredHinge(_LossMetric):
    """Mean squared hinge loss ``max(1 - y_true * y_pred, 0)^2``.

    Example:
        >>> m = SquaredHinge()
        >>> m.update_state([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
        >>> m.result()
        tensor(1.8600)
    """

    def __init__(self, name: str = "squared_hinge", dtype=None):
        super().__init__(loss_fns.squared_hinge, name, dtype)


class CategoricalHinge(_LossMetric):
    """Mean categorical hinge loss.

    Example:
        >>> m = CategoricalHinge()
        >>> m.update_state([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
        >>> m.result()
        tensor(1.4000)
    """

    def __init__(self, name: str = "categorical_hinge", dtype=None):
        super().__init__(loss_fns.categorical_hinge, name, dtype)
