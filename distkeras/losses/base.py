"""The ``Loss`` base class, ``LossFunctionWrapper`` and Keras's reduction rules.

Keras semantics kept exactly:

- ``"sum_over_batch_size"`` (the default) and ``"mean"`` divide the weighted sum by the number
  of elements of the per-sample loss, not by the sum of the weights;
  ``"mean_with_sample_weight"`` divides by the sum of the weights; ``"sum"`` sums;
  ``None``/``"none"`` returns the per-sample values.
- A mask on ``y_pred`` (``_keras_mask``) or on the per-sample loss zeroes the masked entries and,
  for the averaging reductions, rescales so the average is over the valid entries only.

Everything here is tensor math: no host syncs, so the training step never waits on the device.
"""

from __future__ import annotations

import torch

from distkeras import backend
from distkeras.utils.naming import to_snake_case, uniquify

EPSILON = 1e-7

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def standardize_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Invalid value for argument `reduction`. Expected one of {REDUCTIONS}. "
            f"Received: reduction={reduction!r}"
        )
    return reduction


def to_tensor(x, dtype=None, device=None) -> torch.Tensor:
    """A tensor of ``dtype`` (a torch dtype or None to keep) on ``device`` (None: default)."""
    if isinstance(x, torch.Tensor):
        if device is not None and x.device != device:
            x = x.to(device, non_blocking=True)
        return x if dtype is None or x.dtype == dtype else x.to(dtype)
    return backend.convert_to_tensor(x, dtype=dtype, device=device)


