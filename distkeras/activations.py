"""Activation functions, by Keras name or callable."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from distkeras.utils.serialization import get_custom_object


def linear(x):
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return torch.relu(x)
    out = torch.where(x >= threshold, x, negative_slope * (x - threshold))
    if max_value is not None:
        out = torch.clamp(out, max=max_value)
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


def gelu(x, approximate=True):
    # Keras's gelu defaults to the tanh approximation.
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


def relu6(x):
    return torch.clamp(x, 0.0, 6.0)


def mish(x):
    return F.mish(x)


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
        return get(identifier.get("config", {}).get("name", identifier["class_name"]))
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
