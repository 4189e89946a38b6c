"""Inputs for Keras's math ops (``keras.ops`` top level), compared by ``test_math_sweep.py``."""

from __future__ import annotations

import numpy as np

from tests.ops.keras_reference import Case

rng = np.random.default_rng(99)


def f32(*shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape).astype("float32")


def op(name, *args, label="", atol=1e-5, **kwargs):
    return Case(name, args, kwargs, atol=atol, label=label)


X = f32(3, 4)
SEG_DATA = f32(6, 3)
SEG_IDS = np.array([0, 0, 1, 3, 3, 3], dtype="int32")
SIGNAL = f32(2, 64)
SPEC = f32(2, 7, 9)  # (batch, frames, fft_length // 2 + 1)

CASES: list[Case] = [
    op("erf", X),
    op("erf", np.array([-1, 0, 2], "int32"), label="int32"),
    op("erfc", X),
    op("erfinv", f32(3, 4, low=-0.99, high=0.99)),
    op("rsqrt", f32(3, 4, low=0.1, high=3.0)),
    op("rsqrt", 4.0, label="python_float"),
    op("logdet", (lambda a: a @ a.T + np.eye(4, dtype="float32"))(f32(4, 4))),
    op(
        "logdet",
        (lambda a: a @ a.transpose(0, 2, 1) + np.eye(3, dtype="float32"))(f32(2, 3, 3)),
        label="batched",
    ),
    op("logsumexp", X),
    op("logsumexp", X, axis=1, label="axis1"),
    op("logsumexp", f32(2, 3, 4), axis=(0, 2), keepdims=True, label="axes_keepdims"),
    op("cdist", f32(5, 3), f32(4, 3)),
    op("cdist", f32(2, 5, 3), f32(2, 4, 3), label="batched"),
    op("top_k", f32(3, 7), 3),
    op("top_k", f32(2, 3, 6), 2, sorted=True, label="3d"),
    op("in_top_k", np.array([0, 3, 5], "int32"), f32(3, 7), 2),
    op(
        "in_top_k",
        np.array([1, 2], "int64"),
        np.array([[0.1, 0.5, 0.5], [0.3, 0.3, 0.4]], "float32"),
        1,
        label="ties",
    ),
    op("segment_sum", SEG_DATA, SEG_IDS),
    op("segment_sum", SEG_DATA, SEG_IDS, num_segments=5, sorted=True, label="num_segments"),
    op("segment_sum", rng.integers(0, 9, size=(6,)).astype("int32"), SEG_IDS, label="int32"),
    op(
        "segment_sum",
        SEG_DATA,
        np.array([0, 2, -1, 1, 4, 1], "int32"),
        num_segments=3,
        label="out_of_range",
    ),
    op("segment_max", SEG_DATA, SEG_IDS, num_segments=4),
    op("segment_max", SEG_DATA, SEG_IDS, label="empty_segment"),
    op("segment_min", SEG_DATA, SEG_IDS, num_segments=4),
    op("segment_min", SEG_DATA, np.array([1, 0, 1, 0, 2, 2], "int32"), label="unsorted"),
    op("segment_prod", SEG_DATA, SEG_IDS, num_segments=4),
    op("segment_prod", f32(6, 2, 2), SEG_IDS, label="3d"),
    op("extract_sequences", SIGNAL, 16, 8),
    op("extract_sequences", f32(2, 3, 20), 5, 3, label="batched"),
    op("fft", (f32(3, 8), f32(3, 8))),
    op("fft2", (f32(2, 4, 6), f32(2, 4, 6))),
    op("ifft2", (f32(2, 4, 6), f32(2, 4, 6))),
    op("rfft", SIGNAL),
    op("rfft", SIGNAL, fft_length=32, label="fft_length"),
    op("irfft", (f32(2, 9), f32(2, 9))),
    op("irfft", (f32(2, 9), f32(2, 9)), fft_length=20, label="fft_length"),
    op("stft", SIGNAL, 16, 8, 16),
    op("stft", SIGNAL, 10, 4, 16, window="hamming", center=False, label="hamming"),
    op("stft", f32(2, 3, 40), 8, 4, 8, window=None, label="batched_no_window"),
    op("stft", SIGNAL, 8, 4, 8, window=rng.uniform(size=8).astype("float32"), label="window_array"),
    op("istft", (SPEC, SPEC[::-1].copy()), 16, 8, 16, atol=1e-4),
    op("istft", (SPEC, SPEC[::-1].copy()), 16, 8, 16, length=40, label="length", atol=1e-4),
    op("istft", (SPEC, SPEC[::-1].copy()), 12, 4, 16, center=False, label="overlap_add", atol=1e-4),
    op(
        "istft",
        (SPEC, SPEC[::-1].copy()),
        16,
        8,
        16,
        window="hamming",
        center=False,
        label="hamming",
        atol=1e-4,
    ),
    op("istft", (SPEC, SPEC[::-1].copy()), 16, 5, 16, window=None, label="no_window", atol=1e-4),
    op("view_as_complex", f32(3, 4, 2)),
    op("view_as_complex", f32(5, 2).astype("float64"), label="float64"),
    op("view_as_real", (f32(3, 4) + 1j * f32(3, 4)).astype("complex64")),
]
