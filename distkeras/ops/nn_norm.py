"""Statistics, normalizations, attention and ``polar`` of ``keras.ops.nn``."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from distkeras.ops.dispatch import keras_op
from distkeras.ops.nn_losses import EPSILON
from distkeras.ops.nn_util import result_float, to_tensor

__all__ = [
    "batch_normalization",
    "dot_product_attention",
    "layer_normalization",
    "moments",
    "normalize",
    "polar",
    "rms_normalization",
]


def _axes(axis, ndim: int) -> list[int]:
    axes = [axis] if isinstance(axis, int) else list(axis)
    return sorted(a % ndim for a in axes)


@keras_op("nn")
def moments(x, axes, keepdims=False, synchronized=False):
    if synchronized:
        raise NotImplementedError(
            "moments(synchronized=True): cross-replica statistics are not supported; "
            "distkeras all-reduces gradients, not activations."
        )
    x = to_tensor(x)
    dtype = x.dtype
    if dtype == torch.float16:  # float16's range is too small for the statistics
        x = x.float()
    dims = _axes(axes, x.ndim)
    mean = x.mean(dim=dims, keepdim=True)
    # E[x^2] - E[x]^2, as Keras computes it.
    variance = (x * x).mean(dim=dims, keepdim=True) - mean * mean
    if not keepdims:
        mean, variance = mean.squeeze(dims), variance.squeeze(dims)
    if dtype == torch.float16:
        limit = torch.finfo(torch.float16).max
        mean = mean.clamp(-limit, limit).to(dtype)
        variance = variance.clamp(-limit, limit).to(dtype)
    return mean, variance


@keras_op("nn")
def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3):
    x, mean, variance = to_tensor(x), to_tensor(mean), to_tensor(variance)
    shape = [1] * x.ndim
    shape[axis] = mean.shape[0]
    mean, variance = mean.reshape(shape), variance.reshape(shape)
    factor = torch.rsqrt(variance + epsilon)
    if scale is not None:
        factor = factor * to_tensor(scale).reshape(shape)
    out = (x - mean) * factor
    if offset is not None:
        out = out + to_tensor(offset).reshape(shape)
    return out


def _trailing(dims: list[int], ndim: int) -> bool:
    return dims == list(range(ndim - len(dims), ndim))


def _broadcastable(v, x, dims):
    """A gamma/beta/scale of the normalized axes' shape, broadcast against ``x``."""
    if v is None or v.ndim == x.ndim:
        return v
    shape = [1] * x.ndim
    for d in dims:
        shape[d] = x.shape[d]
    return v.reshape(shape)


@keras_op("nn")
def layer_normalization(x, gamma=None, beta=None, axis=-1, epsilon=None, **kwargs):
    rms_scaling = kwargs.pop("rms_scaling", False)
    if rms_scaling:
        warnings.warn(
            "You passed `rms_scaling=True`, which is deprecated: it scales the input by the "
            "variance, not the root mean square. Use `ops.rms_normalization` instead.",
            stacklevel=3,  # the caller of the public op, past the dispatch wrapper
        )
    if kwargs:
        raise TypeError(f"layer_normalization got unexpected keyword arguments: {sorted(kwargs)}")
    epsilon = EPSILON if epsilon is None else epsilon
    x = to_tensor(x)
    original = x.dtype
    x = x.to(result_float(x.dtype, torch.float32))
    gamma = None if gamma is None else to_tensor(gamma, x.dtype)
    beta = None if beta is None else to_tensor(beta, x.dtype)
    dims = _axes(axis, x.ndim)
    if rms_scaling:  # Keras's deprecated form: scales by the variance, not the RMS
        out = x * torch.rsqrt(x.var(dim=dims, keepdim=True, unbiased=False) + epsilon)
        if gamma is not None:
            out = out * _broadcastable(gamma, x, dims)
    elif _trailing(dims, x.ndim) and (gamma is None or gamma.ndim <= len(dims)):
        shape = tuple(x.shape[d] for d in dims)
        gamma = None if gamma is None else gamma.reshape(shape)
        beta = None if beta is None else beta.reshape(shape)
        out = F.layer_norm(x, shape, gamma, beta, epsilon)
    else:
        mean, variance = moments.eager(x, dims, keepdims=True)
        inv = torch.rsqrt(variance + epsilon)
        if gamma is not None:
            inv = inv * _broadcastable(gamma, x, dims)
        res = -mean * inv
        if beta is not None:
            res = res + _broadcastable(beta, x, dims)
        out = x * inv + res
    return out.to(original)


