"""Learning-rate callbacks: ``ReduceLROnPlateau`` and ``LearningRateScheduler``.

Both act on ``model.optimizer.learning_rate`` (a host-side float: setting it costs no device
work) and add the current rate to the epoch logs as ``learning_rate``, as Keras does. Every
rank computes the same rate from the same global logs.
"""

from __future__ import annotations

import inspect
import numbers
import warnings

import numpy as np

from distkeras.callbacks._monitor import print_msg
from distkeras.callbacks.base import Callback


def _current_lr(optimizer) -> float:
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError('Optimizer must have a "learning_rate" attribute.')
    return float(np.asarray(optimizer.learning_rate))


class ReduceLROnPlateau(Callback):
    """Reduces the learning rate when a metric has stopped improving, as Keras's.

    After ``patience`` epochs without an improvement larger than ``min_delta``, the rate
    becomes ``max(lr * factor, min_lr)``; then ``cooldown`` epochs pass before the count of
    epochs without improvement resumes.

    Args:
        monitor: quantity to be monitored. Defaults to "val_loss".
        factor: factor by which the learning rate is reduced (``new_lr = lr * factor``);
            must be below 1.
        patience: number of epochs with no improvement after which the rate is reduced.
        verbose: 0 (quiet) or 1 (a line per reduction).
        mode: "auto", "min" or "max". "auto" maximizes names containing "acc" and minimizes
            the rest (Keras's rule for this callback).
        min_delta: threshold for measuring the new optimum.
        cooldown: number of epochs to wait after a reduction before counting again.
        min_lr: lower bound on the learning rate.

    Example:
        >>> reduce_lr = distkeras.callbacks.ReduceLROnPlateau(
        ...     monitor="val_loss", factor=0.2, patience=5, min_lr=0.001)
        >>> model.fit(x, y, validation_split=0.2, callbacks=[reduce_lr])
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        **kwargs,
    ):
        super().__init__()
        if "epsilon" in kwargs:  # Keras 2's name for min_delta
            min_delta = kwargs.pop("epsilon")
            warnings.warn(
                "`epsilon` argument is deprecated, use `min_delta` instead.", stacklevel=2
            )
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau got unexpected argument(s): {sorted(kwargs)}")
        if factor >= 1.0:
            raise ValueError(
                f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}"
            )
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.min_delta = min_delta
        self.cooldown = cooldown
        self.min_lr = min_lr
        self._reset()

    def _reset(self) -> None:
        if self.mode not in ("auto", "min", "max"):
            warnings.warn(
                f"Learning rate reduction mode {self.mode} is unknown, fallback to auto mode.",
                stacklevel=3,
            )
            self.mode = "auto"
        self._minimize = self.mode == "min" or (self.mode == "auto" and "acc" not in self.monitor)
        self.best = np.inf if self._minimize else -np.inf
        self.cooldown_counter = 0
        self.wait = 0

    def _improves(self, current, best) -> bool:
        if self._minimize:
            return bool(np.less(current, best - self.min_delta))
        return bool(np.greater(current, best + self.min_delta))

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = _current_lr(optimizer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is "
                f"not available. Available metrics are: {','.join(logs.keys())}.",
                stacklevel=2,
            )
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improves(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = _current_lr(optimizer)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print_msg(
                            f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning "
                            f"rate to {new_lr}."
                        )
                    self.cooldown_counter = self.cooldown
                    self.wait = 0

    def get_config(self) -> dict:
        return {
            "monitor": self.monitor,
            "factor": self.factor,
            "patience": self.patience,
            "verbose": self.verbose,
            "mode": self.mode,
            "min_delta": self.min_delta,
            "cooldown": self.cooldown,
            "min_lr": self.min_lr,
        }


def _takes_lr(schedule) -> bool:
    """Whether ``schedule`` accepts ``(epoch, lr)`` (Keras 2 schedules take only epoch)."""
    try:
        params = inspect.signature(schedule).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of every epoch from ``schedule(epoch, lr)``.

    Args:
        schedule: a function of the epoch index (from 0) and the current learning rate
            (float) returning the new rate (a number). A function of the epoch alone is
            accepted too.
        verbose: 0 (quiet) or 1 (a line per epoch).

    Example:
        >>> def scheduler(epoch, lr):
        ...     return lr if epoch < 10 else lr * math.exp(-0.1)
        >>> callback = distkeras.callbacks.LearningRateScheduler(scheduler)
        >>> model.fit(x, y, epochs=15, callbacks=[callback], verbose=0)
    """

    def __init__(self, schedule, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(
                f"LearningRateScheduler: `schedule` must be a function (epoch, lr) -> lr. "
                f"Received: schedule={schedule!r}"
            )
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        lr = _current_lr(optimizer)
        new_lr = self.schedule(epoch, lr) if _takes_lr(self.schedule) else self.schedule(epoch)
        if hasattr(new_lr, "detach"):  # a 0-d tensor from tensor math in the schedule
            new_lr = new_lr.detach().cpu().numpy()
        if isinstance(new_lr, np.ndarray) and new_lr.ndim == 0:
            new_lr = new_lr.item()
        if isinstance(new_lr, bool) or not isinstance(new_lr, numbers.Real):
            raise ValueError(
                f"The output of the `schedule` function should be a float. Got: {new_lr!r}"
            )
        optimizer.learning_rate = float(new_lr)
        if self.verbose > 0:
            print_msg(
                f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                f"{float(new_lr)}."
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _current_lr(self.model.optimizer)

    def get_config(self) -> dict:
        return {"schedule": self.schedule, "verbose": self.verbose}
