"""F-beta and F1 scores from per-class (or pooled) true/false positive/negative sums."""

from __future__ import annotations

import torch

from distkeras.metrics.base import Metric

_EPSILON = 1e-7


class FBetaScore(Metric):
    """F-beta score, ``(1 + b^2) * precision * recall / (b^2 * precision + recall)``.

    Inputs are (batch_size, num_classes); predictions above ``threshold`` count as 1 (with
    ``threshold=None`` the row's maximum does). States (sums): ``true_positives``,
    ``false_positives``, ``false_negatives`` and ``intermediate_weights`` (class support).

    Args:
        average: None (one score per class), ``"micro"`` (pooled counts), ``"macro"`` (mean of
            class scores) or ``"weighted"`` (mean weighted by class support).
        beta: weight of recall, a float > 0.
        threshold: a float in (0, 1], or None for the argmax.
        name: name of the metric.
        dtype: dtype of the states.

    Example:
        >>> m = FBetaScore(beta=2.0, threshold=0.5)
        >>> m.update_state([[1, 1, 1], [1, 0, 0], [1, 1, 0]],
        ...                [[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]])
        >>> m.result()
        tensor([0.3846, 0.9091, 0.8333])
    """

    def __init__(
        self,
        average: str | None = None,
        beta: float = 1.0,
        threshold: float | None = None,
        name: str = "fbeta_score",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(
                "FBetaScore: `average` must be one of None, 'micro', 'macro', 'weighted'. "
                f"Received: average={average!r}"
            )
        if not isinstance(beta, float) or beta <= 0.0:
            raise ValueError(f"FBetaScore: `beta` must be a float > 0. Received: beta={beta!r}")
        if threshold is not None and (not isinstance(threshold, float) or not 0 < threshold <= 1):
            raise ValueError(
                "FBetaScore: `threshold` must be a float with 0 < threshold <= 1. "
                f"Received: threshold={threshold!r}"
            )
        self.average = average
        self.beta = beta
        self.threshold = threshold
        self.axis = None if average == "micro" else 0
        self._built = False

    def _build(self, y_true_shape, y_pred_shape) -> None:
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
            raise ValueError(
                f"{type(self).__name__} expects 2D inputs of shape (batch_size, output_dim). "
                f"Received: y_true.shape={tuple(y_true_shape)}, "
                f"y_pred.shape={tuple(y_pred_shape)}"
            )
        shape = () if self.average == "micro" else (y_pred_shape[-1],)
        self.true_positives = self.add_variable(shape=shape, name="true_positives")
        self.false_positives = self.add_variable(shape=shape, name="false_positives")
        self.false_negatives = self.add_variable(shape=shape, name="false_negatives")
        self.intermediate_weights = self.add_variable(shape=shape, name="intermediate_weights")
        self._built = True

    @torch.no_grad()
    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_pred = self._tensor(y_pred, dtype=self._torch_dtype)
        y_true = self._tensor(y_true, dtype=self._torch_dtype)
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        if self.threshold is None:
            # The row maximum is positive; an all-zero row stays all negative.
            top = y_pred.amax(dim=-1, keepdim=True)
            y_pred = (y_pred >= top) & (y_pred.abs() > 1e-9)
        else:
            y_pred = y_pred > self.threshold
        y_pred = y_pred.to(self._torch_dtype)
        weight = None
        if sample_weight is not None:
            weight = self._tensor(sample_weight, dtype=self._torch_dtype).reshape(-1, 1)

        def weighted_sum(value):
            if weight is not None:
                value = value * weight
            return value.sum() if self.axis is None else value.sum(dim=self.axis)

        self.true_positives.add_(weighted_sum(y_pred * y_true))
        self.false_positives.add_(weighted_sum(y_pred * (1.0 - y_true)))
        self.false_negatives.add_(weighted_sum((1.0 - y_pred) * y_true))
        self.intermediate_weights.add_(weighted_sum(y_true))

    def result(self) -> torch.Tensor:
        if not self._built:
            return torch.zeros((), dtype=self._torch_dtype)
        tp = self.true_positives
        precision = tp / (tp + self.false_positives + _EPSILON)
        recall = tp / (tp + self.false_negatives + _EPSILON)
        b2 = self.beta**2
        score = (precision * recall) / (b2 * precision + recall + _EPSILON) * (1.0 + b2)
        if self.average == "weighted":
            support = self.intermediate_weights
            return (score * support / (support.sum() + _EPSILON)).sum()
        if self.average is not None:
            return score.mean()
        return score

    def reset_state(self) -> None:
        if self._built:
            super().reset_state()

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "average": self.average,
            "beta": self.beta,
            "threshold": self.threshold,
        }


class F1Score(FBetaScore):
    """F1 score, ``2 * precision * recall / (precision + recall)``; see :class:`FBetaScore`.

    Example:
        >>> m = F1Score(threshold=0.5)
        >>> m.update_state([[1, 1, 1], [1, 0, 0], [1, 1, 0]],
        ...                [[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]])
        >>> m.result()
        tensor([0.5000, 0.8000, 0.6667])
    """

    def __init__(
        self,
        average: str | None = None,
        threshold: float | None = None,
        name: str = "f1_score",
        dtype=None,
    ):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["beta"]
        return config
