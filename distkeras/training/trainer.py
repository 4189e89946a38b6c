"""The training engine mixed into ``Model``: compile, fit, evaluate, predict.

The per-step path is kept as short as a hand-written torch loop: batches are views of tensors
converted once, metrics and the loss tracker accumulate on the device, nothing reads a value
back to the host except a throttled progress bar, and the optimizer updates all parameters
with a few multi-tensor kernels. Under several workers the same loop runs on every rank on its
part of each global batch; gradients and metric sums are all-reduced (see ``distributed``).
"""

from __future__ import annotations

import sys

import torch

from distkeras import backend, mixed_precision
from distkeras import callbacks as callbacks_module
from distkeras import optimizers as optimizers_module
from distkeras.distributed.comm import POSITION
from distkeras.distributed.exits import failure_scope
from distkeras.layers.base import CALL_CONTEXT
from distkeras.training import data as data_module
from distkeras.training import preemption
from distkeras.training.compile_utils import CompiledLoss, CompiledMetrics
from distkeras.training.custom_loop import runner_for
from distkeras.training.step_context import StepContext
from distkeras.training.steps import CompileMetrics, KerasSteps, overrides_predict_step
from distkeras.utils.py_dataset import PyDataset
from distkeras.utils.tree import map_structure


class Trainer(KerasSteps):
    """compile/fit/evaluate/predict for ``Model`` (the overridable steps: ``KerasSteps``)."""

    def __init__(self):
        self.compiled = False
        self.stop_training = False
        self.optimizer = None
        self.history = None
        self._compile_config = None
        self._compiled_loss = None
        self._compiled_metrics = None
        self._step = None
        # Hooks for diagnostics callbacks: an object with phase(name) called at the end of
        # each step phase, and a callable(model) run once gradients are final.
        self._step_timer = None
        self._gradient_observer = None
        # A callback may set these in on_train_begin to resume (BackupAndRestore): the epoch,
        # the steps of it already done, and that epoch's loss/metric sums so far.
        self._initial_epoch = None
        self._initial_step = None
        self._resume_epoch_state = None

    # --------------------------------------------------------------------------- compile
    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile="auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Configures the model for training, as ``keras.Model.compile``.

        Example:
            >>> model.compile(optimizer="adam", loss="categorical_crossentropy",
            ...               metrics=["accuracy"])
        """
        self.optimizer = optimizers_module.get(optimizer)
        names = self._output_names()
        self._compiled_loss = None if loss is None else CompiledLoss(loss, loss_weights, names)
        self._compiled_metrics = CompiledMetrics(metrics, weighted_metrics, names)
        # Keras's trackers, for the model's own steps (the fused step keeps device sums).
        from distkeras.metrics import Mean

        self._loss_tracker = Mean(name="loss")
        self._compile_metrics = (
            CompileMetrics(self) if metrics is not None or weighted_metrics is not None else None
        )
        self.jit_compile = jit_compile is True
        self._auto_scale_loss = bool(auto_scale_loss)  # loss scaling under mixed_float16
        self.run_eagerly = run_eagerly
        self._compile_config = _compile_config(
            optimizer, loss, loss_weights, metrics, weighted_metrics
        )
        self._step = None
        self.compiled = True

    def _output_names(self) -> list[str]:
        outputs = getattr(self, "_outputs", None)
        if outputs and len(outputs) > 1:
            return [t._keras_history[0].name for t in outputs]
        structure = getattr(self, "_output_structure", None)
        if isinstance(structure, dict):
            return sorted(structure)
        return ["output"] if not outputs else [outputs[0]._keras_history[0].name]

    def _require_compiled(self, what: str) -> None:
        if not self.compiled:
            # ValueError, as Keras raises, so ported `except ValueError` code keeps working.
            raise ValueError(
                f"Model '{self.name}': you must call compile() before calling {what}()."
            )

    def _step_context(self) -> StepContext:
        if self._step is None:
            self._step = StepContext(self)
        return self._step

    @property
    def metrics_names(self) -> list[str]:
        # Keras's order: the loss, the compiled metrics, then each output's own loss.
        names = ["loss"]
        if self._compiled_metrics is not None and self._compiled_metrics.built:
            names += self._compiled_metrics.names()
        compiled_loss = self._compiled_loss
        if compiled_loss is not None and len(compiled_loss.output_names) > 1:
            names += [
                f"{name}_loss"
                for name, loss in zip(compiled_loss.output_names, compiled_loss.losses)
                if loss is not None
            ]
        return names

    def _logs_as_list(self, logs: dict):
        """evaluate()'s list: ``metrics_names`` order, then any other logs by name."""
        names = self.metrics_names
        values = [logs[name] for name in names if name in logs]
        values += [logs[key] for key in sorted(logs) if key not in names]
        return values[0] if len(values) == 1 else values

    # ------------------------------------------------------------------------------- fit
    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs: int = 1,
        verbose="auto",
        callbacks=None,
        validation_split: float = 0.0,
        validation_data=None,
        shuffle: bool = True,
        class_weight=None,
        sample_weight=None,
        initial_epoch: int = 0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
    ):
        """Trains the model; returns a ``History``. ``batch_size`` is the global batch.

        Example:
            >>> history = model.fit(x_train, y_train, epochs=5, batch_size=32)
        """
        self._require_compiled("fit")
        data_module.check_fit_arguments(
            batch_size=batch_size,
            epochs=epochs,
            initial_epoch=initial_epoch,
            validation_split=validation_split,
            steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps,
            validation_freq=validation_freq,
            class_weight=class_weight,
        )
        x, y = data_module.as_array_structure(x), data_module.as_array_structure(y)
        step = self._step_context()
        step.begin_fit()
        if validation_split and validation_data is None:
            if data_module.is_iterable_data(x):
                raise ValueError("validation_split is only supported for array inputs.")
            (x, y, sample_weight), validation_data = data_module.split_validation(
                _as_tensors(x, "x"), _as_tensors(y, "y"), sample_weight, validation_split
            )
        if class_weight is not None:
            sample_weight = data_module.class_weight_to_sample_weight(
                y, class_weight, sample_weight
            )
        train = step.make_data(
            x, y, sample_weight, batch_size, shuffle=shuffle, steps=steps_per_epoch
        )
        val = None
        if validation_data is not None:
            val = step.make_data(
                *_unpack_validation(validation_data),
                validation_batch_size or batch_size,
                shuffle=False,
                steps=validation_steps,
            )
        if step.rank == 0:  # the arrays are the same on every rank: one warning is enough
            data_module.warn_if_not_finite(train, "fit()")
            data_module.warn_if_not_finite(val, "fit() validation data")

        verbose = 1 if verbose == "auto" else int(verbose)
        self.history = callbacks_module.History()
        callback_list = self._callbacks(callbacks, verbose, epochs, train.steps_per_epoch)
        self.stop_training = False
        self._initial_epoch = self._initial_step = self._resume_epoch_state = None
        step = runner_for(self, step)  # the model's own train_step, or the fused one
        # failure_scope: a rank leaving fit by an exception or sys.exit tells its peers.
        with preemption.PreemptionGuard() as guard, failure_scope():
            callback_list.on_train_begin()
            if self._initial_epoch is not None:
                initial_epoch = self._initial_epoch
            logs = self._epochs(
                step, train, val, callback_list, guard, initial_epoch, epochs, validation_freq
            )
        callback_list.on_train_end(logs)
        step.end_fit()
        return self.history

    def _epochs(
        self,
        step,
        train,
        val,
        callback_list,
        guard,
        initial_epoch: int,
        epochs: int,
        validation_freq,
    ) -> dict:
        # A resume from a mid-epoch checkpoint skips the steps already done: the data order
        # depends only on (seed, epoch), so skipping reproduces the position exactly.
        skip = self._initial_step or 0
        logs = {}
        for epoch in range(initial_epoch, epochs):
            step.reset_metrics(resume_state=self._resume_epoch_state if skip else None)
            callback_list.on_epoch_begin(epoch)
            for index, batch in enumerate(train.epoch(epoch)):
                if index < skip:
                    continue
                POSITION.epoch, POSITION.step = epoch, index  # named in collective errors
                callback_list.on_train_batch_begin(index)
                step.rng.begin(batch)  # per-sample random draws: worker-count independent
                step.train_step(batch, vote=guard.requested)
                step.rng.end()
                if callback_list.listens("on_train_batch_end"):
                    callback_list.on_train_batch_end(index, step.lazy_logs())
                if step.stop_agreed(guard.requested):
                    self._preempted(callback_list, step, epoch, index + 1)
                if self.stop_training:
                    break
            skip = 0
            POSITION.step = None
            step.average_non_trainable()
            logs = step.epoch_logs()
            if val is not None and _should_validate(epoch, validation_freq):
                # Keras runs validation with the fit's callbacks (their on_test_* hooks).
                val_logs = self._run_evaluation(val, callback_list)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            logs = dict(sorted(logs.items()))
            callback_list.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        return logs

    def _preempted(self, callback_list, step, epoch: int, steps_done: int) -> None:
        """Every rank agreed to stop after this step: save what can be saved, then exit."""
        state = step.epoch_state()
        saved = False
        for callback in callback_list.callbacks:
            on_preemption = getattr(callback, "on_preemption", None)
            if on_preemption is not None:
                saved = bool(on_preemption(epoch, steps_done, state)) or saved
        step.end_fit()
        stopped = preemption.TrainingPreempted(epoch, steps_done, saved)
        if step.rank == 0:
            # A SystemExit with a code prints nothing: say in the job's log why it ended.
            print(f"distkeras: {stopped}", file=sys.stderr, flush=True)
        raise stopped

    def _callbacks(self, callbacks, verbose: int, epochs: int, steps):
        from distkeras import distributed

        user = list(
            callbacks.callbacks
            if isinstance(callbacks, callbacks_module.CallbackList)
            else callbacks or []
        )
        extra = [self.history]
        if (
            verbose
            and distributed.is_chief()
            and not any(isinstance(c, callbacks_module.ProgbarLogger) for c in user)
        ):
            extra.insert(0, callbacks_module.ProgbarLogger())
        return callbacks_module.CallbackList(
            extra[:-1] + user + extra[-1:],
            model=self,
            verbose=verbose,
            epochs=epochs,
            steps=steps,
        )

    # -------------------------------------------------------------------------- evaluate
    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict: bool = False,
    ):
        """Loss and metrics on the data: ``[loss, *metrics]``, a float, or a dict."""
        self._require_compiled("evaluate")
        step = self._step_context()
        step.begin_fit()
        data = step.make_data(x, y, sample_weight, batch_size, shuffle=False, steps=steps)
        callback_list = callbacks_module.CallbackList(callbacks, model=self, steps=steps)
        logs = self._run_evaluation(data, callback_list)
        if return_dict:
            return logs
        return self._logs_as_list(logs)

    def _run_evaluation(self, data, callback_list) -> dict:
        step = runner_for(self, self._step_context())
        step.reset_metrics()
        callback_list.on_test_begin()
        with torch.no_grad():
            for index, batch in enumerate(data.epoch(0)):
                callback_list.on_test_batch_begin(index)
                step.test_step(batch)
                if callback_list.listens("on_test_batch_end"):
                    callback_list.on_test_batch_end(index, step.lazy_logs())
        logs = dict(sorted(step.epoch_logs().items()))
        callback_list.on_test_end(logs)
        return logs

    # --------------------------------------------------------------------------- predict
    def predict(self, x, batch_size: int | None = None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` as numpy, complete and in order on every worker."""
        step = self._step_context()
        step.begin_fit()  # rank, world size and device: predict may come before any fit
        data = step.make_data(x, None, None, batch_size, shuffle=False, steps=steps)
        callback_list = callbacks_module.CallbackList(callbacks, model=self)
        callback_list.on_predict_begin()
        custom_predict = overrides_predict_step(self)
        parts = []
        with torch.no_grad(), mixed_precision.autocast():
            for index, batch in enumerate(data.epoch(0)):
                if index == 0:
                    step.sync_for_inference(batch)
                callback_list.on_predict_batch_begin(index)
                if custom_predict:
                    outputs = self.predict_step(batch.x)
                else:
                    outputs = self(batch.x, training=False)
                parts.append(map_structure(backend.to_numpy, outputs))
                if callback_list.listens("on_predict_batch_end"):
                    callback_list.on_predict_batch_end(index, {"outputs": outputs})
        callback_list.on_predict_end()
        if not parts:
            raise ValueError(f"Model '{self.name}': predict() received no samples.")
        return step.gather_predictions(parts, data)

    # ---------------------------------------------------------------------- on a batch
    def train_on_batch(
        self, x, y=None, sample_weight=None, class_weight=None, return_dict: bool = False
    ):
        """One optimizer step on one batch; returns the batch's loss and metrics."""
        self._require_compiled("train_on_batch")
        if class_weight is not None:
            sample_weight = data_module.class_weight_to_sample_weight(
                y, class_weight, sample_weight
            )
        step = self._step_context()
        step.begin_fit()
        step = runner_for(self, step)
        step.reset_metrics()
        for batch in step.make_data(x, y, sample_weight, None, shuffle=False, whole=True).epoch(0):
            step.rng.begin(batch)
            step.train_step(batch)
            step.rng.end()
        return self._batch_result(step.epoch_logs(), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        self._require_compiled("test_on_batch")
        step = self._step_context()
        step.begin_fit()
        step = runner_for(self, step)
        step.reset_metrics()
        with torch.no_grad():
            for batch in step.make_data(x, y, sample_weight, None, shuffle=False, whole=True).epoch(
                0
            ):
                step.test_step(batch)
        return self._batch_result(step.epoch_logs(), return_dict)

    def predict_on_batch(self, x):
        with torch.no_grad(), mixed_precision.autocast():
            x = data_module.as_array_structure(x)
            outputs = self(map_structure(data_module.to_model_input, x), training=False)
        return map_structure(backend.to_numpy, outputs)

    def _batch_result(self, logs: dict, return_dict: bool):
        logs = dict(sorted(logs.items()))
        if return_dict:
            return logs
        return self._logs_as_list(logs)


def _as_tensors(x, name: str):
    if x is None:
        return None
    return map_structure(lambda a: data_module._to_cpu_tensor(a, name), x)


def _unpack_validation(validation_data):
    if isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3):
        x, y, *rest = validation_data
        return x, y, (rest[0] if rest else None)
    if data_module.is_iterable_data(validation_data) or isinstance(validation_data, PyDataset):
        return validation_data, None, None
    raise ValueError(
        "validation_data must be (x_val, y_val), (x_val, y_val, sample_weight) or an "
        f"iterable of batches. Received: {type(validation_data).__name__}"
    )


def _should_validate(epoch: int, validation_freq) -> bool:
    if isinstance(validation_freq, int):
        return (epoch + 1) % validation_freq == 0
    return (epoch + 1) in validation_freq


def _compile_config(optimizer, loss, loss_weights, metrics, weighted_metrics) -> dict:
    def describe(value):
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        if isinstance(value, (list, tuple)):
            return [describe(v) for v in value]
        if isinstance(value, dict):
            return {k: describe(v) for k, v in value.items()}
        if hasattr(value, "get_config"):  # Keras's layout, so Keras revives these objects too
            from distkeras.saving import serialize_keras_object

            return serialize_keras_object(value)
        return getattr(value, "__name__", repr(value))

    return {
        "optimizer": describe(optimizer),
        "loss": describe(loss),
        "loss_weights": describe(loss_weights),
        "metrics": describe(metrics),
        "weighted_metrics": describe(weighted_metrics),
    }


__all__ = ["Trainer", "CALL_CONTEXT"]