@keras_op("nn")
def rms_normalization(x, scale=None, axis=-1, epsilon=None):
    epsilon = EPSILON if epsilon is None else epsilon
    x = to_tensor(x)
    original = x.dtype
    x = x.to(result_float(x.dtype, torch.float32))
    scale = None if scale is None else to_tensor(scale, x.dtype)
    if x.ndim == 0:
        x = x.reshape(1)
    dims = _axes(axis, x.ndim)
    if _trailing(dims, x.ndim) and (scale is None or scale.ndim <= len(dims)):
        shape = tuple(x.shape[d] for d in dims)
        out = F.rms_norm(x, shape, None if scale is None else scale.reshape(shape), epsilon)
    else:
        out = x * torch.rsqrt((x * x).mean(dim=dims, keepdim=True) + epsilon)
        if scale is not None:
            out = out * _broadcastable(scale, x, dims)
    return out.to(original)


@keras_op("nn")
def normalize(x, axis=-1, order=2, epsilon=None):
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"Argument `order` must be an int >= 1. Received: order={order}")
    x = to_tensor(x)
    if x.ndim == 0:
        x = x.reshape(1)
    epsilon = EPSILON if epsilon is None else epsilon
    if order == 2:
        inv_norm = torch.rsqrt((x * x).sum(dim=axis, keepdim=True))
        # 1/epsilon overflows float16 to inf, which then caps nothing (as in Keras).
        cap = torch.tensor(1.0 / epsilon).to(inv_norm.dtype)
        return x * torch.minimum(inv_norm, cap.to(inv_norm.device))
    norm = torch.linalg.norm(x, ord=order, dim=axis, keepdim=True)
    return x / torch.clamp(norm, min=epsilon)


def _large_negative(dtype: torch.dtype) -> float:
    # A finite "minus infinity" so fully masked rows stay NaN-free (Keras's value).
    return -0.7 * (65500.0 if dtype == torch.float16 else 3.38953e38)


@keras_op("nn")
def dot_product_attention(
    query,
    key,
    value,
    bias=None,
    mask=None,
    scale=None,
    is_causal=False,
    flash_attention=None,
    attn_logits_soft_cap=None,
):
    if attn_logits_soft_cap is not None:
        raise ValueError(
            "attn_logits_soft_cap is only supported for JAX on TPU. Set attn_logits_soft_cap=None."
        )
    q, k, v = to_tensor(query), to_tensor(key), to_tensor(value)
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(
            "`dot_product_attention` only supports 4D inputs. Received: "
            f"query.shape={tuple(q.shape)}, key.shape={tuple(k.shape)}, "
            f"value.shape={tuple(v.shape)}."
        )
    if bias is not None and mask is not None:
        raise ValueError("Only one of `bias` and `mask` can be provided. Received both.")
    dtype = torch.promote_types(torch.promote_types(q.dtype, k.dtype), v.dtype)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    attn_mask = None
    if mask is not None:
        mask = to_tensor(mask, "bool")
        if is_causal:
            causal = torch.ones((q.shape[1], k.shape[1]), dtype=torch.bool, device=mask.device)
            mask = mask & causal.tril()
            is_causal = False
        zero = torch.zeros((), dtype=dtype, device=q.device)
        attn_mask = torch.where(mask, zero, _large_negative(dtype))
    if bias is not None:
        attn_mask = to_tensor(bias, dtype)
    # (B, T, H, D) -> torch's (B, H, T, D).
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    heads, kv_heads = q.shape[1], k.shape[1]
    if heads > kv_heads > 1:  # grouped-query attention
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        v = v.repeat_interleave(heads // kv_heads, dim=1)
    args = dict(attn_mask=attn_mask, is_causal=is_causal, scale=scale)
    if flash_attention:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(backends=[SDPBackend.FLASH_ATTENTION]):
            out = F.scaled_dot_product_attention(q, k, v, **args)
    else:
        out = F.scaled_dot_product_attention(q, k, v, **args)
    return out.transpose(1, 2)


@keras_op("nn")
def polar(abs_, angle):
    abs_, angle = to_tensor(abs_), to_tensor(angle)
    real, imag = abs_ * torch.cos(angle), abs_ * torch.sin(angle)
    if real.shape != imag.shape:
        raise ValueError(
            "`abs_` and `angle` must have the same shape. Received: "
            f"abs_.shape={tuple(abs_.shape)}, angle.shape={tuple(angle.shape)}"
        )
    return torch.complex(real, imag)