def pred_and_true(y_true, y_pred, true_dtype="like_pred"):
    """Converts a (y_true, y_pred) pair; y_pred becomes floating, y_true follows its device.

    ``true_dtype="like_pred"`` casts y_true to y_pred's dtype (what Keras does); ``None`` keeps
    y_true's own dtype (integer labels stay integers).
    """
    y_pred = to_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(backend.standardize_dtype(backend.floatx()))
    dtype = y_pred.dtype if true_dtype == "like_pred" else true_dtype
    y_true = to_tensor(y_true, dtype=dtype, device=y_pred.device)
    return y_true, y_pred


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1: bool = True):
    """Keras's rank alignment: when ranks differ by one and the longer one ends in 1, the
    shorter is expanded (if it is rank 1 and ``expand_rank_1``) or the longer is squeezed."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2.unsqueeze(-1)
        else:
            x1 = x1.squeeze(-1)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1.unsqueeze(-1)
        else:
            x2 = x2.squeeze(-1)
    return x1, x2


def align_weight(values: torch.Tensor, weight: torch.Tensor):
    """Keras's rank alignment, then trailing unit dims so a per-sample weight of shape (N,)
    broadcasts over per-timestep values (N, T) from the left (as tf.keras did)."""
    values, weight = squeeze_or_expand_to_same_rank(values, weight)
    if 0 < weight.ndim < values.ndim:
        weight = weight.reshape(weight.shape + (1,) * (values.ndim - weight.ndim))
    return values, weight


def divide_no_nan(a, b: torch.Tensor) -> torch.Tensor:
    """``a / b`` with 0 where ``b == 0``; the safe denominator keeps gradients finite.

    ``a`` may be a Python number (no host-to-device copy is made for it)."""
    nonzero = b != 0
    return torch.where(nonzero, a / torch.where(nonzero, b, torch.ones_like(b)), 0.0)


def get_mask(x):
    return getattr(x, "_keras_mask", None)


def apply_mask(sample_weight, mask, dtype, reduction):
    """Merges a mask into the sample weights (rescaled for the averaging reductions)."""
    if mask is None:
        return sample_weight
    mask = mask.to(dtype)
    if reduction in ("mean", "sum_over_batch_size"):
        # Valid entries get weight total/valid, so dividing by the element count later gives
        # the average over the valid entries.
        mask = mask * divide_no_nan(float(mask.numel()), mask.sum())
    if sample_weight is None:
        return mask
    sample_weight = to_tensor(sample_weight, dtype=dtype, device=mask.device)
    mask, sample_weight = squeeze_or_expand_to_same_rank(mask, sample_weight)
    return sample_weight * mask


def reduce_values(values, sample_weight=None, reduction="sum_over_batch_size"):
    if reduction is None or reduction == "none" or values.ndim == 0 or values.numel() == 0:
        return values
    loss = values.sum()
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return divide_no_nan(loss, sample_weight.sum().to(loss.dtype))
    return loss / values.numel()


def reduce_weighted_values(
    values, sample_weight=None, mask=None, reduction="sum_over_batch_size", dtype=None
):
    """Weights, masks and reduces per-sample loss values, as Keras does."""
    reduction = standardize_reduction(reduction)
    values = to_tensor(values, dtype=dtype)
    if sample_weight is not None:
        sample_weight = to_tensor(sample_weight, dtype=values.dtype, device=values.device)
    sample_weight = apply_mask(sample_weight, mask, values.dtype, reduction)
    if sample_weight is not None:
        values, sample_weight = align_weight(values, sample_weight)
        values = values * sample_weight
    return reduce_values(values, sample_weight, reduction)


class Loss:
    """Base class of losses: subclasses implement ``call(y_true, y_pred)``.

    ``call`` returns per-sample values; ``__call__`` weights them by ``sample_weight`` and
    reduces them to a scalar as ``reduction`` says.

    Args:
        name: name of the loss (a default is derived from the class).
        reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
            ``"mean_with_sample_weight"``, or ``None``/``"none"``.
        dtype: dtype of the computation, default ``floatx()``.

    Example:
        >>> class MyMSE(Loss):
        ...     def call(self, y_true, y_pred):
        ...         return ((y_pred - y_true) ** 2).mean(dim=-1)
        >>> MyMSE()(torch.zeros(2, 3), torch.ones(2, 3))
        tensor(1.)
    """

    # Sparse losses keep integer labels instead of casting them to the loss dtype.
    _keeps_integer_labels = False

    def __init__(self, name: str | None = None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or uniquify(to_snake_case(type(self).__name__))
        self.reduction = standardize_reduction(reduction)
        self._dtype_name = backend.floatx() if dtype is None else _dtype_name(dtype)
        self._torch_dtype = backend.standardize_dtype(self._dtype_name)

    @property
    def dtype(self) -> str:
        return self._dtype_name

    def __call__(self, y_true, y_pred, sample_weight=None) -> torch.Tensor:
        in_mask = get_mask(y_pred)
        y_pred = to_tensor(y_pred, dtype=self._torch_dtype)
        y_true = to_tensor(y_true, device=y_pred.device)
        if not (self._keeps_integer_labels and not y_true.is_floating_point()):
            y_true = y_true.to(self._torch_dtype)
        losses = self.call(y_true, y_pred)
        out_mask = get_mask(losses)
        if in_mask is not None and out_mask is not None:
            mask = in_mask.bool() & out_mask.bool()
        else:
            mask = in_mask if in_mask is not None else out_mask
        if sample_weight is None and mask is None:
            return reduce_values(losses, reduction=self.reduction)
        return reduce_weighted_values(
            losses, sample_weight=sample_weight, mask=mask, reduction=self.reduction
        )

    def call(self, y_true, y_pred):
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred).")

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def _dtype_name(dtype) -> str:
    if isinstance(dtype, str):
        backend.standardize_dtype(dtype)  # validates
        return dtype
    return backend.dtype_name(backend.standardize_dtype(dtype))


class LossFunctionWrapper(Loss):
    """Turns a function ``fn(y_true, y_pred, **kwargs)`` returning per-sample values into a Loss.

    The ranks of ``y_true`` and ``y_pred`` are aligned first (labels of shape (N,) against
    predictions of shape (N, 1) are expanded), as Keras does.

    Example:
        >>> loss = LossFunctionWrapper(lambda t, p: (p - t).abs().mean(-1), name="l1")
        >>> loss(torch.zeros(2, 2), torch.ones(2, 2))
        tensor(1.)
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config["fn"] = getattr(self.fn, "__name__", repr(self.fn))
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        fn = config.pop("fn", None)
        if isinstance(fn, str):
            from distkeras.losses import get

            fn = get(fn)
        return cls(fn, **config)

    def __repr__(self):
        return f"<LossFunctionWrapper({self.fn}, kwargs={self._fn_kwargs})>"
