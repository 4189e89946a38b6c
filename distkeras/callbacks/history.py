"""``History``: the object ``fit`` returns, with per-epoch logs."""

from __future__ import annotations

from distkeras.callbacks.base import Callback


class History(Callback):
    """Records epoch logs: ``history.history["loss"]`` is a list, one value per epoch.

    Example:
        >>> history = model.fit(x, y, epochs=3)
        >>> history.history["loss"]
        [0.52, 0.31, 0.25]
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self
