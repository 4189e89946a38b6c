"""Loss functions: ``fn(y_true, y_pred, ...)`` -> per-sample values (the last axis reduced).

Each accepts tensors, numpy arrays or lists and returns a tensor on ``y_pred``'s device. The
formulas, clipping constants and label conventions are Keras 3's; the ``from_logits`` paths use
torch's fused, numerically stable kernels (``log_softmax``, ``cross_entropy``,
``binary_cross_entropy_with_logits``).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from distkeras.losses.base import (
    EPSILON,
    pred_and_true,
    squeeze_or_expand_to_same_rank,
    to_tensor,
)

_LOG2 = math.log(2.0)


def _check_axis(axis, fn_name: str):
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError(f"{fn_name}: `axis` must be an int. Received: axis={axis!r}")


def _aligned(y_true, y_pred):
    y_true, y_pred = pred_and_true(y_true, y_pred)
    return squeeze_or_expand_to_same_rank(y_true, y_pred)


def l2_normalize(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    # Keras: x * min(rsqrt(sum(x^2)), 1/eps); written as rsqrt(max(., eps^2)) so a zero vector
    # has a finite gradient.
    return x * torch.rsqrt(x.square().sum(dim=axis, keepdim=True).clamp_min(EPSILON**2))


def mean_squared_error(y_true, y_pred) -> torch.Tensor:
    """``mean((y_true - y_pred)^2, axis=-1)``."""
    y_true, y_pred = _aligned(y_true, y_pred)
    return (y_true - y_pred).square().mean(dim=-1)


def mean_absolute_error(y_true, y_pred) -> torch.Tensor:
    """``mean(|y_true - y_pred|, axis=-1)``."""
    y_true, y_pred = _aligned(y_true, y_pred)
    return (y_true - y_pred).abs().mean(dim=-1)


def mean_absolute_percentage_error(y_true, y_pred) -> torch.Tensor:
    """``100 * mean(|(y_true - y_pred) / max(|y_true|, eps)|, axis=-1)``."""
    y_true, y_pred = _aligned(y_true, y_pred)
    diff = ((y_true - y_pred) / y_true.abs().clamp_min(EPSILON)).abs()
    return 100.0 * diff.mean(dim=-1)


def mean_squared_logarithmic_error(y_true, y_pred) -> torch.Tensor:
    """``mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))^2, axis=-1)``."""
    y_true, y_pred = _aligned(y_true, y_pred)
    first = torch.log(y_pred.clamp_min(EPSILON) + 1.0)
    second = torch.log(y_true.clamp_min(EPSILON) + 1.0)
    return (first - second).square().mean(dim=-1)


def cosine_similarity(y_true, y_pred, axis: int = -1) -> torch.Tensor:
    """Negative cosine similarity, ``-sum(l2_norm(y_true) * l2_norm(y_pred), axis)``."""
    y_true, y_pred = _aligned(y_true, y_pred)
    return -(l2_normalize(y_true, axis) * l2_normalize(y_pred, axis)).sum(dim=axis)


def huber(y_true, y_pred, delta: float = 1.0) -> torch.Tensor:
    """Quadratic ``0.5 e^2`` for ``|e| <= delta``, linear ``delta |e| - 0.5 delta^2`` beyond."""
    y_true, y_pred = _aligned(y_true, y_pred)
    error = y_pred - y_true
    abs_error = error.abs()
    quadratic = 0.5 * error.square()
    linear = delta * abs_error - 0.5 * delta * delta
    return torch.where(abs_error <= delta, quadratic, linear).mean(dim=-1)


def log_cosh(y_true, y_pred) -> torch.Tensor:
    """``mean(log(cosh(y_pred - y_true)), axis=-1)``, computed without overflow."""
    y_true, y_pred = _aligned(y_true, y_pred)
    x = y_pred - y_true
    return (x + F.softplus(-2.0 * x) - _LOG2).mean(dim=-1)


def kl_divergence(y_true, y_pred) -> torch.Tensor:
    """``sum(y_true * log(y_true / y_pred), axis=-1)`` with both clipped to ``[eps, 1]``."""
    y_true, y_pred = pred_and_true(y_true, y_pred)
    y_true = y_true.clamp(EPSILON, 1.0)
    y_pred = y_pred.clamp(EPSILON, 1.0)
    return (y_true * torch.log(y_true / y_pred)).sum(dim=-1)


def poisson(y_true, y_pred) -> torch.Tensor:
    """``mean(y_pred - y_true * log(y_pred + eps), axis=-1)``."""
    y_true, y_pred = pred_and_true(y_true, y_pred)
    return (y_pred - y_true * torch.log(y_pred + EPSILON)).mean(dim=-1)


def _hinge_labels(y_true: torch.Tensor) -> torch.Tensor:
    # Keras maps {0, 1} labels to {-1, 1} when every label is 0 or 1; torch.where on a 0-d
    # condition keeps that decision on the device (no host sync).
    is_binary = ((y_true == 0) | (y_true == 1)).all()
    return torch.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true, y_pred) -> torch.Tensor:
    """``mean(max(1 - y_true * y_pred, 0), axis=-1)``; labels in {-1, 1} (or {0, 1})."""
    y_true, y_pred = pred_and_true(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return torch.clamp_min(1.0 - y_true * y_pred, 0.0).mean(dim=-1)


def squared_hinge(y_true, y_pred) -> torch.Tensor:
    """``mean(max(1 - y_true * y_pred, 0)^2, axis=-1)``; labels in {-1, 1} (or {0, 1})."""
    y_true, y_pred = pred_and_true(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return torch.clamp_min(1.0 - y_true * y_pred, 0.0).square().mean(dim=-1)


def categorical_hinge(y_true, y_pred) -> torch.Tensor:
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)``."""
    y_true, y_pred = pred_and_true(y_true, y_pred)
    pos = (y_true * y_pred).sum(dim=-1)
    neg = ((1.0 - y_true) * y_pred).amax(dim=-1)
    return torch.clamp_min(neg - pos + 1.0, 0.0)


