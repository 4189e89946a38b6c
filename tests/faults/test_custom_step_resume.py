"""Exact resume of a model's own ``train_step`` from a periodic backup, in one process.

A keras.io-guide step updates ``self.metrics`` (the loss tracker, then ``compile_metrics``,
whose states exist only after their first update). A fit interrupted mid-epoch and run again
with the same backup_dir must end with the uninterrupted run's weights and with its resumed
epoch's metrics, which include the batches trained before the crash.
"""

import numpy as np
import pytest
import torch

import distkeras
from distkeras import callbacks, layers
from tests.faults.scripts.guide_step import GuideStep


class Interrupt(callbacks.Callback):
    """Raises after (epoch, batch) once, as a crash would."""

    def __init__(self, at=None):
        super().__init__()
        self.at, self.epoch = at, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise RuntimeError("interrupted")


def _fit(backup_dir, interrupt: Interrupt):
    distkeras.utils.set_random_seed(3)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 5)).astype("float32")
    y = (x[:, :1] * 2 - x[:, 1:2]).astype("float32")
    model = GuideStep(
        [distkeras.Input((5,)), layers.Dense(8, activation="relu"), layers.Dropout(0.2),
         layers.Dense(1)]
    )  # fmt: skip
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    backup = callbacks.BackupAndRestore(str(backup_dir), save_freq=4)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[backup, interrupt])
    return model.get_weights(), history.history


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return _fit(tmp_path_factory.mktemp("reference") / "backup", Interrupt())


def test_custom_train_step_resumes_weights_and_metrics(uninterrupted, tmp_path):
    backup_dir = tmp_path / "backup"
    with pytest.raises(RuntimeError, match="interrupted"):
        _fit(backup_dir, Interrupt((1, 4)))  # the last backup: after epoch 2's step 2
    state = torch.load(backup_dir / "backup.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 2)
    weights, history = _fit(backup_dir, Interrupt())
    for got, want in zip(weights, uninterrupted[0]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert sorted(history) == ["loss", "mae"]
    for key, values in uninterrupted[1].items():
        # mae's states are created at the first step: restored after it, they still count.
        np.testing.assert_allclose(history[key], values[1:], rtol=1e-6, err_msg=key)
