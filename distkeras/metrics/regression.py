"""Regression metrics: mean errors, RMSE, cosine similarity, log-cosh, R^2."""

from __future__ import annotations

import torch

from distkeras.losses import functions as loss_fns
from distkeras.losses.base import pred_and_true, squeeze_or_expand_to_same_rank
from distkeras.metrics.base import Metric
from distkeras.metrics.reduction import Mean, MeanMetricWrapper


def cosine_similarity(y_true, y_pred, axis: int = -1) -> torch.Tensor:
    """``sum(l2_norm(y_true) * l2_norm(y_pred), axis)`` (the metric is positive; the loss is
    its negative)."""
    y_true, y_pred = pred_and_true(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return (loss_fns.l2_normalize(y_true, axis) * loss_fns.l2_normalize(y_pred, axis)).sum(axis)


class _NamedMean(MeanMetricWrapper):
    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class MeanSquaredError(_NamedMean):
    """Mean of ``(y_true - y_pred)^2``.

    Example:
        >>> m = MeanSquaredError()
        >>> m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
        >>> m.result()
        tensor(0.2500)
    """

    def __init__(self, name: str = "mean_squared_error", dtype=None):
        super().__init__(loss_fns.mean_squared_error, name=name, dtype=dtype)
        self._direction = "down"


class MeanAbsoluteError(_NamedMean):
    """Mean of ``|y_true - y_pred|``.

    Example:
        >>> m = MeanAbsoluteError()
        >>> m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
        >>> m.result()
        tensor(0.2500)
    """

    def __init__(self, name: str = "mean_absolute_error", dtype=None):
        super().__init__(loss_fns.mean_absolute_error, name=name, dtype=dtype)
        self._direction = "down"


class MeanAbsolutePercentageError(_NamedMean):
    """Mean of ``100 * |(y_true - y_pred) / y_true|``.

    Example:
        >>> m = MeanAbsolutePercentageError()
        >>> m.update_state([[2.0, 4.0]], [[1.0, 4.0]])
        >>> m.result()
        tensor(25.)
    """

    def __init__(self, name: str = "mean_absolute_percentage_error", dtype=None):
        super().__init__(loss_fns.mean_absolute_percentage_error, name=name, dtype=dtype)
        self._direction = "down"


class MeanSquaredLogarithmicError(_NamedMean):
    """Mean of ``(log(y_pred + 1) - log(y_true + 1))^2``.

    Example:
        >>> m = MeanSquaredLogarithmicError()
        >>> m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
        >>> m.result()
        tensor(0.1201)
    """

    def __init__(self, name: str = "mean_squared_logarithmic_error", dtype=None):
        super().__init__(loss_fns.mean_squared_logarithmic_error, name=name, dtype=dtype)
        self._direction = "down"


class LogCoshError(_NamedMean):
    """Mean of ``log(cosh(y_pred - y_true))``.

    Example:
        >>> m = LogCoshError()
        >>> m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
        >>> m.result()
        tensor(0.1084)
    """

    def __init__(self, name: str = "logcosh", dtype=None):
        super().__init__(loss_fns.log_cosh, name=name, dtype=dtype)
        self._direction = "down"


class CosineSimilarity(MeanMetricWrapper):
    """Mean cosine similarity between labels and predictions along ``axis``.

    Example:
        >>> m = CosineSimilarity(axis=1)
        >>> m.update_state([[0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]])
        >>> m.result()
        tensor(0.5000)
    """

    def __init__(self, name: str = "cosine_similarity", dtype=None, axis: int = -1):
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=axis)
        self.axis = axis
        self._direction = "up"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "axis": self.axis}


