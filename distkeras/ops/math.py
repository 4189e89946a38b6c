"""Keras's math ops (``keras.ops`` top level): erf, fft, segment reductions, top_k, stft, ...

Complex results follow Keras: the FFT family takes and returns ``(real, imag)`` pairs of float
tensors, while ``view_as_complex`` / ``view_as_real`` convert between those and complex64.
"""

from __future__ import annotations

import math as _math

import torch
import torch.nn.functional as F

from distkeras.ops.dispatch import keras_op
from distkeras.ops.nn_util import to_tensor

__all__ = [
    "cdist",
    "erf",
    "erfc",
    "erfinv",
    "extract_sequences",
    "fft",
    "fft2",
    "ifft2",
    "in_top_k",
    "irfft",
    "istft",
    "logdet",
    "logsumexp",
    "rfft",
    "rsqrt",
    "segment_max",
    "segment_min",
    "segment_prod",
    "segment_sum",
    "stft",
    "top_k",
    "view_as_complex",
    "view_as_real",
]

_SEGMENT_INIT = {"sum": 0.0, "prod": 1.0, "amax": float("-inf"), "amin": float("inf")}


def _segment(data, segment_ids, num_segments, reduction):
    data, ids = to_tensor(data), to_tensor(segment_ids)
    if ids.ndim != 1:
        raise ValueError(
            f"Argument `segment_ids` should be an 1-D vector, got shape: {tuple(ids.shape)}."
        )
    if ids.shape[0] != data.shape[0]:
        raise ValueError(
            "Argument `segment_ids` and `data` should have same leading dimension. "
            f"Got {tuple(ids.shape)} v.s. {tuple(data.shape)}."
        )
    ids = ids.to(torch.int64)
    if num_segments is None:
        num_segments = int(ids.max()) + 1  # data-dependent: a host sync, as in Keras
    # Ids outside [0, num_segments) go to one extra row, dropped at the end.
    ids = torch.where((ids >= 0) & (ids < num_segments), ids, num_segments)
    ids = ids.reshape(-1, *([1] * (data.ndim - 1))).expand(data.shape)
    compute = data.dtype if data.is_floating_point() else torch.float32
    out = torch.full(
        (num_segments + 1, *data.shape[1:]),
        _SEGMENT_INIT[reduction],
        dtype=compute,
        device=data.device,
    )
    out = out.scatter_reduce(0, ids, data.to(compute), reduction)
    return out[:-1].to(data.dtype)


@keras_op("math")
def segment_sum(data, segment_ids, num_segments=None, sorted=False):
    return _segment(data, segment_ids, num_segments, "sum")


@keras_op("math")
def segment_max(data, segment_ids, num_segments=None, sorted=False):
    return _segment(data, segment_ids, num_segments, "amax")


@keras_op("math")
def segment_min(data, segment_ids, num_segments=None, sorted=False):
    return _segment(data, segment_ids, num_segments, "amin")


@keras_op("math")
def segment_prod(data, segment_ids, num_segments=None, sorted=False):
    return _segment(data, segment_ids, num_segments, "prod")


@keras_op("math")
def top_k(x, k, sorted=True):
    return torch.topk(to_tensor(x), k, sorted=sorted)


@keras_op("math")
def in_top_k(targets, predictions, k):
    targets = to_tensor(targets).to(torch.int64)[:, None]
    predictions = to_tensor(predictions)
    kth = torch.topk(predictions, k).values
    # Ties with the k-th value count as in the top k.
    return torch.any(torch.take_along_dim(predictions, targets, dim=-1) >= kth, dim=-1)


@keras_op("math")
def logsumexp(x, axis=None, keepdims=False):
    x = to_tensor(x)
    axis = tuple(range(x.ndim)) if axis is None else axis
    return torch.logsumexp(x, dim=axis, keepdim=keepdims)


@keras_op("math")
def cdist(x, y):
    x, y = to_tensor(x), to_tensor(y)
    if x.ndim < 2 or y.ndim < 2:
        raise ValueError("`cdist` inputs must have rank >= 2")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError("Last dimension of inputs to `cdist` must match")
    diff = x.unsqueeze(-2) - y.unsqueeze(-3)
    return torch.sqrt((diff * diff).sum(dim=-1))


@keras_op("math")
def extract_sequences(x, sequence_length, sequence_stride):
    return to_tensor(x).unfold(-1, sequence_length, sequence_stride).clone()


def _complex(x, op: str) -> torch.Tensor:
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ValueError(
            f"`{op}` expects a tuple of two tensors: real and imaginary. Received: x={x!r:.200}"
        )
    real, imag = to_tensor(x[0]), to_tensor(x[1])
    if real.shape != imag.shape:
        raise ValueError(
            f"`{op}`: the real and imaginary parts must have the same shape. Received: "
            f"x[0].shape={tuple(real.shape)}, x[1].shape={tuple(imag.shape)}"
        )
    if not (real.is_floating_point() and imag.is_floating_point()):
        raise ValueError(f"`{op}`: both parts must be float tensors. Received: x={x!r:.200}")
    return torch.complex(real, imag)


def _pair(z: torch.Tensor):
    return z.real, z.imag


@keras_op("math")
def fft(x):
    return _pair(torch.fft.fft(_complex(x, "fft")))


@keras_op("math")
def fft2(x):
    return _pair(torch.fft.fft2(_complex(x, "fft2")))


@keras_op("math")
def ifft2(x):
    return _pair(torch.fft.ifft2(_complex(x, "ifft2")))


@keras_op("math")
def rfft(x, fft_length=None):
    return _pair(torch.fft.rfft(to_tensor(x), n=fft_length, dim=-1))


