"""The activation functions of ``keras.ops.nn``: elementwise maps and softmax-likes.

Each converts its input as Keras does and runs torch's own kernel, so dtypes follow torch's
(e.g. ``sigmoid`` of an int tensor is float32, ``relu`` of one stays int), as on Keras's torch
backend.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distkeras import activations as _act
from distkeras.ops.dispatch import keras_op
from distkeras.ops.nn_util import to_tensor

__all__ = [
    "celu",
    "elu",
    "gelu",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "log_sigmoid",
    "log_softmax",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "swish",
    "tanh_shrink",
    "threshold",
]


@keras_op("nn")
def relu(x):
    return F.relu(to_tensor(x))


@keras_op("nn")
def relu6(x):
    return F.relu6(to_tensor(x))


@keras_op("nn")
def sigmoid(x):
    return torch.sigmoid(to_tensor(x))


@keras_op("nn")
def sparse_sigmoid(x):
    x = to_tensor(x)
    # Integer thresholds, as Keras compares (this decides uint8 inputs).
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return torch.where(x <= -1, zero, torch.where(x >= 1, one, 0.5 * (x + 1)))


@keras_op("nn")
def tanh_shrink(x):
    return F.tanhshrink(to_tensor(x))


@keras_op("nn")
def softplus(x):
    return F.softplus(to_tensor(x))


@keras_op("nn")
def softsign(x):
    return F.softsign(to_tensor(x))


@keras_op("nn")
def soft_shrink(x, threshold=0.5):
    return F.softshrink(to_tensor(x), lambd=threshold)


@keras_op("nn")
def sparse_plus(x):
    x = to_tensor(x)
    return torch.where(x <= -1, torch.zeros_like(x), torch.where(x < 1, 0.25 * (x + 1) ** 2, x))


@keras_op("nn")
def silu(x):
    return F.silu(to_tensor(x))


@keras_op("nn")
def swish(x):
    return F.silu(to_tensor(x))


@keras_op("nn")
def squareplus(x, b=4):
    x = to_tensor(x)
    return (x + torch.sqrt(x * x + to_tensor(b))) / 2


@keras_op("nn")
def log_sigmoid(x):
    return F.logsigmoid(to_tensor(x))


@keras_op("nn")
def leaky_relu(x, negative_slope=0.2):
    return F.leaky_relu(to_tensor(x), negative_slope=negative_slope)


@keras_op("nn")
def hard_sigmoid(x):
    return F.hardsigmoid(to_tensor(x))


@keras_op("nn")
def hard_silu(x):
    return F.hardswish(to_tensor(x))


@keras_op("nn")
def hard_swish(x):
    return F.hardswish(to_tensor(x))


@keras_op("nn")
def elu(x, alpha=1.0):
    return F.elu(to_tensor(x), alpha)


@keras_op("nn")
def selu(x):
    return F.selu(to_tensor(x))


@keras_op("nn")
def gelu(x, approximate=True):
    # keras.ops.nn.gelu defaults to the tanh approximation (the layer activation does not).
    return F.gelu(to_tensor(x), approximate="tanh" if approximate else "none")


@keras_op("nn")
def celu(x, alpha=1.0):
    return F.celu(to_tensor(x), alpha=alpha)


@keras_op("nn")
def glu(x, axis=-1):
    x = to_tensor(x)
    if x.shape[axis] % 2:
        raise ValueError(
            f"axis size must be divisible by 2. Received: x.shape={tuple(x.shape)} with axis={axis}"
        )
    return F.glu(x, dim=axis)


@keras_op("nn")
def hard_tanh(x):
    return F.hardtanh(to_tensor(x), -1.0, 1.0)


@keras_op("nn")
def hard_shrink(x, threshold=0.5):
    return F.hardshrink(to_tensor(x), lambd=threshold)


@keras_op("nn")
def threshold(x, threshold, default_value):
    return F.threshold(to_tensor(x), threshold, default_value)


def _over_axes(fn, x: torch.Tensor, axis):
    """``fn(x, dim=-1)`` applied jointly over ``axis`` (an int, a tuple of ints, or None)."""
    half = x.dtype == torch.float16 and x.device.type == "cpu"
    dtype = x.dtype
    if half:  # torch's CPU softmax kernels lack float16
        x = x.float()
    if axis is None:
        out = fn(x.reshape(-1), dim=-1).reshape(x.shape)
    elif isinstance(axis, (tuple, list)):
        axes = [a % x.ndim for a in axis]
        keep = [d for d in range(x.ndim) if d not in axes]
        moved = x.permute(*keep, *axes)
        out = fn(moved.reshape(*moved.shape[: len(keep)], -1), dim=-1).reshape(moved.shape)
        order = keep + axes
        out = out.permute(*sorted(range(x.ndim), key=order.__getitem__))
    else:
        out = fn(x, dim=axis)
    return out.to(dtype) if half else out


@keras_op("nn")
def softmax(x, axis=-1):
    return _over_axes(F.softmax, to_tensor(x), axis)


@keras_op("nn")
def log_softmax(x, axis=-1):
    return _over_axes(F.log_softmax, to_tensor(x), axis)


@keras_op("nn")
def sparsemax(x, axis=-1):
    return _act.sparsemax(to_tensor(x), axis=axis)
