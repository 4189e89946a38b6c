"""CTC beam-search decoding, with the beam semantics Keras uses on JAX and torch.

Each beam keeps two score tracks per label path: paths whose last step emitted a label and
paths whose last step was blank, so a repeated label after a blank counts twice. At every
step each beam extends by every class, identical paths merge (their probabilities add, in
log space), and the ``beam_width`` best paths survive. The batch and time loops run in
Python, as in Keras: decoding is an inference-time utility, not part of a training step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_PAD = -1


def _unique(paths: torch.Tensor, size: int):
    """Distinct rows first, then ``_PAD`` rows up to ``size``; ``inverse`` maps rows to them."""
    unique, inverse = torch.unique(paths, dim=0, return_inverse=True)
    if unique.shape[0] < size:
        fill = torch.full(
            (size - unique.shape[0], paths.shape[1]), _PAD, dtype=paths.dtype, device=paths.device
        )
        unique = torch.cat([unique, fill])
    return unique, inverse


def _merge(inverse: torch.Tensor, scores: torch.Tensor, size: int) -> torch.Tensor:
    """log(sum(exp(scores))) per merged path."""
    top = scores.max()
    total = torch.zeros(size, dtype=scores.dtype, device=scores.device)
    total.scatter_add_(0, inverse, torch.exp(scores - top))
    return torch.log(total) + top


def _extend(paths, scores, masked, step_scores, classes, blank):
    rows = paths.shape[0] * classes
    paths = paths.repeat_interleave(classes, dim=0)
    scores = scores.repeat_interleave(classes)
    prev_masked = masked.repeat_interleave(classes)
    arange = torch.arange(rows, device=paths.device)
    end = (paths == _PAD).to(torch.int32).argmax(dim=1)  # where the next label goes
    tail = torch.where(end == 0, _PAD, paths[arange, end - 1])
    labels = torch.arange(classes, device=paths.device, dtype=paths.dtype)
    labels[blank] = _PAD
    labels = labels.repeat(rows // classes)
    masked = labels == _PAD
    # Repeating the last label without a blank in between extends nothing.
    labels = torch.where(~prev_masked & (tail == labels), _PAD, labels)
    paths[arange, end] = labels
    return paths, scores + step_scores.repeat(rows // classes), masked


def _prune(paths, scores, masked, classes, width):
    unique, inverse = _unique(paths, 2 * classes * width)
    emit = _merge(inverse, torch.where(masked, float("-inf"), scores), unique.shape[0])
    blank = _merge(inverse, torch.where(masked, scores, float("-inf")), unique.shape[0])
    best = torch.argsort(torch.logaddexp(emit, blank), stable=True)[-width:]
    paths = unique[best].repeat(2, 1)
    flags = torch.zeros(2 * width, dtype=torch.bool, device=paths.device)
    flags[width:] = True
    return paths, torch.cat([emit[best], blank[best]]), flags


def beam_search_decode(inputs, lengths, beam_width, top_paths, mask_index):
    """(paths (top_paths, B, T) int32 with -1 padding, scores (B, top_paths))."""
    batch, steps, classes = inputs.shape
    log_probs = F.log_softmax(inputs, dim=-1)
    if mask_index is None:
        mask_index = classes - 1
    # Classes run in reverse so that ties break the way Keras's ascending argsort breaks them.
    log_probs = torch.flip(log_probs, dims=[2])
    blank = classes - mask_index - 1
    n_init = min(classes, beam_width)
    all_paths, all_scores = [], []
    for b, length in enumerate(lengths.tolist()):
        x = log_probs[b]
        paths = torch.full((2 * beam_width, steps), _PAD, dtype=torch.int32, device=inputs.device)
        first = torch.argsort(x[0], stable=True)[-n_init:]
        paths[:n_init, 0] = torch.where(first == blank, _PAD, first.to(torch.int32))
        scores = torch.full((2 * beam_width,), float("-inf"), dtype=x.dtype, device=x.device)
        scores[:n_init] = x[0, first]
        masked = paths[:, 0] == _PAD
        for t in range(1, int(length)):
            paths, scores, masked = _extend(paths, scores, masked, x[t], classes, blank)
            paths, scores, masked = _prune(paths, scores, masked, classes, beam_width)
        unique, inverse = _unique(paths, 2 * classes * beam_width)
        scores = _merge(inverse, scores, unique.shape[0])
        best = torch.argsort(scores, stable=True)[-top_paths:].flip(0)
        all_paths.append(unique[best])
        all_scores.append(scores[best])
    paths, scores = torch.stack(all_paths), torch.stack(all_scores)
    paths = torch.where(paths == _PAD, _PAD, classes - paths - 1)
    return paths.permute(1, 0, 2), scores