@keras_op("math")
def irfft(x, fft_length=None):
    return torch.fft.irfft(_complex(x, "irfft"), n=fft_length, dim=-1)


def _window(window, sequence_length, dtype, device):
    if window is None:
        return None
    if isinstance(window, str):
        if window not in ("hann", "hamming"):
            raise ValueError(
                'If a string is passed to `window`, it must be one of "hann", "hamming". '
                f"Received: window={window!r}"
            )
        make = torch.hann_window if window == "hann" else torch.hamming_window
        return make(sequence_length, periodic=True, dtype=dtype, device=device)
    win = to_tensor(window, dtype)
    if win.ndim != 1 or win.shape[-1] != sequence_length:
        raise ValueError(
            "The shape of `window` must be equal to [sequence_length]. "
            f"Received: window shape={tuple(win.shape)}"
        )
    return win


def _check_stride(sequence_stride):
    if not isinstance(sequence_stride, int) or sequence_stride <= 0:
        raise ValueError(
            "`sequence_stride` must be a positive integer. "
            f"Received: sequence_stride={sequence_stride!r}"
        )


@keras_op("math")
def stft(x, sequence_length, sequence_stride, fft_length, window="hann", center=True):
    _check_stride(sequence_stride)
    x = to_tensor(x)
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"Invalid input type. Expected float32 or float64. Received: {x.dtype}")
    if fft_length < sequence_length:
        raise ValueError(
            "`fft_length` must equal or larger than `sequence_length`. Received: "
            f"sequence_length={sequence_length}, fft_length={fft_length}"
        )
    win = _window(window, sequence_length, x.dtype, x.device)
    if win is None:
        win = torch.ones(sequence_length, dtype=x.dtype, device=x.device)
    *batch, samples = x.shape
    z = torch.stft(
        x.reshape(-1, samples),
        n_fft=fft_length,
        hop_length=sequence_stride,
        win_length=sequence_length,
        window=win,
        center=center,
        return_complex=True,
    )
    z = z.reshape(*batch, *z.shape[-2:]).transpose(-2, -1)  # (..., frames, bins)
    return z.real, z.imag


def _overlap_add(frames: torch.Tensor, stride: int) -> torch.Tensor:
    """Sums frames (..., n, length) placed ``stride`` apart into one signal."""
    *batch, n, length = frames.shape
    if stride > length:
        raise ValueError(
            "`sequence_stride` must equal or less than x.shape[-1]. "
            f"Received: sequence_stride={stride}, x.shape[-1]={length}"
        )
    if stride < length / n:
        raise ValueError(
            "`sequence_stride` must equal or greater than x.shape[-1] / x.shape[-2]. "
            f"Received: sequence_stride={stride}, x.shape[-1]={length}, x.shape[-2]={n}"
        )
    size = stride * (n - 1) + length
    flat = frames.reshape(_math.prod(batch), n, length).transpose(1, 2)
    out = F.fold(flat, (1, size), (1, length), stride=(1, stride))
    return out.reshape(*batch, size)


@keras_op("math")
def istft(x, sequence_length, sequence_stride, fft_length, length=None, window="hann", center=True):
    _check_stride(sequence_stride)
    z = _complex(x, "istft")
    dtype = z.real.dtype
    win = _window(window, sequence_length, dtype, z.device)
    if sequence_length == fft_length and center and win is not None:
        *batch, frames, bins = z.shape
        out = torch.istft(
            z.reshape(-1, frames, bins).transpose(-2, -1),
            n_fft=fft_length,
            hop_length=sequence_stride,
            win_length=sequence_length,
            window=win,
            center=center,
            length=length,
            return_complex=False,
        )
        return out.reshape(*batch, out.shape[-1])
    frames = torch.fft.irfft(z, n=fft_length, dim=-1)
    expected = fft_length + sequence_stride * (frames.shape[-2] - 1)
    if win is not None:
        # The window, zero-padded to fft_length, divided by the overlapping sum of its
        # squares, so that overlap-add inverts a windowed stft.
        left = (fft_length - sequence_length) // 2
        win = F.pad(win, (left, fft_length - sequence_length - left))
        overlaps = -(-fft_length // sequence_stride)
        squares = F.pad(win * win, (0, overlaps * sequence_stride - fft_length))
        denom = squares.reshape(overlaps, sequence_stride).sum(0).repeat(overlaps)
        frames = frames * (win / denom[:fft_length])
    out = _overlap_add(frames, sequence_stride)
    start = fft_length // 2 if center else 0
    if length is not None:
        end = start + length
    elif center:
        end = -(fft_length // 2)
    else:
        end = expected
    return out[..., start:end]


@keras_op("math")
def rsqrt(x):
    return torch.rsqrt(to_tensor(x))


@keras_op("math")
def erf(x):
    return torch.erf(to_tensor(x))


@keras_op("math")
def erfc(x):
    return torch.erfc(to_tensor(x))


@keras_op("math")
def erfinv(x):
    return torch.erfinv(to_tensor(x))


@keras_op("math")
def logdet(x):
    return torch.logdet(to_tensor(x))


@keras_op("math")
def view_as_complex(x):
    x = to_tensor(x)
    if x.ndim < 1 or x.shape[-1] != 2:
        raise ValueError(
            "Last dimension of input must be size 2 (real and imaginary). "
            f"Received shape: {tuple(x.shape)}"
        )
    # Keras always builds complex64, whatever the float width.
    return torch.complex(x[..., 0].to(torch.float32), x[..., 1].to(torch.float32))


@keras_op("math")
def view_as_real(x):
    x = to_tensor(x)
    if not x.is_complex():
        raise ValueError(f"`view_as_real` expects a complex tensor. Received: dtype={x.dtype}")
    return torch.stack((x.real, x.imag), dim=-1)
