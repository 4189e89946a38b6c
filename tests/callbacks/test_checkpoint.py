import os

import numpy as np
import pytest
import torch

import distkeras
from distkeras import callbacks
from tests.callbacks._util import (
    assert_weights_equal,
    inject,
    make_data,
    make_model,
    record_weights,
)

# ------------------------------------------------------------------------ ModelCheckpoint


def test_filenames_formatted_from_epoch_and_logs(tmp_path):
    x, y = make_data()
    model = make_model()
    path = str(tmp_path / "w-{epoch:02d}-{loss:.3f}-{val_loss:.2f}.weights.h5")
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        validation_split=0.25,
        verbose=0,
        callbacks=[callbacks.ModelCheckpoint(path, save_weights_only=True)],
    )
    h = history.history
    expected = {
        f"w-{e + 1:02d}-{h['loss'][e]:.3f}-{h['val_loss'][e]:.2f}.weights.h5" for e in range(3)
    }
    assert set(os.listdir(tmp_path)) == expected


def test_weights_only_file_holds_that_epochs_weights(tmp_path):
    x, y = make_data()
    model = make_model(optimizer="adam")
    recorder, weights = record_weights()
    path = str(tmp_path / "e{epoch}.weights.h5")
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[recorder, callbacks.ModelCheckpoint(path, save_weights_only=True)],
    )
    for epoch in range(2):
        fresh = make_model(optimizer="adam")
        fresh.load_weights(str(tmp_path / f"e{epoch + 1}.weights.h5"))
        assert_weights_equal(fresh.get_weights(), weights[epoch])


def test_save_best_only_keeps_best(tmp_path):
    x, y = make_data()
    model = make_model()
    recorder, weights = record_weights()
    scores = [0.3, 0.5, 0.4, 0.9, 0.1]
    best = str(tmp_path / "best.weights.h5")
    per_epoch = str(tmp_path / "best-{epoch}.keras")
    model.fit(
        x,
        y,
        epochs=5,
        batch_size=16,
        verbose=0,
        callbacks=[
            inject("score", scores),
            recorder,
            callbacks.ModelCheckpoint(
                best, monitor="score", mode="max", save_best_only=True, save_weights_only=True
            ),
            callbacks.ModelCheckpoint(per_epoch, monitor="score", mode="max", save_best_only=True),
        ],
    )
    # Improvements at epochs 1, 2 and 4 (1-based): only those are written.
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".keras")) == [
        "best-1.keras",
        "best-2.keras",
        "best-4.keras",
    ]
    fresh = make_model()
    fresh.load_weights(best)
    assert_weights_equal(fresh.get_weights(), weights[3])
    restored = distkeras.models.load_model(str(tmp_path / "best-2.keras"))
    assert_weights_equal(restored.get_weights(), weights[1])


def test_initial_value_threshold_and_auto_mode_for_loss(tmp_path):
    x, y = make_data()
    model = make_model()
    path = str(tmp_path / "m-{epoch}.keras")
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[
            callbacks.ModelCheckpoint(
                path, monitor="loss", save_best_only=True, initial_value_threshold=1e-9
            )
        ],
    )
    assert os.listdir(tmp_path) == []  # no epoch beats the threshold
    history = model.fit(
        x,
        y,
        epochs=3,
        verbose=0,
        callbacks=[callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=True)],
    )
    loss = history.history["loss"]
    expected = [f"m-{e + 1}.keras" for e in range(3) if loss[e] == min(loss[: e + 1])]
    assert sorted(os.listdir(tmp_path)) == sorted(expected)


def test_integer_save_freq_saves_every_n_batches(tmp_path):
    x, y = make_data(32)
    model = make_model()
    batches = []
    path = str(tmp_path / "{epoch}-{batch}.weights.h5")
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[
            callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b)),
            callbacks.ModelCheckpoint(path, save_weights_only=True, save_freq=3),
        ],
    )
    assert len(batches) == 8  # 4 batches per epoch: saves after global batches 3 and 6
    assert sorted(os.listdir(tmp_path)) == ["1-3.weights.h5", "2-2.weights.h5"]


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    x, y = make_data()
    model = make_model()
    path = tmp_path / "model.keras"
    saved = {}
    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    def after_save(epoch, logs):
        if epoch == 0:
            saved["bytes"] = path.read_bytes()
            saved["weights"] = [w.copy() for w in model.get_weights()]
            monkeypatch.setattr(os, "fsync", failing_fsync)  # the next save fails mid-write

    with pytest.raises(OSError, match="No space left"):
        model.fit(
            x,
            y,
            epochs=3,
            batch_size=8,
            verbose=0,
            callbacks=[
                callbacks.ModelCheckpoint(str(path)),
                callbacks.LambdaCallback(on_epoch_end=after_save),
            ],
        )
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert os.listdir(tmp_path) == ["model.keras"]  # no temporary file left behind
    assert path.read_bytes() == saved["bytes"]
    restored = distkeras.models.load_model(str(path))
    assert_weights_equal(restored.get_weights(), saved["weights"])


def test_checkpoint_argument_errors(tmp_path):
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        callbacks.ModelCheckpoint(str(tmp_path / "a.keras"), save_weights_only=True)
    with pytest.raises(ValueError, match=r"Legacy `\.h5`"):
        callbacks.ModelCheckpoint(str(tmp_path / "a.h5"))
    with pytest.raises(ValueError, match="save_freq='often'"):
        callbacks.ModelCheckpoint(str(tmp_path / "a.keras"), save_freq="often")
    x, y = make_data()
    model = make_model()
    with pytest.raises(KeyError, match="Failed to format"):
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "{nope}.keras"))],
        )
    config = callbacks.ModelCheckpoint(str(tmp_path / "a.keras"), save_freq=5).get_config()
    assert callbacks.ModelCheckpoint(**config).get_config() == config


