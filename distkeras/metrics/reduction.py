"""Sum, Mean and MeanMetricWrapper: the (total, count) metrics most others build on."""

from __future__ import annotations

import torch

from distkeras.backend import without_grad
from distkeras.losses.base import apply_mask, get_mask, squeeze_or_expand_to_same_rank
from distkeras.losses.logits import crossentropy_from_logits
from distkeras.metrics.base import Metric


def reduce_to_samplewise_values(values, sample_weight, reduce_fn, mask=None):
    """Keras's per-sample reduction: values are weighted, then reduced to one value per sample.

    Returns ``(values of shape (N,) or (), sample_weight reduced alike or None)``.
    """
    if mask is not None:
        # Unlike Keras 3.0, a mask on the values (e.g. ``ignore_class``) also applies without
        # sample weights: masked entries leave both the total and the count.
        sample_weight = apply_mask(sample_weight, mask, values.dtype, reduction="sum")
    if sample_weight is not None:
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        w_ndim, v_ndim = sample_weight.ndim, values.ndim
        if v_ndim > w_ndim:
            # Per-sample weights against per-timestep values: reduce the values first.
            values = reduce_fn(values, dim=tuple(range(w_ndim, v_ndim)))
        elif w_ndim > v_ndim:
            raise ValueError(
                f"sample_weight has more dimensions ({tuple(sample_weight.shape)}) than the "
                f"metric values ({tuple(values.shape)})."
            )
        sample_weight = sample_weight.expand_as(values)
        values = values * sample_weight
        if w_ndim > 1:
            sample_weight = reduce_fn(sample_weight, dim=tuple(range(1, w_ndim)))
    if values.ndim > 1:
        values = reduce_fn(values, dim=tuple(range(1, values.ndim)))
    return values, sample_weight


def _sum(x, dim):
    return x.sum(dim=dim)


def _mean(x, dim):
    return x.mean(dim=dim)


