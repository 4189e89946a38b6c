"""Shared helpers of the callbacks that watch a metric: direction, rank-0 messages, counters."""

from __future__ import annotations

import numbers
import sys
import warnings

import numpy as np

_MODES = ("auto", "min", "max")


def print_msg(message: str) -> None:
    """Prints on rank 0 only: every rank runs every callback, the user wants one line."""
    from distkeras import distributed

    if distributed.is_chief():
        sys.stdout.write(message + "\n")
        sys.stdout.flush()


def check_mode(owner: str, mode: str) -> str:
    """Keras's leniency: an unknown mode warns and falls back to "auto"."""
    if mode not in _MODES:
        warnings.warn(f"{owner} mode '{mode}' is unknown, fallback to auto mode.", stacklevel=3)
        return "auto"
    return mode


def metric_direction(model, name: str) -> str | None:
    """ "up" or "down" for the compiled metric logged as ``name`` (no ``val_``), else None."""
    compiled = getattr(model, "_compiled_metrics", None)
    pairs = []
    if compiled is not None and getattr(compiled, "built", False):
        pairs = list(zip(compiled.names(), compiled.metrics))
    for metric in getattr(model, "metrics", None) or []:
        pairs.append((getattr(metric, "name", None), metric))
    for logged, metric in pairs:
        if logged == name or getattr(metric, "name", None) == name:
            direction = getattr(metric, "_direction", None)
            if direction in ("up", "down"):
                return direction
    return None


def resolve_mode(owner: str, monitor: str, mode: str, model) -> str:
    """ "min" or "max": explicit, or inferred from the loss / the metric's direction."""
    if mode in ("min", "max"):
        return mode
    name = monitor.removeprefix("val_")
    direction = metric_direction(model, name)
    if direction is not None:
        return "max" if direction == "up" else "min"
    if name == "loss" or name.endswith("_loss"):
        return "min"
    raise ValueError(
        f"{owner} callback received monitor={monitor}, but distkeras isn't able to "
        "automatically determine whether that metric should be maximized or minimized. "
        "Pass `mode='max'` in order to monitor based on the highest metric value, or pass "
        "`mode='min'` in order to use the lowest value."
    )


def is_improvement(value, reference, mode: str, min_delta: float) -> bool:
    """Keras's rule: ``value`` beats ``reference`` by more than ``min_delta`` (None: yes)."""
    if reference is None:
        return True
    if mode == "min":
        return bool(np.less(value + min_delta, reference))
    return bool(np.greater(value - min_delta, reference))


def as_scalar(value):
    """A float for a scalar log value; None for arrays (cannot be compared)."""
    if isinstance(value, numbers.Real):
        return float(value)
    array = np.asarray(value)
    return float(array) if array.ndim == 0 else None


class BatchCounter:
    """Counts training batches across epochs; fires every ``freq`` batches (``save_freq``)."""

    def __init__(self, freq: int):
        self.freq = freq
        self.since_last = 0

    def step(self) -> bool:
        self.since_last += 1
        if self.since_last >= self.freq:
            self.since_last = 0
            return True
        return False


def check_save_freq(owner: str, save_freq) -> None:
    if save_freq == "epoch":
        return
    if isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1:
        raise ValueError(
            f"{owner}: unrecognized save_freq. Expected 'epoch' or a positive integer (a "
            f"number of batches). Received: save_freq={save_freq!r}"
        )