class RootMeanSquaredError(Mean):
    """``sqrt(mean((y_pred - y_true)^2))`` over every element seen. States: total, count.

    Example:
        >>> m = RootMeanSquaredError()
        >>> m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
        >>> m.result()
        tensor(0.5000)
    """

    def __init__(self, name: str = "root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "down"

    @torch.no_grad()
    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_pred = self._tensor(y_pred, dtype=self._torch_dtype)
        y_true = self._tensor(y_true, dtype=self._torch_dtype)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        super().update_state((y_pred - y_true).square(), sample_weight=sample_weight)

    def result(self) -> torch.Tensor:
        return torch.sqrt(super().result())


class R2Score(Metric):
    """Coefficient of determination ``1 - SS_res / SS_tot`` (optionally adjusted).

    States (all sums): ``num_samples``, then per output ``squared_sum``, ``sum``, ``residual``
    and ``count``, created on the first update from ``y_pred``'s last dimension.

    Args:
        class_aggregation: ``"uniform_average"`` (default), ``"variance_weighted_average"`` or
            None (one score per output).
        num_regressors: number of regressors for the adjusted R^2 (0: plain R^2).

    Example:
        >>> m = R2Score()
        >>> m.update_state([[1.0], [4.0], [3.0]], [[2.0], [4.0], [4.0]])
        >>> m.result()
        tensor(0.5714)
    """

    def __init__(
        self,
        class_aggregation: str | None = "uniform_average",
        num_regressors: int = 0,
        name: str = "r2_score",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        allowed = (None, "uniform_average", "variance_weighted_average")
        if class_aggregation not in allowed:
            raise ValueError(
                f"R2Score: `class_aggregation` must be one of {allowed}. "
                f"Received: class_aggregation={class_aggregation!r}"
            )
        if num_regressors < 0:
            raise ValueError(
                f"R2Score: `num_regressors` must be >= 0. Received: num_regressors={num_regressors}"
            )
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors
        self.num_samples = self.add_variable(shape=(), name="num_samples")
        self._built = False

    def _build(self, y_true_shape, y_pred_shape):
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
            raise ValueError(
                "R2Score expects 2D inputs of shape (batch_size, output_dim). Received: "
                f"y_true.shape={tuple(y_true_shape)}, y_pred.shape={tuple(y_pred_shape)}"
            )
        n = y_pred_shape[-1]
        self.squared_sum = self.add_variable(shape=(n,), name="squared_sum")
        self.sum = self.add_variable(shape=(n,), name="sum")
        self.total_mse = self.add_variable(shape=(n,), name="residual")
        self.count = self.add_variable(shape=(n,), name="count")
        self._built = True

    @torch.no_grad()
    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_pred = self._tensor(y_pred, dtype=self._torch_dtype)
        y_true = self._tensor(y_true, dtype=self._torch_dtype)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        if sample_weight is None:
            weight = torch.ones_like(y_true)
        else:
            weight = self._tensor(sample_weight, self._torch_dtype)
        if weight.ndim == 1:
            weight = weight.unsqueeze(1)
        weight = weight.expand_as(y_true)
        self.sum.add_((y_true * weight).sum(0))
        self.squared_sum.add_((y_true.square() * weight).sum(0))
        self.total_mse.add_(((y_true - y_pred).square() * weight).sum(0))
        self.count.add_(weight.sum(0))
        self.num_samples.add_(y_true.numel())  # elements, as Keras counts them

    def result(self) -> torch.Tensor:
        mean = self.sum / self.count
        total = self.squared_sum - self.sum * mean
        raw = 1.0 - self.total_mse / total
        raw = torch.where(torch.isinf(raw), torch.zeros_like(raw), raw)
        if self.class_aggregation == "uniform_average":
            score = raw.mean()
        elif self.class_aggregation == "variance_weighted_average":
            score = (raw * total).sum() / total.sum()
        else:
            score = raw
        if self.num_regressors:
            n, p = self.num_samples, float(self.num_regressors)
            adjusted = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
            # Keras leaves the score unadjusted when there are too few samples.
            score = torch.where(n > p + 1.0, adjusted, score)
        return score

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "class_aggregation": self.class_aggregation,
            "num_regressors": self.num_regressors,
        }
