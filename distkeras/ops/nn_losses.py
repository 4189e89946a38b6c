"""Crossentropies, CTC, one-hot encodings and PSNR of ``keras.ops.nn``.

Crossentropy on probabilities follows Keras: categorical outputs are renormalised along the
class axis, then clipped to ``[epsilon, 1 - epsilon]`` (epsilon 1e-7) before the log.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distkeras import backend
from distkeras.ops.dispatch import keras_op
from distkeras.ops.nn_util import result_float, to_tensor

__all__ = [
    "binary_crossentropy",
    "categorical_crossentropy",
    "ctc_decode",
    "ctc_loss",
    "multi_hot",
    "one_hot",
    "psnr",
    "sparse_categorical_crossentropy",
]

EPSILON = 1e-7  # keras.config.epsilon()


def _dtype_or_floatx(dtype) -> torch.dtype:
    return backend.standardize_dtype(dtype if dtype is not None else backend.floatx())


@keras_op("nn")
def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    if sparse:
        raise ValueError("Unsupported value `sparse=True`: distkeras has no sparse tensors.")
    x = to_tensor(x, "int64")
    # Negative ids encode as all zeros (torch's one_hot rejects them).
    out = F.one_hot(x.clamp(min=0), num_classes) * (x >= 0).unsqueeze(-1)
    out = out.to(_dtype_or_floatx(dtype))
    if axis != -1 and axis != out.ndim - 1:
        out = out.movedim(-1, axis)
    return out


@keras_op("nn")
def multi_hot(inputs, num_classes=None, axis=-1, dtype=None, sparse=False, **kwargs):
    if num_classes is None and "num_tokens" in kwargs:
        num_classes = kwargs.pop("num_tokens")
    if kwargs:
        raise TypeError(f"multi_hot got unexpected keyword arguments: {sorted(kwargs)}")
    if num_classes is None:
        raise ValueError("Argument `num_classes` must be specified.")
    x = to_tensor(inputs)
    encoded = one_hot.eager(x.to(torch.int32), num_classes, axis=axis, dtype=dtype, sparse=sparse)
    return torch.amax(encoded, dim=1 if x.ndim > 1 else 0)


def _check_same_shape(target, output):
    if target.shape != output.shape:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. Received: "
            f"target.shape={tuple(target.shape)}, output.shape={tuple(output.shape)}"
        )


@keras_op("nn")
def binary_crossentropy(target, output, from_logits=False):
    target, output = to_tensor(target), to_tensor(output)
    _check_same_shape(target, output)
    if from_logits:
        return F.binary_cross_entropy_with_logits(output, target, reduction="none")
    output = torch.clip(output, EPSILON, 1.0 - EPSILON)
    return F.binary_cross_entropy(output, target, reduction="none")


@keras_op("nn")
def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    target, output = to_tensor(target), to_tensor(output)
    _check_same_shape(target, output)
    if target.ndim < 1:
        raise ValueError(
            "Arguments `target` and `output` must be at least rank 1. Received: "
            f"target.shape={tuple(target.shape)}, output.shape={tuple(output.shape)}"
        )
    if from_logits:
        log_prob = F.log_softmax(output, dim=axis)
    else:
        output = output / output.sum(dim=axis, keepdim=True)
        log_prob = torch.log(torch.clip(output, EPSILON, 1.0 - EPSILON))
    return -(target * log_prob).sum(dim=axis)


@keras_op("nn")
def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    target, output = to_tensor(target, "int64"), to_tensor(output)
    if output.ndim < 1:
        raise ValueError(
            f"Argument `output` must be at least rank 1. Received: output.shape={output.shape}"
        )
    if target.ndim == output.ndim and target.shape[axis] == 1:
        target = target.squeeze(axis)
    expected = list(output.shape)
    del expected[axis]
    if list(target.shape) != expected:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape up until the last "
            f"dimension: target.shape={tuple(target.shape)}, output.shape={tuple(output.shape)}"
        )
    # torch's fused kernels take classes on axis 1 and never build a one-hot matrix.
    squeeze = output.ndim == 1
    if squeeze:
        output, target = output.unsqueeze(0), target.unsqueeze(0)
    else:
        output = output.movedim(axis % output.ndim, 1)
    if from_logits:
        result = F.cross_entropy(output, target, reduction="none")
    else:
        output = output / output.sum(dim=1, keepdim=True)
        log_prob = torch.log(torch.clip(output, EPSILON, 1.0 - EPSILON))
        result = F.nll_loss(log_prob, target, reduction="none")
    return result.squeeze(0) if squeeze else result


@keras_op("nn")
def ctc_loss(target, output, target_length, output_length, mask_index=0):
    target, output = to_tensor(target), to_tensor(output)
    target_length, output_length = to_tensor(target_length), to_tensor(output_length)
    output = output.to(result_float(output.dtype, torch.float32))
    log_probs = F.log_softmax(output.transpose(0, 1), dim=-1)  # (T, B, C), as torch wants
    return F.ctc_loss(
        log_probs, target, output_length, target_length, blank=mask_index, reduction="none"
    )


def _greedy_decode(inputs, lengths, merge_repeated, mask_index):
    batch, steps, classes = inputs.shape
    if mask_index is None:
        mask_index = classes - 1
    scores, indices = inputs.max(dim=-1)
    indices = indices.to(torch.int32)
    beyond = torch.arange(steps, device=inputs.device)[None, :] >= lengths[:, None]
    indices = torch.where(beyond, mask_index, indices)
    scores = torch.where(beyond, 0.0, scores)
    if merge_repeated:
        repeat = F.pad(indices[:, 1:] == indices[:, :-1], (1, 0))
        indices = torch.where(repeat, mask_index, indices)
    blank = indices == mask_index
    indices = torch.where(blank, -1, indices)
    # Kept labels move to the front, in order; blanks (-1) fill the end.
    order = torch.arange(steps, device=inputs.device).expand(batch, steps)
    order = torch.argsort(torch.where(blank, steps, order), dim=-1, stable=True)
    indices = torch.take_along_dim(indices, order, dim=-1)
    return indices.unsqueeze(0), -scores.sum(dim=1, keepdim=True)


@keras_op("nn")
def ctc_decode(
    inputs,
    sequence_lengths,
    strategy="greedy",
    beam_width=100,
    top_paths=1,
    merge_repeated=True,
    mask_index=0,
):
    inputs = to_tensor(inputs)
    inputs = inputs.to(result_float(inputs.dtype, torch.float32))
    lengths = to_tensor(sequence_lengths, "int32")
    if strategy == "greedy":
        return _greedy_decode(inputs, lengths, merge_repeated, mask_index)
    if strategy == "beam_search":
        from distkeras.ops.nn_ctc_beam import beam_search_decode

        return beam_search_decode(inputs, lengths, beam_width, top_paths, mask_index)
    raise ValueError(
        f"Invalid strategy {strategy!r}. Supported values are 'greedy' and 'beam_search'."
    )


@keras_op("nn")
def psnr(x1, x2, max_val):
    x1, x2 = to_tensor(x1), to_tensor(x2)
    if x1.shape != x2.shape:
        raise ValueError(
            f"Input shapes {tuple(x1.shape)} and {tuple(x2.shape)} must match for PSNR calculation."
        )
    max_val = to_tensor(max_val, x1.dtype)
    mse = torch.mean((x1 - x2) ** 2)
    return 20 * torch.log10(max_val) - 10 * torch.log10(mse)