def _check_same_shape(y_true, y_pred, fn_name):
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{fn_name}: `y_true` and `y_pred` must have the same shape. Received: "
            f"y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}. "
            "For integer labels use sparse_categorical_crossentropy."
        )


def _warn_single_class(y_pred, fn_name):
    if y_pred.shape[-1] == 1:
        warnings.warn(
            f"In loss {fn_name}, expected y_pred.shape to be (batch_size, num_classes) with "
            f"num_classes > 1. Received: y_pred.shape={tuple(y_pred.shape)}. Consider using "
            "'binary_crossentropy' if you only have 2 classes.",
            SyntaxWarning,
            stacklevel=3,
        )


def _log_probs(y_pred: torch.Tensor, from_logits: bool, axis: int) -> torch.Tensor:
    if from_logits:
        return torch.log_softmax(y_pred, dim=axis)
    # Keras on probabilities: renormalise each row, clip to [eps, 1 - eps], then log.
    probs = y_pred / y_pred.sum(dim=axis, keepdim=True)
    return torch.log(probs.clamp(EPSILON, 1.0 - EPSILON))


def categorical_crossentropy(
    y_true, y_pred, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1
) -> torch.Tensor:
    """Crossentropy between one-hot (or soft) labels and predicted class distributions.

    ``label_smoothing`` mixes the labels with the uniform distribution:
    ``y_true * (1 - ls) + ls / num_classes``.
    """
    _check_axis(axis, "categorical_crossentropy")
    y_true, y_pred = pred_and_true(y_true, y_pred)
    _warn_single_class(y_pred, "categorical_crossentropy")
    _check_same_shape(y_true, y_pred, "categorical_crossentropy")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[axis]
    return -(y_true * _log_probs(y_pred, from_logits, axis)).sum(dim=axis)


