"""Crossentropy of a softmax/sigmoid output, computed from the logits it remembers.

``activations.apply`` attaches the pre-activation to softmax and sigmoid outputs as
``_keras_logits``. Crossentropy on such probabilities is then computed from the logits with
one fused, stable kernel, as Keras's TensorFlow backend does. Mathematically it is the same
value; it differs from normalise-clip-log only for probabilities within 1e-7 of 0 or 1. The
compiled loss and the crossentropy metrics both use it, so they always agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distkeras.losses import functions as loss_functions

# (activation that produced y_pred, loss function) pairs computed from the logits instead.
_SHORTCUTS = {
    ("softmax", loss_functions.categorical_crossentropy),
    ("softmax", loss_functions.sparse_categorical_crossentropy),
    ("sigmoid", loss_functions.binary_crossentropy),
}


def crossentropy_from_logits(
    fn, kwargs: dict, y_true, y_pred, reduction: str = "none"
) -> torch.Tensor | None:
    """``fn(y_true, y_pred, **kwargs)`` from ``y_pred``'s logits, or None if not applicable.

    ``reduction="mean"`` lets the one-kernel case (2-D categorical) return the batch mean
    directly; every other case still returns per-sample values, so callers look at ``ndim``.
    """
    attached = getattr(y_pred, "_keras_logits", None)
    if attached is None:
        return None
    kind, logits = attached
    if (kind, fn) not in _SHORTCUTS or kwargs.get("from_logits"):
        return None
    if kwargs.get("axis", -1) not in (-1, y_pred.ndim - 1):
        return None
    logits = logits.float()
    if fn is loss_functions.categorical_crossentropy and logits.ndim == 2:
        target = y_true.to(logits.dtype) if y_true.dtype != logits.dtype else y_true
        if target.shape == logits.shape:
            return F.cross_entropy(
                logits,
                target,
                reduction=reduction,
                label_smoothing=kwargs.get("label_smoothing", 0.0),
            )
    return fn(y_true, logits, **{**kwargs, "from_logits": True})
