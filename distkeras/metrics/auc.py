"""AUC: area under the ROC or precision-recall curve from bucketed confusion counts."""

from __future__ import annotations

import numpy as np
import torch

from distkeras.losses.base import divide_no_nan
from distkeras.metrics.confusion import (
    EPSILON,
    FN,
    FP,
    TN,
    TP,
    _ConfusionMetric,
    is_evenly_distributed,
)

_CURVES = {"roc": "ROC", "pr": "PR"}
_SUMMATIONS = ("interpolation", "majoring", "minoring")


class AUC(_ConfusionMetric):
    """Approximates the area under the ROC (default) or PR curve with a Riemann sum.

    Predictions are counted in ``num_thresholds`` evenly spaced buckets (plus end points just
    below 0 and above 1); the states are the four confusion counts per threshold, so the result
    is exact after summing the states of several processes.

    Args:
        num_thresholds: number of thresholds (> 1), default 200.
        curve: ``"ROC"`` or ``"PR"``.
        summation_method: ``"interpolation"`` (trapezoids for ROC; Davis & Goadrich
            interpolation for PR), ``"minoring"`` or ``"majoring"``.
        name: name of the metric.
        dtype: dtype of the states.
        thresholds: explicit thresholds in [0, 1] (then ``num_thresholds`` is ignored).
        multi_label: compute one AUC per label (last axis) and average them.
        num_labels: number of labels with ``multi_label`` (else read from the first batch).
        label_weights: weights of the labels (averaging weights with ``multi_label``).
        from_logits: apply a sigmoid to ``y_pred`` first.

    Example:
        >>> m = AUC(num_thresholds=3)
        >>> m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
        >>> m.result()
        tensor(0.7500)
    """

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        dtype=None,
        thresholds=None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights=None,
        from_logits: bool = False,
    ):
        if str(curve).lower() not in _CURVES:
            raise ValueError(f"AUC: `curve` must be 'ROC' or 'PR'. Received: curve={curve!r}")
        if str(summation_method).lower() not in _SUMMATIONS:
            raise ValueError(
                f"AUC: `summation_method` must be one of {_SUMMATIONS}. "
                f"Received: summation_method={summation_method!r}"
            )
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            if any(not 0 <= t <= 1 for t in inner):
                raise ValueError(
                    f"AUC: threshold values must be in [0, 1]. Received: thresholds={thresholds!r}"
                )
            self.num_thresholds = len(inner) + 2
            self._evenly = is_evenly_distributed(np.array([0.0] + inner + [1.0]))
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, int):
                raise ValueError(
                    f"AUC: `num_thresholds` must be an integer > 1. "
                    f"Received: num_thresholds={num_thresholds!r}"
                )
            if num_thresholds <= 1:
                raise ValueError(
                    "AUC: `num_thresholds` must be an integer > 1. "
                    f"Received: num_thresholds={num_thresholds}"
                )
            self.num_thresholds = num_thresholds
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        # End points just outside [0, 1] catch predictions of exactly 0 and 1.
        self._thresholds = [0.0 - EPSILON] + inner + [1.0 + EPSILON]
        self.curve = _CURVES[str(curve).lower()]
        self.summation_method = str(summation_method).lower()
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        self.multi_label = bool(multi_label)
        self.num_labels = num_labels
        self.label_weights = (
            None
            if label_weights is None
            else torch.as_tensor(np.asarray(label_weights), dtype=self._torch_dtype)
        )
        self._from_logits = bool(from_logits)
        self._built = False
        if self.multi_label:
            if num_labels:
                self._build((None, num_labels))
        else:
            if num_labels:
                raise ValueError("AUC: `num_labels` is needed only when `multi_label` is True.")
            self._build(None)

    @property
    def thresholds(self) -> list[float]:
        return list(self._thresholds)

    def _build(self, shape) -> None:
        if self.multi_label:
            if len(shape) != 2:
                raise ValueError(
                    "AUC: `y_pred` must have rank 2 when `multi_label=True`. "
                    f"Received: y_pred.shape={tuple(shape)}"
                )
            self._num_labels = shape[1]
            state_shape = (self.num_thresholds, self._num_labels)
        else:
            state_shape = (self.num_thresholds,)
        self.true_positives = self.add_variable(shape=state_shape, name="true_positives")
        self.false_positives = self.add_variable(shape=state_shape, name="false_positives")
        self.true_negatives = self.add_variable(shape=state_shape, name="true_negatives")
        self.false_negatives = self.add_variable(shape=state_shape, name="false_negatives")
        self._built = True

    @torch.no_grad()
    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_pred = self._tensor(y_pred)
        if not self._built:
            self._build(tuple(y_pred.shape))
        if self._from_logits:
            y_pred = torch.sigmoid(y_pred)
        if self.label_weights is not None and self.label_weights.device != y_pred.device:
            self.label_weights = self.label_weights.to(y_pred.device)  # once, not per step
        label_weights = None if self.multi_label else self.label_weights
        self._update(
            {
                TP: self.true_positives,
                TN: self.true_negatives,
                FP: self.false_positives,
                FN: self.false_negatives,
            },
            y_true,
            y_pred,
            sample_weight,
            thresholds=self._thresholds,
            thresholds_distributed_evenly=self._evenly,
            multi_label=self.multi_label,
            label_weights=label_weights,
        )

    def _average_labels(self, by_label: torch.Tensor) -> torch.Tensor:
        if self.label_weights is None:
            return by_label.mean()
        weights = self.label_weights.to(by_label.device)
        return divide_no_nan((by_label * weights).sum(), weights.sum())

    def interpolate_pr_auc(self) -> torch.Tensor:
        """PR-AUC with precision interpolated between thresholds (Davis & Goadrich, 2006).

        Within each interval TP and P = TP + FP vary linearly, so precision's integral has the
        closed form ``slope * (dTP + intercept * log(P_A / P_B))`` over the positives.
        """
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = divide_no_nan(dtp, dp.clamp_min(0.0))
        intercept = tp[1:] - slope * p[1:]
        both_positive = (p[:-1] > 0) & (p[1:] > 0)
        ratio = torch.where(
            both_positive, divide_no_nan(p[:-1], p[1:].clamp_min(0.0)), torch.ones_like(p[1:])
        )
        increments = divide_no_nan(
            slope * (dtp + intercept * torch.log(ratio)), (tp[1:] + fn[1:]).clamp_min(0.0)
        )
        if self.multi_label:
            return self._average_labels(increments.sum(dim=0))
        return increments.sum()

    def result(self) -> torch.Tensor:
        if not self._built:
            return torch.zeros((), dtype=self._torch_dtype)
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self.interpolate_pr_auc()
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        recall = divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = divide_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, divide_no_nan(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = torch.minimum(y[:-1], y[1:])
        else:
            heights = torch.maximum(y[:-1], y[1:])
        terms = (x[:-1] - x[1:]) * heights
        if self.multi_label:
            return self._average_labels(terms.sum(dim=0))
        return terms.sum()

    def reset_state(self) -> None:
        if self._built:
            super().reset_state()

    def get_config(self) -> dict:
        config = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
            "from_logits": self._from_logits,
        }
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config
