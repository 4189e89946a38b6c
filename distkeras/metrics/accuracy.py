"""Accuracy metrics: how often predictions match labels (Keras 3's shape rules)."""

from __future__ import annotations

import torch

from distkeras.losses.base import pred_and_true, squeeze_or_expand_to_same_rank, to_tensor
from distkeras.metrics.reduction import MeanMetricWrapper


def accuracy(y_true, y_pred) -> torch.Tensor:
    """``mean(y_true == y_pred, axis=-1)``: exact matches."""
    y_true, y_pred = pred_and_true(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return (y_true == y_pred).float().mean(dim=-1)


def binary_accuracy(y_true, y_pred, threshold: float = 0.5) -> torch.Tensor:
    """``mean(y_true == (y_pred > threshold), axis=-1)``."""
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, device=y_pred.device)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    y_pred = (y_pred > threshold).to(y_true.dtype)
    return (y_true == y_pred).float().mean(dim=-1)


def categorical_accuracy(y_true, y_pred) -> torch.Tensor:
    """1.0 where ``argmax(y_true) == argmax(y_pred)`` (one-hot labels), per sample."""
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, device=y_pred.device)
    if y_true.dtype == torch.bool:  # one-hot bool labels (keras.io's text examples); as Keras
        y_true = y_true.to(torch.uint8)
    y_true = y_true.argmax(dim=-1)
    if y_true.ndim == y_pred.ndim:
        y_true = y_true.squeeze(-1)
    return (y_true == y_pred.argmax(dim=-1)).float()


def sparse_categorical_accuracy(y_true, y_pred) -> torch.Tensor:
    """1.0 where ``y_true == argmax(y_pred)`` (integer labels, shape (N,) or (N, 1))."""
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, device=y_pred.device)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    matches = (y_true == y_pred.argmax(dim=-1).to(y_true.dtype)).float()
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches.squeeze(-1)
    return matches


def _in_top_k(targets: torch.Tensor, predictions: torch.Tensor, k: int) -> torch.Tensor:
    # A target counts when its score reaches the k-th largest (ties count as in, as in Keras).
    k = min(k, predictions.shape[-1])
    kth = torch.topk(predictions, k, dim=-1).values[:, -1]
    target_scores = torch.gather(predictions, 1, targets.long().unsqueeze(1)).squeeze(1)
    return target_scores >= kth


def _top_k_matches(labels: torch.Tensor, y_pred: torch.Tensor, k: int) -> torch.Tensor:
    shape = labels.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    if labels.ndim > 1:
        labels = labels.reshape(-1)
    return _in_top_k(labels, y_pred, k).float().reshape(shape)


def top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> torch.Tensor:
    """1.0 where the one-hot label's class is among the ``k`` highest predictions."""
    y_pred = to_tensor(y_pred)
    labels = to_tensor(y_true, device=y_pred.device).argmax(dim=-1)
    return _top_k_matches(labels, y_pred, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> torch.Tensor:
    """1.0 where the integer label is among the ``k`` highest predictions."""
    y_pred = to_tensor(y_pred)
    labels = to_tensor(y_true, device=y_pred.device)
    return _top_k_matches(labels, y_pred, k)


def _check_k(cls_name: str, k) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{cls_name}: `k` must be a positive integer. Received: k={k!r}")
    return k


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly.

    Example:
        >>> m = Accuracy()
        >>> m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]])
        >>> m.result()
        tensor(0.7500)
    """

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)
        self._direction = "up"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches the 0/1 label.

    Example:
        >>> m = BinaryAccuracy()
        >>> m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
        >>> m.result()
        tensor(0.7500)
    """

    def __init__(self, name: str = "binary_accuracy", dtype=None, threshold: float = 0.5):
        if threshold is not None and not 0 < threshold < 1:
            raise ValueError(
                "BinaryAccuracy: `threshold` must be in the interval (0, 1). "
                f"Received: threshold={threshold!r}"
            )
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold
        self._direction = "up"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    """How often ``argmax(y_pred)`` matches the one-hot label.

    Example:
        >>> m = CategoricalAccuracy()
        >>> m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        >>> m.result()
        tensor(0.5000)
    """

    def __init__(self, name: str = "categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)
        self._direction = "up"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often ``argmax(y_pred)`` matches the integer label.

    Example:
        >>> m = SparseCategoricalAccuracy()
        >>> m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
        >>> m.result()
        tensor(0.5000)
    """

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)
        self._direction = "up"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot label is among the ``k`` highest predictions.

    Example:
        >>> m = TopKCategoricalAccuracy(k=1)
        >>> m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        >>> m.result()
        tensor(0.5000)
    """

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype=None):
        k = _check_k("TopKCategoricalAccuracy", k)
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k
        self._direction = "up"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "k": self.k}


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the ``k`` highest predictions.

    Example:
        >>> m = SparseTopKCategoricalAccuracy(k=1)
        >>> m.update_state([2, 1], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        >>> m.result()
        tensor(0.5000)
    """

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy", dtype=None):
        k = _check_k("SparseTopKCategoricalAccuracy", k)
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k
        self._direction = "up"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "k": self.k}
