"""``TerminateOnNaN``: stop training as soon as the loss is NaN or infinite."""

from __future__ import annotations

import math

from distkeras.callbacks._monitor import print_msg
from distkeras.callbacks.base import Callback


class TerminateOnNaN(Callback):
    """Stops training when a batch's loss is NaN or infinite, as Keras's.

    It reads only ``logs["loss"]`` after every batch: one device-to-host copy per step on
    GPU (the metrics are not computed). Under several workers each rank checks its running
    loss; a NaN reaches every rank through the all-reduced gradients.

    Args:
        raise_error: raise a RuntimeError at once (other callbacks' ``on_train_end`` is not
            run, e.g. a ``BackupAndRestore`` backup is kept) instead of setting
            ``model.stop_training``.

    Example:
        >>> model.fit(x, y, callbacks=[distkeras.callbacks.TerminateOnNaN()])
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = raise_error

    def on_train_batch_end(self, batch, logs=None):
        loss = None if logs is None else logs.get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                "Terminating training immediately."
            )
        print_msg(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True

    def get_config(self) -> dict:
        return {"raise_error": self.raise_error}
