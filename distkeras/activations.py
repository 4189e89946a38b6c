"""Activation functions, by Keras name or callable."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from distkeras.utils.serialization import get_custom_object


def linear(x):
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's generalised ReLU.

    ``x`` above ``threshold`` (clipped to ``[0, max_value]`` when ``max_value`` is set), else 0,
    minus ``negative_slope * relu(threshold - x)``; the threshold itself maps to 0, as in Keras.
    """
    if threshold == 0.0 and max_value is None:
        if negative_slope == 0.0:
            return torch.relu(x)
        return F.leaky_relu(x, negative_slope=negative_slope)
    if threshold != 0.0:
        out = x * (x > threshold).to(x.dtype)
    else:
        out = torch.relu(x)
    if max_value is not None:
        out = torch.clamp(out, 0.0, max_value)
    if negative_slope != 0.0:
        out = out - negative_slope * torch.relu(threshold - x)
    return out


def sigmoid(x):
    return torch.sigmoid(x)


def tanh(x):
    return torch.tanh(x)


def softmax(x, axis=-1):
    return torch.softmax(x, dim=axis)


def log_softmax(x, axis=-1):
    return torch.log_softmax(x, dim=axis)


def elu(x, alpha=1.0):
    return F.elu(x, alpha=alpha)


def selu(x):
    return F.selu(x)


def gelu(x, approximate=False):
    # Keras 3's activations.gelu is the exact (erf) form unless approximate=True.
    return F.gelu(x, approximate="tanh" if approximate else "none")


def silu(x):
    return F.silu(x)


swish = silu


def softplus(x):
    return F.softplus(x)


def softsign(x):
    return F.softsign(x)


def leaky_relu(x, negative_slope=0.2):
    # Keras 3's activations.leaky_relu default slope is 0.2.
    return F.leaky_relu(x, negative_slope=negative_slope)


def exponential(x):
    return torch.exp(x)


def hard_sigmoid(x):
    # Keras 3: relu6(x + 3) / 6.
    return torch.clamp(x / 6.0 + 0.5, 0.0, 1.0)


def hard_silu(x):
    return x * hard_sigmoid(x)


hard_swish = hard_silu


def relu6(x):
    return torch.clamp(x, 0.0, 6.0)


def mish(x):
    return F.mish(x)


def celu(x, alpha=1.0):
    return F.celu(x, alpha=alpha)


def glu(x, axis=-1):
    return F.glu(x, dim=axis)


def hard_tanh(x):
    return torch.clamp(x, -1.0, 1.0)


def hard_shrink(x, threshold=0.5):
    return F.hardshrink(x, lambd=threshold)


def soft_shrink(x, threshold=0.5):
    return F.softshrink(x, lambd=threshold)


def tanh_shrink(x):
    return x - torch.tanh(x)


def threshold(x, threshold, default_value):
    """``x`` where ``x > threshold``, else ``default_value``."""
    return F.threshold(x, threshold, default_value)


def log_sigmoid(x):
    return F.logsigmoid(x)


def sparse_sigmoid(x):
    return torch.clamp(0.5 * (x + 1.0), 0.0, 1.0)


def sparse_plus(x):
    # 0 below -1, x above 1, and the quadratic (x + 1)^2 / 4 joining them smoothly.
    return torch.where(x <= -1.0, torch.zeros_like(x), torch.where(x < 1.0, 0.25 * (x + 1) ** 2, x))


def squareplus(x, b=4):
    return 0.5 * (x + torch.sqrt(x * x + b))


def sparsemax(x, axis=-1):
    """Euclidean projection of ``x`` onto the probability simplex along ``axis``."""
    x = x.movedim(axis, -1)
    ranked, _ = torch.sort(x, dim=-1, descending=True)
    k = torch.arange(1, x.shape[-1] + 1, device=x.device, dtype=x.dtype)
    cumulative = ranked.cumsum(-1)
    support = (1.0 + k * ranked > cumulative).to(x.dtype)
    size = support.sum(-1, keepdim=True)
    tau = ((ranked * support).sum(-1, keepdim=True) - 1.0) / size
    return torch.clamp(x - tau, min=0.0).movedim(-1, axis)


_ACTIVATIONS: dict[str, Callable] = {
    "linear": linear,
    "relu": relu,
    "relu6": relu6,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "elu": elu,
    "selu": selu,
    "gelu": gelu,
    "swish": silu,
    "silu": silu,
    "softplus": softplus,
    "softsign": softsign,
    "leaky_relu": leaky_relu,
    "exponential": exponential,
    "hard_sigmoid": hard_sigmoid,
    "hard_silu": hard_silu,
    "hard_swish": hard_silu,
    "mish": mish,
    "celu": celu,
    "glu": glu,
    "hard_tanh": hard_tanh,
    "hard_shrink": hard_shrink,
    "soft_shrink": soft_shrink,
    "tanh_shrink": tanh_shrink,
    "threshold": threshold,
    "log_sigmoid": log_sigmoid,
    "sparse_sigmoid": sparse_sigmoid,
    "sparse_plus": sparse_plus,
    "squareplus": squareplus,
    "sparsemax": sparsemax,
}


def apply(fn: Callable, x):
    """``fn(x)``; a softmax or sigmoid output also keeps ``x`` as ``_keras_logits``.

    Crossentropy losses on probabilities then compute from the logits with one fused, stable
    kernel instead of normalise-clip-log (as Keras's TensorFlow backend does).
    """
    out = fn(x)
    if fn is softmax:
        out._keras_logits = ("softmax", x)
    elif fn is sigmoid:
        out._keras_logits = ("sigmoid", x)
    return out


def get(identifier) -> Callable:
    """Resolves an activation name, None (linear) or callable.

    Example:
        >>> distkeras.activations.get("relu")(torch.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        fn = _ACTIVATIONS.get(identifier) or get_custom_object(identifier)
        if fn is None:
            raise ValueError(
                f"Unknown activation. Expected one of {sorted(_ACTIVATIONS)} or a callable. "
                f"Received: activation={identifier!r}"
            )
        return fn
    if isinstance(identifier, dict) and "class_name" in identifier:
        # Keras 3 writes a function as {"class_name": "function", "config": "<name>", ...}.
        config = identifier.get("config")
        if isinstance(config, str):
            return get(config)
        if isinstance(config, dict) and "name" in config:
            return get(config["name"])
        return get(identifier["class_name"])
    if callable(identifier):
        return identifier
    raise ValueError(
        f"Could not interpret activation. Expected a name or a callable. "
        f"Received: activation={identifier!r}"
    )


def serialize(fn: Callable) -> str:
    """The name a config stores for an activation."""
    for name, value in _ACTIVATIONS.items():
        if value is fn:
            return "silu" if name == "swish" else name
    # A custom callable is stored by name; loading needs it in custom_objects.
    return getattr(fn, "__name__", repr(fn))


def deserialize(name):
    return get(name)