def categorical_focal_crossentropy(
    y_true,
    y_pred,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """``sum(alpha * (1 - p)^gamma * -y_true * log(p), axis)`` on renormalised, clipped ``p``."""
    _check_axis(axis, "categorical_focal_crossentropy")
    y_true, y_pred = pred_and_true(y_true, y_pred)
    _warn_single_class(y_pred, "categorical_focal_crossentropy")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[axis]
    if from_logits:
        y_pred = torch.softmax(y_pred, dim=axis)
    output = (y_pred / y_pred.sum(dim=axis, keepdim=True)).clamp(EPSILON, 1.0 - EPSILON)
    cce = -y_true * torch.log(output)
    if not isinstance(alpha, (int, float)):  # per-class weights
        alpha = torch.as_tensor(alpha, dtype=output.dtype, device=output.device)
    return (torch.pow(1.0 - output, gamma) * alpha * cce).sum(dim=axis)


def sparse_categorical_crossentropy(
    y_true, y_pred, from_logits: bool = False, ignore_class: int | None = None, axis: int = -1
) -> torch.Tensor:
    """Crossentropy between integer labels and predicted class distributions.

    Labels may have shape ``y_pred.shape[:-1]`` or that plus a trailing 1, and be integers or
    floats holding integers. With ``ignore_class``, entries with that label give 0 and are
    masked out of the average (the result carries a ``_keras_mask``).
    """
    _check_axis(axis, "sparse_categorical_crossentropy")
    y_pred = to_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.float()
    y_true = to_tensor(y_true, device=y_pred.device)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    axis = axis % y_pred.ndim
    expected = y_pred.shape[:axis] + y_pred.shape[axis + 1 :]
    if y_true.shape != expected:
        raise ValueError(
            "sparse_categorical_crossentropy: `y_true` must have the shape of `y_pred` "
            f"without the class axis. Received: y_true.shape={tuple(y_true.shape)}, "
            f"y_pred.shape={tuple(y_pred.shape)}"
        )
    valid = None
    if ignore_class is not None:
        valid = y_true != ignore_class
        y_true = torch.where(valid, y_true, torch.zeros_like(y_true))
    labels = y_true.long()
    if from_logits:
        # Fused log_softmax + nll; torch wants the class axis at position 1.
        if y_pred.ndim == 1:
            res = F.cross_entropy(y_pred[None], labels[None], reduction="none")[0]
        else:
            logits = y_pred if axis == 1 else y_pred.movedim(axis, 1)
            res = F.cross_entropy(logits, labels, reduction="none")
    else:
        log_probs = _log_probs(y_pred, False, axis)
        res = -torch.gather(log_probs, axis, labels.unsqueeze(axis)).squeeze(axis)
    if valid is not None:
        res = torch.where(valid, res, torch.zeros_like(res))
        res._keras_mask = valid
    return res


def _bce_on_probs(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    # Written out rather than F.binary_cross_entropy, which autocast refuses to run.
    p = y_pred.clamp(EPSILON, 1.0 - EPSILON)
    return -(y_true * torch.log(p) + (1.0 - y_true) * torch.log(1.0 - p))


def binary_crossentropy(
    y_true, y_pred, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1
) -> torch.Tensor:
    """``mean(-(y log p + (1 - y) log(1 - p)), axis)``; ``p`` clipped to ``[eps, 1 - eps]``.

    ``label_smoothing`` squeezes the labels towards 0.5: ``y * (1 - ls) + 0.5 * ls``.
    """
    y_true, y_pred = _aligned(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        bce = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
    else:
        bce = _bce_on_probs(y_true, y_pred)
    return bce.mean(dim=axis)


def binary_focal_crossentropy(
    y_true,
    y_pred,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Binary crossentropy scaled by the focal factor ``(1 - p_t)^gamma`` (Lin et al., 2018).

    With ``apply_class_balancing`` positives are weighted ``alpha``, negatives ``1 - alpha``.
    """
    y_true, y_pred = _aligned(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = torch.sigmoid(y_pred)
    bce = _bce_on_probs(y_true, y_pred)
    p_t = y_true * y_pred + (1.0 - y_true) * (1.0 - y_pred)
    focal_bce = torch.pow(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal_bce = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal_bce
    return focal_bce.mean(dim=axis)


# Short names Keras accepts (the legacy aliases).
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
logcosh = log_cosh
bce = BCE = binary_crossentropy
