"""BatchNormalization with Keras's numbers: momentum 0.99, epsilon 1e-3, biased batch variance
in the moving average, and a frozen (trainable=False) layer running in inference mode.

The per-sample normalizations (LayerNormalization, ...) live in ``normalization.py``, which
re-exports this class; the small argument helpers below are shared with it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distkeras import constraints, initializers, regularizers
from distkeras.layers.base import Layer

__all__ = ["BatchNormalization"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_epsilon(layer: str, epsilon) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon < 0:
        raise ValueError(
            f"{layer}: argument `epsilon` must be a non-negative float. "
            f"Received: epsilon={epsilon!r}"
        )
    return float(epsilon)


def _check_axes(layer: str, axis) -> int | list[int]:
    if isinstance(axis, (list, tuple)) and all(
        isinstance(a, int) and not isinstance(a, bool) for a in axis
    ):
        return list(axis)
    if isinstance(axis, int) and not isinstance(axis, bool):
        return axis
    raise TypeError(
        f"{layer}: argument `axis` must be an int or a list/tuple of ints. Received: axis={axis!r}"
    )


def _positive_axis(layer_name: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"Layer '{layer_name}': axis {axis} is out of bounds for an input of rank {ndim}."
        )
    return axis % ndim


def _broadcast_shape(ndim: int, axes: list[int], sizes) -> list[int]:
    shape = [1] * ndim
    for a, s in zip(axes, sizes):
        shape[a] = s
    return shape


class BatchNormalization(Layer):
    """Normalizes inputs with batch statistics in training and moving statistics in inference.

    Training: ``gamma * (x - mean(batch)) / sqrt(var(batch) + epsilon) + beta`` with the biased
    batch variance, and ``moving = momentum * moving + (1 - momentum) * batch`` for both
    statistics. Inference (``training=False``, the default, or ``trainable=False``): the moving
    statistics replace the batch ones. Weights, in Keras order: gamma, beta (trainable),
    moving_mean, moving_variance (non-trainable).

    Args:
        axis: the feature axis (``-1`` for channels_last, ``1`` after channels_first convs).
        momentum: momentum of the moving averages.
        epsilon: added to the variance.
        center: learn an offset ``beta``.
        scale: learn a factor ``gamma``.
        synchronized: compute batch statistics over all workers of a distributed run.

    Example:
        >>> bn = BatchNormalization()
        >>> bn(torch.randn(8, 4), training=True).shape
        torch.Size([8, 4])
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        synchronized: bool = False,
        renorm: bool = False,
        renorm_clipping=None,
        renorm_momentum: float = 0.99,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(
                f"BatchNormalization: argument `axis` must be an int. Received: axis={axis!r}"
            )
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)):
            raise ValueError(
                f"BatchNormalization: argument `momentum` must be a float. "
                f"Received: momentum={momentum!r}"
            )
        if renorm:
            raise NotImplementedError(
                "BatchNormalization: batch renormalization is not supported. Received: renorm=True"
            )
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = _check_epsilon("BatchNormalization", epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.synchronized = bool(synchronized)
        self.renorm = False
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = float(renorm_momentum)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True

    def build(self, input_shape):
        axis = _positive_axis(self.name, self.axis, len(input_shape))
        dim = input_shape[axis]
        if dim is None:
            raise ValueError(
                f"BatchNormalization layer '{self.name}' needs a known size on axis {self.axis}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        if dim == 0:
            raise ValueError(
                f"BatchNormalization layer '{self.name}' needs a non-empty axis {self.axis} "
                f"(the features it normalizes). Received: input_shape={tuple(input_shape)}"
            )
        shape = (dim,)
        if self.scale:
            self.gamma = self.add_weight(
                shape=shape,
                initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
                name="gamma",
            )
        else:
            self.gamma = None
        if self.center:
            self.beta = self.add_weight(
                shape=shape,
                initializer=self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
                name="beta",
            )
        else:
            self.beta = None
        self.moving_mean = self.add_weight(
            shape=shape,
            initializer=self.moving_mean_initializer,
            trainable=False,
            name="moving_mean",
        )
        self.moving_variance = self.add_weight(
            shape=shape,
            initializer=self.moving_variance_initializer,
            trainable=False,
            name="moving_variance",
        )
        self.built = True

    def call(self, inputs, training=None, mask=None):
        if mask is not None and mask.dim() != inputs.dim() - 1:
            raise ValueError(
                f"BatchNormalization layer '{self.name}': the mask must have one dimension less "
                f"than the inputs. Received: mask.shape={tuple(mask.shape)}, "
                f"inputs.shape={tuple(inputs.shape)}"
            )
        x = inputs
        # Keras opts half-precision inputs out of BN: statistics overflow in float16.
        if x.dtype in _LOW_PRECISION:
            x = x.float()
        axis = _positive_axis(self.name, self.axis, x.dim())
        # Keras 3: a frozen (trainable=False) BN always runs in inference mode.
        use_batch_stats = bool(training) and self.trainable
        count = x.numel() // max(x.shape[axis], 1)
        # torch's fused kernel refuses epsilon=0 in training, which Keras allows.
        if use_batch_stats and (
            self.synchronized or mask is not None or count < 2 or self.epsilon == 0
        ):
            outputs = self._normalize_with_moments(x, axis, mask)
        else:
            outputs = self._fused(x, axis, use_batch_stats)
        return outputs.to(inputs.dtype)

    def _fused(self, x: torch.Tensor, axis: int, use_batch_stats: bool) -> torch.Tensor:
        """One fused torch batch_norm on a (N, C, ...) view; Keras's moving-stat update."""
        channels = x.shape[axis]
        flattened = axis == x.dim() - 1 and x.dim() > 2 and x.is_contiguous()
        if flattened:
            # Channels-last data of any rank is a (rows, C) matrix: a free view that torch's
            # channels-last batch_norm kernels handle without a copy.
            view = x.reshape(-1, channels)
        else:
            view = x if axis == 1 else x.movedim(axis, 1)
        if not use_batch_stats:
            out = F.batch_norm(
                view,
                self.moving_mean,
                self.moving_variance,
                self.gamma,
                self.beta,
                False,
                0.0,
                self.epsilon,
            )
        else:
            # momentum=1 makes torch write the batch statistics into these buffers; torch stores
            # the unbiased variance, Keras averages the biased one.
            batch_mean = torch.zeros(channels, dtype=x.dtype, device=x.device)
            batch_var = torch.ones(channels, dtype=x.dtype, device=x.device)
            out = F.batch_norm(
                view, batch_mean, batch_var, self.gamma, self.beta, True, 1.0, self.epsilon
            )
            count = view.numel() // channels
            with torch.no_grad():
                # Out of place: autograd saved batch_var for the backward pass.
                self._update_moving(batch_mean, batch_var * ((count - 1) / count))
        if flattened:
            return out.view(x.shape)
        return out if axis == 1 else out.movedim(1, axis)

    def _normalize_with_moments(self, x, axis: int, mask) -> torch.Tensor:
        if x.numel() == 0 and self._sync_communicator() is None:
            # A worker may hold no sample of a small last global batch: its statistics
            # would be NaN, and poison the moving averages and (through the gradient
            # all-reduce) every worker's weights. Nothing to normalize or learn here.
            return x.clone()
        reduce_dims = [d for d in range(x.dim()) if d != axis]
        if mask is None:
            mean, var = self._batch_moments(x, reduce_dims)
        else:
            mean, var = self._masked_moments(x, mask, reduce_dims)
        with torch.no_grad():
            self._update_moving(mean.detach(), var.detach())
        inv = torch.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + self.beta
        shape = _broadcast_shape(x.dim(), [axis], [x.shape[axis]])
        return torch.addcmul(shift.view(shape), x, inv.view(shape))

    def _batch_moments(self, x: torch.Tensor, reduce_dims: list[int]):
        """Per-channel (mean, biased variance) of the batch, differentiable.

        With ``synchronized=True`` in a distributed run, the moments are those of the global
        batch (see ``_global_moments``).
        """
        comm = self._sync_communicator()
        if comm is not None:
            return self._global_moments(x, reduce_dims, comm)
        var, mean = torch.var_mean(x, dim=reduce_dims, correction=0)
        return mean, var

    def _masked_moments(self, x, mask, reduce_dims):
        # Keras: masked positions are left out of the statistics (weights 0), with its
        # epsilon 1e-7 guarding an all-masked batch.
        weights = mask.to(x.dtype).unsqueeze(-1).expand_as(x)
        comm = self._sync_communicator()
        if comm is not None:
            return self._global_moments(x, reduce_dims, comm, weights)
        count = weights.sum(reduce_dims) + 1e-7
        mean = (weights * x).sum(reduce_dims) / count
        shape = _broadcast_shape(x.dim(), [d for d in range(x.dim()) if d not in reduce_dims], [-1])
        var = (weights * (x - mean.view(shape)).square()).sum(reduce_dims) / count
        return mean, var

    def _sync_communicator(self):
        """The communicator when batch statistics must span every worker, else None."""
        if not self.synchronized:
            return None
        from distkeras import distributed

        return distributed.communicator() if distributed.world_size() > 1 else None

    @staticmethod
    def _global_moments(x: torch.Tensor, reduce_dims: list[int], comm, weights=None):
        """Moments of the batch of ALL workers, differentiable, with one all-reduce.

        Each worker contributes its (count, mean, biased variance) per channel, computed
        stably here, as its own row of a (world_size, 3, C) tensor; the all-reduce sums the
        rows into every worker's copy, and Chan's parallel formula combines them. (Summing
        raw sums of squares instead loses all precision when |mean| >> std.) The backward
        pass all-reduces the gradient of that tensor, so each worker's statistics receive
        the gradient of every worker's loss. A worker may hold no sample of a small last
        batch: it contributes a count of zero.
        """
        from distkeras.distributed.sync import all_reduce_sum_differentiable

        keep = [d for d in range(x.dim()) if d not in reduce_dims]
        channels = x.shape[keep[0]]
        shape = _broadcast_shape(x.dim(), keep, [-1])
        if weights is not None:
            count = weights.sum(reduce_dims)
            safe = count.clamp_min(1e-12)
            mean = (weights * x).sum(reduce_dims) / safe
            var = (weights * (x - mean.view(shape)).square()).sum(reduce_dims) / safe
        elif x.numel():
            count = x.new_full((channels,), float(x.numel() // channels))
            var, mean = torch.var_mean(x, dim=reduce_dims, correction=0)
        else:
            # Zeros that stay attached to x: every worker's all-reduce must be in the graph,
            # or this worker would skip the backward all-reduce the others wait in.
            count = x.new_zeros(channels)
            mean = var = x.sum(reduce_dims)
        mine = torch.stack([count, mean, var]).unsqueeze(0)
        before = x.new_zeros(comm.rank, 3, channels)
        after = x.new_zeros(comm.world_size - comm.rank - 1, 3, channels)
        rows = torch.cat([before, mine, after])
        counts, means, variances = all_reduce_sum_differentiable(rows, comm).unbind(1)
        # Keras's 1e-7 guard against an all-masked batch; an unmasked batch is never empty.
        total = counts.sum(0) + (1e-7 if weights is not None else 0.0)
        global_mean = (counts * means).sum(0) / total
        spread = variances + (means - global_mean).square()
        return global_mean, (counts * spread).sum(0) / total

    def _update_moving(self, batch_mean: torch.Tensor, batch_var: torch.Tensor) -> None:
        # moving = momentum * moving + (1 - momentum) * batch, in place and without host syncs.
        torch._foreach_lerp_(
            [self.moving_mean, self.moving_variance],
            [batch_mean.to(self.moving_mean.dtype), batch_var.to(self.moving_variance.dtype)],
            1.0 - self.momentum,
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            axis=self.axis,
            momentum=self.momentum,
            epsilon=self.epsilon,
            center=self.center,
            scale=self.scale,
            beta_initializer=initializers.serialize(self.beta_initializer),
            gamma_initializer=initializers.serialize(self.gamma_initializer),
            moving_mean_initializer=initializers.serialize(self.moving_mean_initializer),
            moving_variance_initializer=initializers.serialize(self.moving_variance_initializer),
            beta_regularizer=regularizers.serialize(self.beta_regularizer),
            gamma_regularizer=regularizers.serialize(self.gamma_regularizer),
            beta_constraint=constraints.serialize(self.beta_constraint),
            gamma_constraint=constraints.serialize(self.gamma_constraint),
            synchronized=self.synchronized,
            renorm=self.renorm,
            renorm_clipping=self.renorm_clipping,
            renorm_momentum=self.renorm_momentum,
        )
        return config