class Sum(Metric):
    """The (weighted) sum of the values seen. State: ``total``.

    Example:
        >>> m = Sum()
        >>> m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
        >>> m.result()
        tensor(4.)
    """

    def __init__(self, name: str = "sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), name="total")

    @without_grad
    def update_state(self, values, sample_weight=None) -> None:
        mask = get_mask(values)
        values = self._tensor(values, dtype=self._torch_dtype)
        if sample_weight is not None:
            sample_weight = self._tensor(sample_weight, dtype=self._torch_dtype)
        values, _ = reduce_to_samplewise_values(values, sample_weight, _sum, mask)
        self.total.add_(values.sum())

    def result(self) -> torch.Tensor:
        return self.total.clone()


class Mean(Metric):
    """The (weighted) mean of the values seen. States: ``total`` and ``count``.

    Values of shape (N, ...) are first averaged per sample; ``count`` grows by N, or by the sum
    of the (per-sample) weights.

    Example:
        >>> m = Mean()
        >>> m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
        >>> m.result()
        tensor(2.)
    """

    # What one scalar update without weights counts for: 1, except inside a model's own
    # train/test step on several workers, where the custom-step runner sets it to this
    # worker's share of the global batch (so ``tracker.update_state(loss)`` sums, over the
    # workers, to one update with the global batch's mean).
    scalar_share: float = 1.0

    # ``count``'s version counter (bumped by every in-place write: ``assign``, ``add_``, an
    # all-reduce, a restore) when this metric's own writes last left it known non-negative,
    # and whether it was then known positive. While the counter still reads that version and
    # the count is positive, ``result()`` needs no zero guard; any other write in between
    # makes it take the guarded path. -1: unknown.
    _known_at: int = -1
    _known_positive: bool = False

    def __init__(self, name: str = "mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), name="total")
        self.count = self.add_variable(shape=(), name="count")
        self._count_steps: dict[float, torch.Tensor] = {}
        self._mark_zero_count()

    def _mark_zero_count(self) -> None:
        self._known_positive = False
        try:
            self._known_at = self.count._version
        except RuntimeError:  # an inference-mode tensor has no version counter
            self._known_at = -1

    def reset_state(self) -> None:
        super().reset_state()
        self._mark_zero_count()

    def _add_count(self, n: float) -> None:
        """Adds ``n`` samples (a Python number) to ``count``, noting when it is known > 0."""
        count = self.count
        step = self._count_steps.get(n)
        if step is None:
            # A CPU 0-d tensor adds in one kernel call without wrapping a Python scalar; the
            # few distinct batch sizes and shares of a fit are kept.
            if len(self._count_steps) > 16:
                self._count_steps.clear()
            step = self._count_steps[n] = torch.tensor(n, dtype=count.dtype)
        if self._known_at < 0:
            count.add_(step)
            return
        known = count._version == self._known_at
        count.add_(step)
        if known and n >= 0:
            self._known_at = count._version
            self._known_positive = self._known_positive or n > 0

    def update_state(self, values, sample_weight=None) -> None:
        total = self.total
        if (
            sample_weight is None
            and type(values) is torch.Tensor
            and values.ndim == 0
            and values.dtype == total.dtype
            and values.device == total.device
            and getattr(values, "_keras_mask", None) is None
        ):
            # A custom train_step's ``tracker.update_state(loss)`` every step: two kernels,
            # no grad-mode switch (detach keeps the state out of the graph).
            share = Mean.scalar_share
            values = values.detach()
            total.add_(values if share == 1.0 else values * share)
            self._add_count(share)
            return
        with torch.no_grad():
            self._update(values, sample_weight)

    def _update(self, values, sample_weight) -> None:
        mask = get_mask(values)
        values = self._tensor(values, dtype=self._torch_dtype)
        if sample_weight is not None:
            sample_weight = self._tensor(sample_weight, dtype=self._torch_dtype)
        values, sample_weight = reduce_to_samplewise_values(values, sample_weight, _mean, mask)
        if sample_weight is not None:
            self.total.add_(values.sum())
            self.count.add_(sample_weight.sum())
        elif values.ndim >= 1:
            self.total.add_(values.sum())
            self._add_count(values.shape[0])
        else:
            share = Mean.scalar_share
            self.total.add_(values if share == 1.0 else values * share)
            self._add_count(share)

    def result(self) -> torch.Tensor:
        # total / count, 0 where count is 0 (Keras's divide_no_nan). A guide-style train_step
        # reads it every step: when this metric's own updates left count positive, one kernel;
        # otherwise three. torch functions, not the states' Python operators (Variable's
        # array-operand conversion): a few microseconds a call.
        count = self.count
        if self._known_positive and count._version == self._known_at:
            return torch.div(self.total, count)
        return torch.div(self.total, count).masked_fill_(torch.eq(count, 0), 0.0)


class MeanMetricWrapper(Mean):
    """Averages a per-sample function ``fn(y_true, y_pred, **kwargs)`` over all samples seen.

    Args:
        fn: the function (e.g. a loss function) returning one value per sample.
        name: name of the metric.
        dtype: dtype of the state.
        **kwargs: passed on to ``fn``.

    Example:
        >>> m = MeanMetricWrapper(lambda t, p: (t - p).abs(), name="l1")
        >>> m.update_state([0.0, 1.0], [1.0, 1.0])
        >>> m.result()
        tensor(0.5000)
    """

    def __init__(self, fn, name: str | None = None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    @without_grad
    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if (
            sample_weight is None
            and type(y_pred) is torch.Tensor
            and type(y_true) is torch.Tensor
            and getattr(y_pred, "_keras_mask", None) is None
            and y_pred.device == self.total.device
        ):
            # fit's per-step case (device tensors, no weights, no mask): fewest kernels.
            values = self._values(y_true, y_pred)
            if getattr(values, "_keras_mask", None) is None and values.ndim >= 1:
                if values.ndim > 1:
                    values = values.mean(dim=tuple(range(1, values.ndim)))
                self.total.add_(values.sum())
                self._add_count(values.shape[0])
                return
        mask = get_mask(y_pred)
        y_pred = self._tensor(y_pred)
        y_true = self._tensor(y_true)
        values = self._values(y_true, y_pred)
        values_mask = get_mask(values)
        values = self._tensor(values, dtype=self._torch_dtype)
        if sample_weight is not None:
            sample_weight = self._tensor(sample_weight, dtype=self._torch_dtype)
        # The output mask (e.g. from Masking/Embedding(mask_zero)) weights without rescaling.
        sample_weight = apply_mask(sample_weight, mask, self._torch_dtype, reduction="sum")
        values, sample_weight = reduce_to_samplewise_values(
            values, sample_weight, _mean, values_mask
        )
        self.total.add_(values.sum())
        if sample_weight is not None:
            self.count.add_(sample_weight.sum())
        else:
            self._add_count(values.shape[0] if values.ndim >= 1 else 1)

    def _values(self, y_true, y_pred):
        # Same computation as the compiled loss for softmax/sigmoid outputs (from logits).
        values = crossentropy_from_logits(self._fn, self._fn_kwargs, y_true, y_pred)
        return values if values is not None else self._fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config["fn"] = getattr(self._fn, "__name__", repr(self._fn))
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config: dict):
        if "fn" not in config:  # a subclass whose config holds its own arguments
            return cls(**config)
        config = dict(config)
        fn = config.pop("fn")
        if isinstance(fn, str):
            from distkeras.metrics import get_function

            fn = get_function(fn)
        return cls(fn, **config)
