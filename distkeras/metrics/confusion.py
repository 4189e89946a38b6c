"""Confusion-matrix metrics: TruePositives..., Precision, Recall and AUC.

All keep weighted counts per threshold (sums, so they reduce exactly across processes). A
prediction is positive at threshold ``t`` when ``y_pred > t``. Evenly spaced thresholds (AUC's
default) use Keras's bucketed update: each prediction is scattered once into its bucket and a
reversed cumulative sum gives the counts at every threshold, O(N + T) instead of O(N * T).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from distkeras.losses.base import divide_no_nan, squeeze_or_expand_to_same_rank
from distkeras.metrics.base import Metric

NEG_INF = -1e10
EPSILON = 1e-7
TP, FP, TN, FN = "tp", "fp", "tn", "fn"


def _to_list(x):
    return list(x) if isinstance(x, (list, tuple, np.ndarray)) else [x]


def parse_thresholds(cls_name: str, thresholds, default) -> list[float]:
    if thresholds is None:
        return _to_list(default)
    values = _to_list(thresholds)
    bad = [t for t in values if t is None or not 0 <= t <= 1]
    if bad:
        raise ValueError(
            f"{cls_name}: threshold values must be in [0, 1]. Received: thresholds={thresholds!r}"
        )
    return [float(t) for t in values]


def is_evenly_distributed(thresholds) -> bool:
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _filter_top_k(x: torch.Tensor, k: int) -> torch.Tensor:
    # Keeps the k largest entries of the last axis; the rest drop to NEG_INF.
    idx = torch.topk(x, min(k, x.shape[-1]), dim=-1).indices
    keep = torch.zeros_like(x).scatter_(-1, idx, 1.0)
    return x * keep + NEG_INF * (1.0 - keep)


def _reverse_cumsum(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    return x.flip(dim).cumsum(dim).flip(dim)


def update_confusion_matrix_variables(
    variables: dict,
    y_true,
    y_pred,
    thresholds,
    top_k: int | None = None,
    class_id: int | None = None,
    sample_weight=None,
    multi_label: bool = False,
    label_weights=None,
    thresholds_distributed_evenly: bool = False,
) -> None:
    """Adds the weighted TP/FP/TN/FN counts at each threshold to ``variables`` (in place).

    ``variables`` maps ``"tp"``, ``"fp"``, ``"tn"``, ``"fn"`` (any subset) to state tensors
    of shape (T,), or (T, num_labels) with ``multi_label``.
    """
    dtype = next(iter(variables.values())).dtype
    y_true = y_true.to(dtype)
    y_pred = y_pred.to(dtype)
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if sample_weight is not None:
        sample_weight = sample_weight.to(dtype).unsqueeze(-1)
        _, sample_weight = squeeze_or_expand_to_same_rank(
            y_true, sample_weight, expand_rank_1=False
        )
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim < 2:
            raise ValueError(
                "When class_id is provided, y_pred must be a 2D array of shape "
                f"(num_samples, num_classes). Received: y_pred.shape={tuple(y_pred.shape)}"
            )
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    weights = None
    if sample_weight is not None:
        if 0 < sample_weight.ndim < y_pred.ndim:
            # Per-sample weights broadcast from the left over per-label/timestep entries.
            sample_weight = sample_weight.reshape(
                sample_weight.shape + (1,) * (y_pred.ndim - sample_weight.ndim)
            )
        weights = sample_weight.expand_as(y_pred)
    if label_weights is not None and not multi_label:
        lw = label_weights.to(dtype=dtype, device=y_pred.device).expand_as(y_pred)
        weights = lw if weights is None else weights * lw
    labels = y_true != 0
    if not multi_label:
        labels, y_pred = labels.reshape(-1), y_pred.reshape(-1)
        weights = None if weights is None else weights.reshape(-1)
    if thresholds_distributed_evenly:
        _update_bucketed(variables, labels, y_pred, thresholds, weights, multi_label)
    else:
        _update_dense(variables, labels, y_pred, thresholds, weights)


@functools.lru_cache(maxsize=64)
def _thresholds_tensor(thresholds: tuple, dtype, device) -> torch.Tensor:
    # Cached so a training step does not copy the thresholds to the device every update.
    return torch.tensor(thresholds, dtype=dtype, device=device)


def _update_dense(variables, labels, y_pred, thresholds, weights):
    thr = _thresholds_tensor(tuple(thresholds), y_pred.dtype, y_pred.device)
    thr = thr.reshape((-1,) + (1,) * y_pred.ndim)
    pred_pos = y_pred.unsqueeze(0) > thr  # (T, M) or (T, N, L)
    label_pos = labels.unsqueeze(0)
    w = 1.0 if weights is None else weights.unsqueeze(0)

    def count(label, pred):
        return ((label & pred).to(y_pred.dtype) * w).sum(dim=1)

    if TP in variables:
        variables[TP].add_(count(label_pos, pred_pos))
    if FP in variables:
        variables[FP].add_(count(~label_pos, pred_pos))
    if FN in variables:
        variables[FN].add_(count(label_pos, ~pred_pos))
    if TN in variables:
        variables[TN].add_(count(~label_pos, ~pred_pos))


def _update_bucketed(variables, labels, y_pred, thresholds, weights, multi_label):
    num_thresholds = len(thresholds)
    with_epsilon = thresholds[0] < 0.0 or thresholds[-1] > 1.0
    y_pred = y_pred.clamp(0.0, 1.0)
    true_labels = labels.to(y_pred.dtype)
    false_labels = 1.0 - true_labels
    if weights is not None:
        true_labels, false_labels = true_labels * weights, false_labels * weights
    # Bucket i holds predictions in (t_i, t_{i+1}]; a prediction of exactly t_0 = 0 falls in
    # bucket -1 (counted at no threshold) unless the first threshold sits below 0.
    buckets = torch.ceil(y_pred * (num_thresholds - 1)) - 1.0
    if with_epsilon:
        buckets = buckets.clamp_min(0.0)
    # Shift by one so bucket -1 lands in slot 0, which is then dropped.
    slots = buckets.long() + 1
    if multi_label:
        num_labels = y_pred.shape[-1]
        slots = slots * num_labels + torch.arange(num_labels, device=y_pred.device)
        size = (num_thresholds + 1) * num_labels
    else:
        size = num_thresholds + 1

    def bucket_sums(values):
        out = torch.zeros(size, dtype=values.dtype, device=values.device)
        out.scatter_add_(0, slots.reshape(-1), values.reshape(-1))
        if multi_label:
            return out.reshape(num_thresholds + 1, -1)[1:]
        return out[1:]

    tp = _reverse_cumsum(bucket_sums(true_labels))
    fp = _reverse_cumsum(bucket_sums(false_labels))
    if TP in variables:
        variables[TP].add_(tp)
    if FP in variables:
        variables[FP].add_(fp)
    if FN in variables:
        total_true = true_labels.sum(dim=0) if multi_label else true_labels.sum()
        variables[FN].add_(total_true - tp)
    if TN in variables:
        total_false = false_labels.sum(dim=0) if multi_label else false_labels.sum()
        variables[TN].add_(total_false - fp)


class _ConfusionMetric(Metric):
    """Shared input handling: converts, then updates the given count states."""

    def _update(self, counts: dict, y_true, y_pred, sample_weight, **kwargs) -> None:
        y_pred = self._tensor(y_pred)
        y_true = self._tensor(y_true)
        if sample_weight is not None:
            sample_weight = self._tensor(sample_weight)
        update_confusion_matrix_variables(
            counts, y_true, y_pred, sample_weight=sample_weight, **kwargs
        )


class _ConditionCount(_ConfusionMetric):
    _condition = TP

    def __init__(self, thresholds=None, name: str | None = None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = parse_thresholds(type(self).__name__, thresholds, 0.5)
        self._evenly = is_evenly_distributed(self.thresholds)
        self.accumulator = self.add_variable(shape=(len(self.thresholds),), name="accumulator")

    @torch.no_grad()
    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        self._update(
            {self._condition: self.accumulator},
            y_true,
            y_pred,
            sample_weight,
            thresholds=self.thresholds,
            thresholds_distributed_evenly=self._evenly,
        )

    def result(self) -> torch.Tensor:
        return (
            self.accumulator[0].clone() if len(self.thresholds) == 1 else self.accumulator.clone()
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConditionCount):
    """Weighted count of true positives (``y_pred > threshold`` and label 1).

    Example:
        >>> m = TruePositives()
        >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        >>> m.result()
        tensor(2.)
    """

    _condition = TP


class FalsePositives(_ConditionCount):
    """Weighted count of false positives (``y_pred > threshold`` and label 0).

    Example:
        >>> m = FalsePositives()
        >>> m.update_state([0, 1, 0, 0], [0, 0, 1, 1])
        >>> m.result()
        tensor(2.)
    """

    _condition = FP


class TrueNegatives(_ConditionCount):
    """Weighted count of true negatives (``y_pred <= threshold`` and label 0).

    Example:
        >>> m = TrueNegatives()
        >>> m.update_state([0, 1, 0, 0], [1, 1, 0, 0])
        >>> m.result()
        tensor(2.)
    """

    _condition = TN


class FalseNegatives(_ConditionCount):
    """Weighted count of false negatives (``y_pred <= threshold`` and label 1).

    Example:
        >>> m = FalseNegatives()
        >>> m.update_state([0, 1, 1, 1], [0, 1, 0, 0])
        >>> m.result()
        tensor(2.)
    """

    _condition = FN


class _PrecisionRecall(_ConfusionMetric):
    _second = FP  # the count in the denominator besides the true positives

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        default = 0.5 if top_k is None else NEG_INF
        self.thresholds = parse_thresholds(type(self).__name__, thresholds, default)
        self._evenly = is_evenly_distributed(self.thresholds)
        n = len(self.thresholds)
        self.true_positives = self.add_variable(shape=(n,), name="true_positives")
        second_name = "false_positives" if self._second == FP else "false_negatives"
        setattr(self, second_name, self.add_variable(shape=(n,), name=second_name))
        self._second_state = getattr(self, second_name)

    @torch.no_grad()
    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        self._update(
            {TP: self.true_positives, self._second: self._second_state},
            y_true,
            y_pred,
            sample_weight,
            thresholds=self.thresholds,
            thresholds_distributed_evenly=self._evenly,
            top_k=self.top_k,
            class_id=self.class_id,
        )

    def result(self) -> torch.Tensor:
        tp = self.true_positives
        value = divide_no_nan(tp, tp + self._second_state)
        return value[0] if len(self.thresholds) == 1 else value

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


class Precision(_PrecisionRecall):
    """``tp / (tp + fp)``: the fraction of positive predictions that are right.

    Args:
        thresholds: a float or list in [0, 1] (default 0.5, or none with ``top_k``); one
            result per threshold. Use 0 with logits.
        top_k: count only the ``k`` highest predictions of each sample as positive.
        class_id: restrict to one class of a (N, num_classes) prediction.

    Example:
        >>> m = Precision()
        >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        >>> m.result()
        tensor(0.6667)
    """

    _second = FP


class Recall(_PrecisionRecall):
    """``tp / (tp + fn)``: the fraction of positives that are found.

    Args:
        thresholds: a float or list in [0, 1] (default 0.5, or none with ``top_k``).
        top_k: count only the ``k`` highest predictions of each sample as positive.
        class_id: restrict to one class of a (N, num_classes) prediction.

    Example:
        >>> m = Recall()
        >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        >>> m.result()
        tensor(0.6667)
    """

    _second = FN
