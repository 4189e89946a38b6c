"""``EarlyStopping``: stop training when a monitored quantity has stopped improving."""

from __future__ import annotations

import warnings

import numpy as np

from distkeras.callbacks._monitor import check_mode, is_improvement, print_msg, resolve_mode
from distkeras.callbacks.base import Callback


def _check_count(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"{owner}: `{name}` must be a non-negative integer. Received: {name}={value!r}"
        )


def _snapshot(model) -> list[np.ndarray]:
    # Copies: on CPU, get_weights() may hand out views that the next step would overwrite.
    return [np.array(w, copy=True) for w in model.get_weights()]


class EarlyStopping(Callback):
    """Stops training when a monitored metric has stopped improving, as Keras's.

    At the end of every epoch the monitored value is compared with the best so far; after
    ``patience`` epochs without an improvement larger than ``min_delta``, ``fit`` stops.
    Epoch logs are global metrics, so every worker of a distributed run stops at the same
    epoch without any communication.

    Args:
        monitor: quantity to be monitored (a key of the epoch logs). Defaults to "val_loss".
        min_delta: minimum change that counts as an improvement (its absolute value is used).
        patience: number of epochs with no improvement after which training is stopped.
        verbose: 0 (silent) or 1 (prints when it stops or restores weights).
        mode: "min", "max" or "auto" (inferred: losses are minimized, metrics follow their
            own direction; an unknown name raises a ValueError).
        baseline: value the monitored quantity must beat; while no epoch beats it, training
            stops after ``patience`` epochs.
        restore_best_weights: at the end of training, set the weights of the best epoch (of
            those monitored, regardless of ``baseline``).
        start_from_epoch: number of warm-up epochs that are not monitored.

    Example:
        >>> callback = distkeras.callbacks.EarlyStopping(monitor="loss", patience=3)
        >>> history = model.fit(x, y, epochs=100, callbacks=[callback], verbose=0)
        >>> len(history.history["loss"])  # fewer than 100 when the loss plateaus
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        super().__init__()
        _check_count("EarlyStopping", "patience", patience)
        _check_count("EarlyStopping", "start_from_epoch", start_from_epoch)
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.verbose = verbose
        self.mode = check_mode("EarlyStopping", mode)
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self._direction: str | None = None  # "min"/"max", resolved once metrics are built
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        # Instances may be reused across fit() calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self._direction is None:
            self._direction = resolve_mode("EarlyStopping", self.monitor, self.mode, self.model)
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Nothing recorded yet: the current weights are the best known.
            self.best_weights = _snapshot(self.model)
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = _snapshot(self.model)
            # Patience restarts only when the epoch beats the baseline as well.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(
                    f"Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(logs.keys())}",
                stacklevel=2,
            )
        return value

    def _is_improvement(self, value, reference) -> bool:
        return is_improvement(value, reference, self._direction, self.min_delta)

    def get_config(self) -> dict:
        return {
            "monitor": self.monitor,
            "min_delta": self.min_delta,
            "patience": self.patience,
            "verbose": self.verbose,
            "mode": self.mode,
            "baseline": self.baseline,
            "restore_best_weights": self.restore_best_weights,
            "start_from_epoch": self.start_from_epoch,
        }
