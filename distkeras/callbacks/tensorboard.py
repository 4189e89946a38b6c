"""``TensorBoard``: Keras's TensorBoard callback, written with torch's SummaryWriter.

No TensorFlow needed: event files come from ``torch.utils.tensorboard`` (the ``tensorboard``
package), in Keras's layout and with Keras's tags, so dashboards and scripts made for Keras
runs read these unchanged. Only rank 0 writes; the logged values are the global epoch logs,
the very numbers ``History`` holds.
"""

from __future__ import annotations

import os
import time
import warnings

from distkeras.callbacks import _tensorboard_utils as tb_utils
from distkeras.callbacks._monitor import as_scalar
from distkeras.callbacks.base import Callback


def _parse_profile_batch(profile_batch) -> tuple[int, int]:
    message = (
        "profile_batch must be a non-negative integer or 2-tuple of positive integers. A pair "
        "of positive integers signifies a range of batches to profile. Found: "
        f"{profile_batch!r}"
    )
    value = profile_batch
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.split(",")]
        except ValueError:
            raise ValueError(message) from None
        value = value[0] if len(value) == 1 else value
    if isinstance(value, int) and not isinstance(value, bool):
        start = stop = value
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        start, stop = value
    else:
        raise ValueError(message)
    if not (isinstance(start, int) and isinstance(stop, int)) or start < 0 or stop < start:
        raise ValueError(message)
    return start, stop


