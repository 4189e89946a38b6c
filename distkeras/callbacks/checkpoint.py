"""``ModelCheckpoint`` (save the model or its weights) and ``BackupAndRestore`` (resume).

Only rank 0 writes files; every rank makes the same decisions (epoch logs are global) and
meets at a barrier after each save, so a file exists for all ranks once its epoch ends. Every
write is atomic (a temporary file moved into place): a failed or interrupted save leaves the
previous file intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings

import numpy as np
import torch

from distkeras.callbacks._monitor import (
    BatchCounter,
    as_scalar,
    check_mode,
    check_save_freq,
    is_improvement,
    print_msg,
    resolve_mode,
)
from distkeras.callbacks.base import Callback
from distkeras.training import randomness


def _distributed():
    from distkeras import distributed

    return distributed


class ModelCheckpoint(Callback):
    """Saves the model (``.keras``) or its weights (``.weights.h5``) during training.

    Args:
        filepath: where to save; may hold ``str.format`` fields filled from ``epoch``
            (1-based), ``batch`` (1-based, with an integer ``save_freq``) and the logs, e.g.
            ``"ckpt/{epoch:02d}-{val_loss:.2f}.keras"``. Must end in ``.weights.h5`` when
            ``save_weights_only=True`` and in ``.keras`` otherwise.
        monitor: the log key compared when ``save_best_only=True``.
        verbose: 0 (silent) or 1 (a line per save decision).
        save_best_only: save only when ``monitor`` improves on the best value so far.
        save_weights_only: ``model.save_weights`` instead of ``model.save``.
        mode: "auto", "min" or "max", as in ``EarlyStopping``.
        save_freq: "epoch" or an integer number of batches between saves.
        initial_value_threshold: initial "best" value that the monitored quantity must beat
            (with ``save_best_only``).

    Example:
        >>> checkpoint = distkeras.callbacks.ModelCheckpoint(
        ...     "best.keras", monitor="val_loss", save_best_only=True)
        >>> model.fit(x, y, validation_split=0.2, epochs=10, callbacks=[checkpoint])
        >>> best = distkeras.models.load_model("best.keras")
    """

    def __init__(
        self,
        filepath,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq="epoch",
        initial_value_threshold: float | None = None,
    ):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = check_mode("ModelCheckpoint", mode)
        check_save_freq("ModelCheckpoint", save_freq)
        self.save_freq = save_freq
        self.initial_value_threshold = initial_value_threshold
        self.best = initial_value_threshold
        self._direction: str | None = None
        self._counter = BatchCounter(save_freq) if save_freq != "epoch" else None
        self._current_epoch = 0
        if save_weights_only:
            if not self.filepath.endswith(".weights.h5"):
                raise ValueError(
                    "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath "
                    "provided must end in `.weights.h5` (Keras weights format). Received: "
                    f"filepath={self.filepath}"
                )
        elif not self.filepath.endswith(".keras"):
            hint = (
                " Legacy `.h5` model files are not written: use `.keras`, or "
                "save_weights_only=True with `.weights.h5`."
                if self.filepath.endswith(".h5")
                else ""
            )
            raise ValueError(
                "The filepath provided must end in `.keras` (Keras model format)."
                f"{hint} Received: filepath={self.filepath}"
            )

    def _listens_to(self, hook: str) -> bool:
        # Batch-level saving only: with save_freq="epoch" the step path stays untouched.
        return hook == "on_train_batch_end" and self._counter is not None

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._counter is not None and self._counter.step():
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save(self, epoch: int, logs, filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        scalar = as_scalar(current)
        if scalar is None:
            warnings.warn(
                f"Can save best model only when `monitor` is a scalar value. Received: "
                f"{current}. Falling back to `save_best_only=False`.",
                stacklevel=3,
            )
            return True
        if self._direction is None:
            self._direction = resolve_mode("ModelCheckpoint", self.monitor, self.mode, self.model)
        best = "None" if self.best is None else f"{self.best:.5f}"
        if is_improvement(scalar, self.best, self._direction, 0.0):
            if self.verbose > 0:
                print_msg(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                    f"{scalar:.5f}, saving model to {filepath}"
                )
            self.best = scalar
            return True
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save_model(self, epoch: int, batch, logs) -> None:
        logs = logs if logs is not None else {}
        filepath = self._get_file_path(epoch, batch, logs)
        # Every rank decides (the same way: epoch logs are global); rank 0 writes.
        if self._should_save(epoch, logs, filepath) and _distributed().is_chief():
            if os.path.isdir(filepath):
                raise OSError(
                    "Please specify a non-directory filepath for ModelCheckpoint. Filepath "
                    f"used is an existing directory: {filepath}"
                )
            dirname = os.path.dirname(filepath)
            if dirname:
                try:
                    os.makedirs(dirname, exist_ok=True)
                except OSError as err:
                    raise type(err)(
                        f"ModelCheckpoint cannot save {filepath}: cannot create the directory "
                        f"{dirname} ({err.strerror or err})."
                    ) from err
            if self.save_weights_only:
                self.model.save_weights(filepath, overwrite=True)
            else:
                self.model.save(filepath, overwrite=True)
        _distributed().barrier()

    def _get_file_path(self, epoch: int, batch, logs) -> str:
        values = dict(logs)
        values["epoch"] = epoch + 1
        if batch is not None and "batch" not in values:
            values["batch"] = batch + 1
        try:
            return self.filepath.format(**values)
        except (KeyError, IndexError, ValueError) as err:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: '
                f"{err!r}. Available keys: {sorted(values)}"
            ) from err

    def get_config(self) -> dict:
        return {
            "filepath": self.filepath,
            "monitor": self.monitor,
            "verbose": self.verbose,
            "save_best_only": self.save_best_only,
            "save_weights_only": self.save_weights_only,
            "mode": self.mode,
            "save_freq": self.save_freq,
            "initial_value_threshold": self.initial_value_threshold,
        }


# ------------------------------------------------------------------------- BackupAndRestore
_STATE_FILE = "backup.pt"


def _trainer_params(model) -> list[torch.Tensor]:
    # The list (and order) the training step builds the optimizer with: slot order follows it.
    return list(model.trainable_weights)


def _atomic_torch_save(obj, filepath: str) -> None:
    directory = os.path.dirname(os.path.abspath(filepath))
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(filepath)}.", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class BackupAndRestore(Callback):
    """Backs up the training state so an interrupted ``fit`` resumes where it stopped.

    At the end of every epoch (or every ``save_freq`` batches) rank 0 writes the model's
    weights, the optimizer's variables (step count, learning rate, slots), the number of
    completed epochs and the random number generator state to one file in ``backup_dir``,
    atomically: a kill during the write leaves the previous backup intact. When ``fit``
    starts again with the same ``backup_dir``, every rank restores that state and training
    continues with the first unfinished epoch; with the same seed
    (``distkeras.utils.set_random_seed``) the result equals an uninterrupted run. The backup
    is deleted when ``fit`` ends normally (also after early stopping) unless
    ``delete_checkpoint=False``.

    With an integer ``save_freq`` the backup is taken every ``save_freq`` batches and holds
    the position (the next step of the epoch) and the epoch's running loss/metric sums, so
    training resumes at the step after the one saved and the resumed epoch's logs equal an
    uninterrupted run's. (Keras restarts that epoch, training its first batches twice.)

    Resuming is exact, with dropout too, and on any number of workers: a backup written by N
    workers resumes on M. The data order depends only on the seed and the epoch, and random
    layers draw per sample from (seed, layer, step, sample index), so no per-worker random
    state needs saving.

    Args:
        backup_dir: directory for the backup; do not share it with other runs or callbacks.
        save_freq: "epoch" or an integer number of batches between backups.
        delete_checkpoint: delete the backup when training completes.

    Example:
        >>> backup = distkeras.callbacks.BackupAndRestore(backup_dir="/tmp/backup")
        >>> model.fit(x, y, epochs=10, callbacks=[backup])  # rerun after a crash: resumes
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint: bool = True):
        super().__init__()
        if not backup_dir:
            raise ValueError(
                f"Empty `backup_dir` argument passed. Received: backup_dir={backup_dir!r}"
            )
        check_save_freq("BackupAndRestore", save_freq)
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self._state_path = os.path.join(self.backup_dir, _STATE_FILE)
        self._counter = BatchCounter(save_freq) if save_freq != "epoch" else None
        self._current_epoch = 0
        self._last_batch = 0

    def _listens_to(self, hook: str) -> bool:
        return hook == "on_train_batch_end" and self._counter is not None

    # ----------------------------------------------------------------------------- restore
    def on_train_begin(self, logs=None):
        dist = _distributed()
        found = os.path.exists(self._state_path) if dist.is_chief() else None
        # Rank 0 decides, so all ranks agree even without a shared file system.
        found = dist.communicator().broadcast_object(found)
        if not found:
            return
        if not getattr(self.model, "built", True):
            raise ValueError(
                "To use the BackupAndRestore callback, your model must be built before you "
                f"call `fit()`. Model '{self.model.name}' is unbuilt: build it beforehand, "
                "e.g. by calling it on a batch of data or by starting it with an Input."
            )
        state = None
        if os.path.exists(self._state_path):
            state = torch.load(self._state_path, map_location="cpu", weights_only=True)
            self._restore(state)
        # Ranks that cannot see the file get the weights from rank 0's broadcast at the
        # start of the first step; they only need the epoch.
        position = None
        if state is not None:
            position = (
                state["epoch"],
                state.get("step", 0),
                state.get("epoch_state"),
                state.get("random_step"),
            )
        epoch, step, epoch_state, random_step = dist.communicator().broadcast_object(position)
        self.model._initial_epoch = epoch
        if random_step is not None:
            # Training draws are keyed on the step count: resume it (same on every rank).
            randomness.set_random_step(self.model, random_step)
        if step:
            # Saved mid-epoch (save_freq=N or a preemption): resume at the next step, with the
            # epoch's loss/metric sums.
            self.model._initial_step = step
            self.model._resume_epoch_state = epoch_state
        self._current_epoch = epoch

    def _restore(self, state: dict) -> None:
        model = self.model
        model.set_weights([w.numpy() for w in state["weights"]])
        optimizer = getattr(model, "optimizer", None)
        saved = state.get("optimizer")
        if optimizer is not None and saved is not None:
            if not getattr(optimizer, "built", True):
                optimizer.build(_trainer_params(model))
            try:
                optimizer.set_variables(saved)
            except ValueError as err:
                raise ValueError(
                    f"BackupAndRestore: the backup in {self.backup_dir} does not match the "
                    f"optimizer of model '{model.name}' ({err}). Was the model or its "
                    "compile() changed? Delete the directory to start afresh."
                ) from err
        if state.get("world_size") == 1 == _distributed().world_size():
            _set_rng_state(state.get("rng"))

    # -------------------------------------------------------------------------------- save
    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._counter is not None and self._counter.step():
            self._last_batch = batch
            # Collective (every rank is here): the epoch's global loss/metric sums so far.
            epoch_state = _running_step(self.model).epoch_state()
            self._save(
                epoch=self._current_epoch, batch=batch, step=batch + 1, epoch_state=epoch_state
            )

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch=epoch + 1, batch=0)

    def on_preemption(self, epoch: int, step: int, epoch_state: dict) -> bool:
        """fit was signalled (SIGTERM/SIGUSR1): back up the exact position, mid-epoch."""
        self._save(epoch=epoch, batch=step - 1, step=step, epoch_state=epoch_state)
        return True

    def _save(self, epoch: int, batch: int, step: int = 0, epoch_state=None) -> None:
        dist = _distributed()
        steps = self.params.get("steps") if self.params else None
        if step and steps and step >= steps:
            # The epoch's last step: resume with the next epoch (nothing of this one is left
            # to train, and its end-of-epoch logs come from the run that finishes it).
            epoch, batch, step, epoch_state = epoch + 1, 0, 0, None
        if dist.is_chief():
            model = self.model
            optimizer = getattr(model, "optimizer", None)
            state = {
                "epoch": int(epoch),
                "batch": int(batch),
                "world_size": dist.world_size(),
                "weights": [torch.from_numpy(np.ascontiguousarray(w)) for w in model.get_weights()],
                "optimizer": (
                    [v.detach().cpu().clone() for v in optimizer.variables]
                    if optimizer is not None and getattr(optimizer, "built", False)
                    else None
                ),
                "rng": _get_rng_state(),
                # Steps of `epoch` already done and that epoch's loss/metric sums (set when
                # saved mid-epoch; 0 means "start of the epoch").
                "step": int(step),
                "epoch_state": epoch_state,
                # The model's training step count, which keys dropout masks and noise.
                "random_step": randomness.random_step(model),
            }
            os.makedirs(self.backup_dir, exist_ok=True)
            _atomic_torch_save(state, self._state_path)
            _write_json(
                os.path.join(self.backup_dir, "training_metadata.json"),
                {"epoch": int(epoch), "batch": int(batch)},
            )
        dist.barrier()

    def on_train_end(self, logs=None):
        dist = _distributed()
        dist.barrier()
        if self.delete_checkpoint and dist.is_chief() and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir, ignore_errors=True)

    def get_config(self) -> dict:
        return {
            "backup_dir": self.backup_dir,
            "save_freq": self.save_freq,
            "delete_checkpoint": self.delete_checkpoint,
        }


def _running_step(model):
    """What fit runs each step: the model's own train_step (a custom runner) or the built-in
    one; it holds the epoch's running sums."""
    from distkeras.training.custom_loop import runner_for

    return runner_for(model, model._step_context())


def _write_json(filepath: str, data: dict) -> None:
    """Informational copy of the epoch for people and tools; ``backup.pt`` is the truth."""
    tmp = filepath + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, filepath)


def _get_rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state) -> None:
    if not state:
        return
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