def test_epoch_checkpoint_adds_no_batch_hook(tmp_path):
    checkpoint = callbacks.ModelCheckpoint(str(tmp_path / "a.keras"))
    cb_list = callbacks.CallbackList([checkpoint])
    assert not cb_list.listens("on_train_batch_end")
    cb_list = callbacks.CallbackList(
        [callbacks.ModelCheckpoint(str(tmp_path / "a.keras"), save_freq=2)]
    )
    assert cb_list.listens("on_train_batch_end")


# ------------------------------------------------------------------------ BackupAndRestore
class _Interrupt(callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("Interrupting!")


def _train(epochs, extra=(), seed=7):
    distkeras.utils.set_random_seed(seed)
    x, y = make_data(40)
    model = make_model(optimizer="adam")
    history = model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=list(extra))
    return model, history


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    backup_dir = str(tmp_path / "backup")
    reference, ref_history = _train(4)

    with pytest.raises(RuntimeError, match="Interrupting"):
        _train(4, [callbacks.BackupAndRestore(backup_dir), _Interrupt(2)])
    assert os.path.exists(os.path.join(backup_dir, "backup.pt"))
    state = torch.load(os.path.join(backup_dir, "backup.pt"), weights_only=True)
    assert state["epoch"] == 2

    epochs_run = []
    resumed, history = _train(
        4,
        [
            callbacks.BackupAndRestore(backup_dir),
            callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epochs_run.append(e)),
        ],
    )
    assert epochs_run == [2, 3]
    assert history.epoch == [2, 3]
    np.testing.assert_allclose(history.history["loss"], ref_history.history["loss"][2:], rtol=1e-6)
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert int(resumed.optimizer.iterations) == int(reference.optimizer.iterations) == 20
    assert not os.path.exists(backup_dir)  # deleted after a successful end


def test_restore_without_optimizer_state_would_differ(tmp_path):
    # Guards the test above: Adam's moments matter, so matching needs them restored.
    backup_dir = str(tmp_path / "backup")
    reference, _ = _train(4)
    with pytest.raises(RuntimeError):
        _train(4, [callbacks.BackupAndRestore(backup_dir), _Interrupt(2)])
    state = torch.load(os.path.join(backup_dir, "backup.pt"), weights_only=True)
    distkeras.utils.set_random_seed(7)
    x, y = make_data(40)
    model = make_model(optimizer="adam")
    model.set_weights([w.numpy() for w in state["weights"]])
    model.fit(x, y, epochs=4, initial_epoch=2, batch_size=8, verbose=0)
    diff = max(np.abs(a - b).max() for a, b in zip(model.get_weights(), reference.get_weights()))
    assert diff > 1e-4


def test_keep_checkpoint_and_failed_backup_keeps_previous(tmp_path, monkeypatch):
    backup_dir = tmp_path / "backup"
    calls = {"n": 0}
    real_fsync = os.fsync

    def flaky_fsync(fd):
        calls["n"] += 1
        if calls["n"] == 2:  # the second backup dies mid-write
            raise OSError(5, "I/O error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", flaky_fsync)
    with pytest.raises(OSError, match="I/O error"):
        _train(3, [callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False)])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert sorted(os.listdir(backup_dir)) == ["backup.pt", "training_metadata.json"]
    assert torch.load(backup_dir / "backup.pt", weights_only=True)["epoch"] == 1

    epochs_run = []
    _train(
        3,
        [
            callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False),
            callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epochs_run.append(e)),
        ],
    )
    assert epochs_run == [1, 2]
    assert torch.load(backup_dir / "backup.pt", weights_only=True)["epoch"] == 3
    # A finished run kept its backup: running again trains no further epoch.
    _, history = _train(3, [callbacks.BackupAndRestore(str(backup_dir))])
    assert history.epoch == []
    assert not backup_dir.exists()


def test_batch_level_backup_resumes_at_the_next_step(tmp_path):
    backup_dir = str(tmp_path / "backup")

    class InterruptMidEpoch(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 2:
                raise RuntimeError("killed")

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    with pytest.raises(RuntimeError):
        _train(3, [callbacks.BackupAndRestore(backup_dir, save_freq=2), InterruptMidEpoch()])
    state = torch.load(os.path.join(backup_dir, "backup.pt"), weights_only=True)
    # 5 batches per epoch: the last backup came after global batch 8 = batch 2 of epoch 1.
    assert (state["epoch"], state["batch"]) == (1, 2)
    assert state["step"] == 3  # resumes at the step after the one saved, not the epoch start
    epochs_run = []
    _train(
        3,
        [
            callbacks.BackupAndRestore(backup_dir, save_freq=2),
            callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epochs_run.append(e)),
        ],
    )
    assert epochs_run == [1, 2]


def test_backup_errors(tmp_path):
    with pytest.raises(ValueError, match="Empty `backup_dir`"):
        callbacks.BackupAndRestore("")
    with pytest.raises(ValueError, match="save_freq=0"):
        callbacks.BackupAndRestore(str(tmp_path), save_freq=0)
    backup_dir = str(tmp_path / "b")
    with pytest.raises(RuntimeError):
        _train(3, [callbacks.BackupAndRestore(backup_dir), _Interrupt(1)])
    x, y = make_data(40)
    other = make_model(optimizer="adam", units=5)  # a different model cannot resume it
    with pytest.raises(ValueError, match="expects 4 weights|shape"):
        other.fit(x, y, epochs=3, verbose=0, callbacks=[callbacks.BackupAndRestore(backup_dir)])