class TensorBoard(Callback):
    """Writes TensorBoard logs, as Keras's callback, without TensorFlow.

    Layout and tags are Keras's: ``log_dir/train`` holds ``epoch_loss``, ``epoch_<metric>``,
    ``epoch_learning_rate`` (and ``epoch_steps_per_second``); ``log_dir/validation`` holds the
    validation values under the same tags (``epoch_loss`` is ``val_loss``). With a batch-level
    ``update_freq`` the train directory also gets ``batch_loss`` and ``batch_<metric>`` (the
    running epoch averages, as in the progress bar) every ``update_freq`` batches, at the
    global batch number (from 1). Weight histograms are tagged
    ``<layer name>/<weight name>/histogram``. ``model.evaluate(..., callbacks=[tb])`` writes
    ``evaluation_<name>_vs_iterations`` to the validation directory.

    Extras that Keras lacks (off by default): ``write_grad_norms`` writes each layer's
    gradient L2 norm as ``grad_norm/<layer name>`` (the gradients of the last step of each
    epoch, or of every logged batch with a batch-level ``update_freq``; computed on the device
    with one fused kernel, read once per logged step); ``write_step_time`` writes the mean
    seconds per step of each phase of the training step, per epoch: ``step_time/data``,
    ``step_time/forward_backward``, ``step_time/communication`` (several workers) and
    ``step_time/optimizer``. On CUDA it synchronizes the device between phases, so leave it
    off when you are not measuring. ``profile_batch`` (an error in Keras's torch backend)
    records batches with ``torch.profiler`` into ``log_dir/train`` for TensorBoard's PyTorch
    profiler plugin.

    Args:
        log_dir: directory of the logs; do not share it with other runs.
        histogram_freq: epochs between weight histograms (0: none).
        write_graph: write the model's conceptual graph (its config, as Keras does) and
            torch's op graph traced on zeros shaped like the inputs (a failed trace warns and
            training goes on).
        write_images: write the weights as images (with ``histogram_freq``).
        write_steps_per_second: log training steps per second.
        update_freq: "epoch", "batch" or an integer number of batches between batch logs.
        profile_batch: the batch (from 1) or ``(start, stop)`` range to profile; 0: none.
        embeddings_freq: epochs between ``Embedding`` weight snapshots for the projector.
        embeddings_metadata: a metadata file for every embedding layer, or a dict of layer
            name to file.
        write_grad_norms: log per-layer gradient norms (see above).
        write_step_time: log the step's phase times (see above).

    Example:
        >>> tensorboard = distkeras.callbacks.TensorBoard(log_dir="./logs")
        >>> model.fit(x, y, epochs=2, callbacks=[tensorboard])
        >>> # then: tensorboard --logdir ./logs
    """

    def __init__(
        self,
        log_dir="logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq="epoch",
        profile_batch=0,
        embeddings_freq: int = 0,
        embeddings_metadata=None,
        write_grad_norms: bool = False,
        write_step_time: bool = False,
    ):
        super().__init__()
        for name, value in (
            ("histogram_freq", histogram_freq),
            ("embeddings_freq", embeddings_freq),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"TensorBoard: `{name}` must be a non-negative integer. "
                    f"Received: {name}={value!r}"
                )
        freq = 1 if update_freq == "batch" else update_freq
        if freq != "epoch" and (isinstance(freq, bool) or not isinstance(freq, int) or freq < 1):
            raise ValueError(
                "TensorBoard: `update_freq` must be 'epoch', 'batch' or a positive integer. "
                f"Received: update_freq={update_freq!r}"
            )
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = freq
        self.profile_batch = profile_batch
        self._start_batch, self._stop_batch = _parse_profile_batch(profile_batch)
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self.write_grad_norms = write_grad_norms
        self.write_step_time = write_step_time
        self._train_dir = os.path.join(self.log_dir, "train")
        self._val_dir = os.path.join(self.log_dir, "validation")
        self._writers: dict = {}
        self._chief = False
        self._training = False
        self._global_train_batch = 0
        self._graph_pending = False
        self._profiler = None
        self._profiled = False
        self._timer = None
        self._observer = None

    # --------------------------------------------------------------------------- helpers
    @property
    def _batch_level(self) -> bool:
        return self.update_freq != "epoch"

    def _listens_to(self, hook: str) -> bool:
        # Batch hooks only when something is logged per batch: epoch-only logging leaves the
        # training step without any callback call.
        profiling = self._stop_batch > 0
        if hook == "on_train_batch_end":
            return self._batch_level or profiling
        if hook == "on_train_batch_begin":
            return (self._batch_level and self.write_steps_per_second) or profiling
        return False

    def _writer(self, name: str):
        writer = self._writers.get(name)
        if writer is None:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(self._train_dir if name == "train" else self._val_dir)
            self._writers[name] = writer
        return writer

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    @staticmethod
    def _is_chief() -> bool:
        from distkeras import distributed

        return distributed.is_chief()

    # ---------------------------------------------------------------------------- train
    def on_train_begin(self, logs=None):
        self._chief = self._is_chief()
        self._training = True
        self._global_train_batch = 0
        self._profiled = False
        if not self._chief:
            return
        self._install_hooks()
        if self.write_graph:
            from distkeras.models.functional import Functional
            from distkeras.models.sequential import Sequential

            if isinstance(self.model, (Sequential, Functional)):
                tb_utils.write_keras_model_summary(self._writer("train"), self.model)
            self._graph_pending = True
            if getattr(self.model, "built", False):
                self._write_op_graph()

    def _install_hooks(self) -> None:
        from distkeras import backend

        model = self.model
        if self.write_step_time:
            self._timer = tb_utils.StepTimer(model, backend.get_device())
            model._step_timer = self._timer
        if self.write_grad_norms:
            self._observer = tb_utils.GradNormObserver(
                model,
                self.update_freq if self._batch_level else None,
                self.params.get("steps") if self.params else None,
            )
            model._gradient_observer = self._observer

    def _uninstall_hooks(self) -> None:
        model = self.model
        if self._timer is not None and model._step_timer is self._timer:
            model._step_timer = None
        if self._observer is not None and model._gradient_observer is self._observer:
            model._gradient_observer = None
        self._timer = self._observer = None

    def _write_op_graph(self) -> None:
        self._graph_pending = False
        problem = tb_utils.write_op_graph(self._writer("train"), self.model)
        if problem is not None:
            warnings.warn(
                f"TensorBoard: could not trace model '{self.model.name}' to write its op "
                f"graph ({problem}); training continues without it.",
                stacklevel=3,
            )

    def on_epoch_begin(self, epoch, logs=None):
        if not self._chief:
            return
        if self.write_steps_per_second:
            self._epoch_start_iterations = self._iterations()
            self._epoch_start_time = time.perf_counter()
        if self._timer is not None:
            self._timer.start_epoch()
        if self._observer is not None:
            self._observer.start_epoch()

    def on_train_batch_begin(self, batch, logs=None):
        if not self._chief:
            return
        upcoming = self._global_train_batch + 1
        if self.write_steps_per_second:
            self._batch_start_time = time.perf_counter()
        if (
            self._profiler is None
            and not self._profiled
            and self._start_batch <= upcoming <= self._stop_batch
        ):
            self._start_profiler()

    def on_train_batch_end(self, batch, logs=None):
        if not self._chief:
            return
        self._global_train_batch += 1
        step = self._global_train_batch
        if self._batch_level and step % self.update_freq == 0:
            writer = self._writer("train")
            if self.write_steps_per_second:
                elapsed = time.perf_counter() - self._batch_start_time
                writer.add_scalar("batch_steps_per_second", 1.0 / max(elapsed, 1e-12), step)
            for name, value in (logs or {}).items():
                scalar = as_scalar(value)
                if scalar is not None:
                    writer.add_scalar("batch_" + name, scalar, step)
            self._write_grad_norms(writer, step)
        if self._profiler is not None and step >= self._stop_batch:
            self._stop_profiler()

    def on_epoch_end(self, epoch, logs=None):
        if not self._chief:
            return
        logs = logs or {}
        train_logs = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val_logs = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "learning_rate"):
            train_logs["learning_rate"] = float(optimizer.learning_rate)
        if self.write_steps_per_second:
            elapsed = time.perf_counter() - self._epoch_start_time
            steps = self._iterations() - self._epoch_start_iterations
            train_logs["steps_per_second"] = steps / max(elapsed, 1e-12)
        writer = self._writer("train")
        for name, value in train_logs.items():
            scalar = as_scalar(value)
            if scalar is not None:
                writer.add_scalar("epoch_" + name, scalar, epoch)
        if self._timer is not None:
            for phase, seconds in self._timer.means().items():
                writer.add_scalar(f"step_time/{phase}", seconds, epoch)
        if not self._batch_level:
            self._write_grad_norms(writer, epoch)
        if val_logs:
            val_writer = self._writer("val")
            for name, value in val_logs.items():
                scalar = as_scalar(value)
                if scalar is not None:
                    val_writer.add_scalar("epoch_" + name, scalar, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        if self.embeddings_freq and epoch % self.embeddings_freq == 0:
            self._log_embeddings(epoch)
        if self._graph_pending:  # the model is built once an epoch has run
            self._write_op_graph()
        for name in list(self._writers):
            self._writers[name].flush()

    def on_train_end(self, logs=None):
        self._training = False
        if not self._chief:
            return
        if self._profiler is not None:
            self._stop_profiler()
        self._uninstall_hooks()
        self._close_writers()

    # ----------------------------------------------------------------------------- test
    def on_test_begin(self, logs=None):
        self._test_chief = self._is_chief()

    def on_test_end(self, logs=None):
        if not getattr(self, "_test_chief", False) or not logs:
            return
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not hasattr(optimizer, "iterations"):
            return
        writer = self._writer("val")
        step = self._iterations()
        for name, value in logs.items():
            scalar = as_scalar(value)
            if scalar is not None:
                writer.add_scalar(f"evaluation_{name}_vs_iterations", scalar, step)
        writer.flush()
        if not self._training:  # evaluate() outside fit: no on_train_end will close it
            self._close_writers()

    # ---------------------------------------------------------------------------- pieces
    def _iterations(self) -> int:
        optimizer = getattr(self.model, "optimizer", None)
        return int(optimizer.iterations) if optimizer is not None else 0

    def _write_grad_norms(self, writer, step: int) -> None:
        if self._observer is None:
            return
        norms = self._observer.read()
        for layer_name, value in (norms or {}).items():
            writer.add_scalar(f"grad_norm/{layer_name}", value, step)

    def _weight_items(self):
        """(tag stem, numpy value) of every weight, per layer, in Keras's order."""
        from distkeras import backend

        seen: set[str] = set()
        layers = list(getattr(self.model, "layers", []))
        if not layers and hasattr(self.model, "_weight_spec_list"):
            layers = [self.model]
        for layer in layers:
            for spec in layer._weight_spec_list():
                stem = f"{layer.name}/{spec.name.replace(':', '_')}"
                unique, k = stem, 1
                while unique in seen:
                    unique, k = f"{stem}_{k}", k + 1
                seen.add(unique)
                yield unique, backend.to_numpy(spec.keras_value())

    def _log_weights(self, epoch: int) -> None:
        writer = self._writer("train")
        for stem, value in self._weight_items():
            writer.add_histogram(stem + "/histogram", value, epoch)
            if self.write_images:
                image = tb_utils.weight_image(value)
                if image is not None:
                    writer.add_images(stem + "/image", image, epoch, dataformats="NHWC")

    def _log_embeddings(self, epoch: int) -> None:
        from distkeras.layers import Embedding

        metadata = self.embeddings_metadata
        layers = [
            layer for layer in getattr(self.model, "layers", []) if isinstance(layer, Embedding)
        ]
        if isinstance(metadata, dict):
            unknown = set(metadata) - {layer.name for layer in layers}
            if unknown:
                raise ValueError(
                    "Unrecognized `Embedding` layer names passed to "
                    f"`distkeras.callbacks.TensorBoard` `embeddings_metadata` argument: "
                    f"{sorted(unknown)}"
                )
        writer = self._writer("train")
        for layer in layers:
            path = metadata if isinstance(metadata, str) else (metadata or {}).get(layer.name)
            rows, header = tb_utils.read_metadata(path) if path else (None, None)
            writer.add_embedding(
                layer.get_weights()[0],
                metadata=rows,
                metadata_header=header,
                global_step=epoch,
                tag=layer.name,
            )

    def _start_profiler(self) -> None:
        import torch

        activities = [torch.profiler.ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        try:
            self._profiler = torch.profiler.profile(
                activities=activities,
                on_trace_ready=torch.profiler.tensorboard_trace_handler(self._train_dir),
            )
            self._profiler.start()
        except Exception as err:  # profiling must never stop training
            warnings.warn(f"TensorBoard: failed to start the profiler: {err}", stacklevel=3)
            self._profiler = None

    def _stop_profiler(self) -> None:
        profiler, self._profiler = self._profiler, None
        try:
            profiler.stop()
        except Exception as err:
            warnings.warn(f"TensorBoard: failed to stop the profiler: {err}", stacklevel=3)
        self._profiled = True

    def get_config(self) -> dict:
        return {
            "log_dir": self.log_dir,
            "histogram_freq": self.histogram_freq,
            "write_graph": self.write_graph,
            "write_images": self.write_images,
            "write_steps_per_second": self.write_steps_per_second,
            "update_freq": self.update_freq,
            "profile_batch": self.profile_batch,
            "embeddings_freq": self.embeddings_freq,
            "embeddings_metadata": self.embeddings_metadata,
            "write_grad_norms": self.write_grad_norms,
            "write_step_time": self.write_step_time,
        }
