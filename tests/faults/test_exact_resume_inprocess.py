"""Exact resume from periodic backups, in one process (fast): a fit interrupted by an exception
and run again with the same backup_dir ends with an uninterrupted run's weights and history.

The multi-process cases (SIGKILL and restart, preemption, another worker count) are in
test_exact_resume.py; these pin down where a `save_freq=N` backup resumes: at the step after
the one it saved, with the epoch's loss/metric sums, and at the next epoch when it was taken
after an epoch's last step.
"""

import json

import numpy as np
import pytest
import torch

import distkeras
from distkeras import callbacks, layers

STEPS = 10  # 80 samples, global batch 8


class Interrupt(callbacks.Callback):
    """Raises after (epoch, batch) once, as a crash would, and counts the batches trained."""

    def __init__(self, at=None):
        super().__init__()
        self.at, self.epoch, self.batches = at, 0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if (self.epoch, batch) == self.at:
            raise RuntimeError("interrupted")


def _fit(backup_dir, save_freq, interrupt: Interrupt):
    distkeras.utils.set_random_seed(5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6)).astype("float32")
    y = (x[:, :1] - x[:, 1:2] > 0).astype("float32")
    model = distkeras.Sequential(
        [
            distkeras.Input((6,)),
            layers.Dense(8, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    backup = callbacks.BackupAndRestore(str(backup_dir), save_freq=save_freq)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[backup, interrupt])
    return model.get_weights(), history.history


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return _fit(tmp_path_factory.mktemp("reference") / "backup", 4, Interrupt())


@pytest.mark.parametrize(
    "save_freq, at, position, step, trained",
    [
        # Saves after global batches 4, 8, 12: the crash at epoch 2, batch 4 (global 15)
        # resumes at epoch 2, step 3 (12 batches not redone).
        (4, (1, 4), {"epoch": 1, "batch": 1}, 2, 30 - 12),
        # save_freq=5 saves after batch 10 = the last of epoch 1: it resumes at epoch 2.
        (5, (1, 2), {"epoch": 1, "batch": 0}, 0, 30 - 10),
    ],
    ids=["mid-epoch", "after-an-epoch's-last-step"],
)
def test_periodic_backup_resumes_at_the_next_step(
    save_freq, at, position, step, trained, uninterrupted, tmp_path
):
    backup_dir = tmp_path / "backup"
    with pytest.raises(RuntimeError, match="interrupted"):
        _fit(backup_dir, save_freq, Interrupt(at))
    assert json.loads((backup_dir / "training_metadata.json").read_text()) == position
    state = torch.load(backup_dir / "backup.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, step)  # the next step to train
    assert (state["epoch_state"] is None) == (step == 0)  # the epoch's sums, when mid-epoch
    resumed = Interrupt()
    weights, history = _fit(backup_dir, save_freq, resumed)
    assert resumed.batches == trained
    for got, want in zip(weights, uninterrupted[0]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # The resumed epoch's logs include the batches trained before the crash.
    assert sorted(history) == ["accuracy", "loss"]
    for key, values in uninterrupted[1].items():
        np.testing.assert_allclose(history[key], values[1:], rtol=1e-6)
