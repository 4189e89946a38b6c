"""Per-fit state and the train/test step: what runs for every batch.

Kept apart from ``trainer.py`` (the public API) so the hot path reads top to bottom:
forward, loss, backward, gradient all-reduce (several workers), optimizer step, constraints,
device-side metric updates. Nothing here reads a tensor back to the host per step.
"""

from __future__ import annotations

import contextlib
import random
import warnings

import numpy as np
import torch

from distkeras import backend, distributed, mixed_precision
from distkeras.callbacks.base import LazyLogs
from distkeras.layers.base import CALL_CONTEXT
from distkeras.training import data as data_module
from distkeras.training import preemption
from distkeras.training.compile_utils import flatten_outputs
from distkeras.training.py_dataset_data import PyDatasetData
from distkeras.training.randomness import TrainingRandomness
from distkeras.utils.py_dataset import PyDataset
from distkeras.utils.tree import flatten


class StepContext:
    """Everything the per-batch steps of one model need, prepared once."""

    def __init__(self, model):
        self.model = model
        self.comm = None
        self.reducer = None
        self.params: list[torch.nn.Parameter] | None = None
        self.prepared = False
        # compile(jit_compile=True): the forward pass of train/test steps runs through
        # torch.compile (loss, backward and optimizer stay eager). Made once per compile(),
        # so later fits reuse the compiled graphs.
        self.forward = torch.compile(model) if getattr(model, "jit_compile", False) else model
        self.rng = TrainingRandomness(model)  # per-sample random draws in training steps
        self._votes = preemption.VoteReader()  # the ranks' stop vote after each step

    # ----------------------------------------------------------------------- set-up
    def begin_fit(self) -> None:
        """Joins the process group (if launched) and resolves the step's settings."""
        self.comm = distributed.communicator()
        self.rank, self.world_size = self.comm.rank, self.comm.world_size
        self.device = backend.get_device()
        self.names = self.model._output_names()
        self.autocast_dtype = mixed_precision.autocast_dtype()
        if self.autocast_dtype != torch.float16 or not getattr(
            self.model, "_auto_scale_loss", True
        ):
            self.grad_scaler = None
        elif getattr(self, "grad_scaler", None) is None:
            # Kept across fits, as Keras keeps a LossScaleOptimizer's scale.
            self.grad_scaler = mixed_precision.DynamicLossScale(self.device)
        if not hasattr(self.model, "_shuffle_seed"):
            seed = backend.global_seed()
            if seed is None:
                # Python's generator, as Keras: a program that seeds `random` (and never calls
                # set_random_seed) shuffles, and drops out, the same way on every run.
                seed = random.randrange(2**31)
            # Every rank must walk the same permutation: rank 0's seed wins.
            self.model._shuffle_seed = int(self.comm.broadcast_object(seed))
        self.rng.prepare(self.model._shuffle_seed)

    def end_fit(self) -> None:
        self.rng.end()
        if self.reducer is not None:
            self.reducer.close()
            self.reducer = None
        self.prepared = False
        self._votes = preemption.VoteReader()  # a vote in flight belongs to its fit only

    def make_data(
        self, x, y, sample_weight, batch_size, *, shuffle: bool, steps=None, whole: bool = False
    ):
        if x is None:
            raise ValueError("No data given: pass x (and y) to this method.")
        if isinstance(x, PyDataset):
            # Stand-ins for tf.data datasets built unshuffled keep their order, as Keras's fit
            # never reorders a tf.data.Dataset (a user's PyDataset is shuffled, as in Keras).
            shuffle = shuffle and not getattr(x, "_keeps_batch_order", False)
            return self._py_dataset_data(x, y, shuffle=shuffle, steps=steps)
        if data_module.is_iterable_data(x):
            if y is not None:
                raise ValueError(
                    "When x is a generator, DataLoader or Dataset, y must be None: yield "
                    "(x, y) pairs from it instead."
                )
            if isinstance(x, torch.utils.data.Dataset) and not hasattr(x, "__next__"):
                x = data_module.dataset_to_loader(
                    x, batch_size or 32, shuffle, self.rank, self.world_size
                )
            data = data_module.IterableData(x, steps, world_size=self.world_size, rank=self.rank)
            if self.world_size > 1:
                self._check_same_data({"steps": data.steps_per_epoch})
            return data
        if whole:
            batch_size = int(flatten(x)[0].shape[0]) if hasattr(flatten(x)[0], "shape") else None
        if batch_size is not None and self.world_size > 1 and batch_size < self.world_size:
            raise ValueError(
                f"batch_size={batch_size} is the global batch and must be at least the number "
                f"of workers ({self.world_size})."
            )
        data = data_module.ArrayData(
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=getattr(self.model, "_shuffle_seed", 0),
            rank=self.rank,
            world_size=self.world_size,
            steps=steps,
        )
        if self.world_size > 1:
            self._check_same_data(
                {
                    "samples": data.num_samples,
                    "batch_size": data.batch_size,
                    "steps": data.steps_per_epoch,
                    "shuffle": shuffle,
                }
            )
        self._check_inputs(data)
        return data

    def _py_dataset_data(self, dataset, y, *, shuffle: bool, steps):
        if y is not None:
            raise ValueError(
                "When x is a PyDataset, y must be None: return (x, y) from its __getitem__."
            )
        if dataset.num_batches is None and steps is None:
            raise ValueError(
                f"{type(dataset).__name__} has no length (num_batches is None): pass "
                "steps_per_epoch (or steps) to say how many batches an epoch has."
            )
        data = PyDatasetData(
            dataset,
            shuffle=shuffle,
            seed=getattr(self.model, "_shuffle_seed", 0),
            rank=self.rank,
            world_size=self.world_size,
            steps=steps,
        )
        if self.world_size > 1:
            self._check_same_data({"steps": data.steps_per_epoch, "shuffle": shuffle})
        return data

    def _check_same_data(self, description: dict) -> None:
        # Workers with different step counts would mismatch collectives and hang.
        from distkeras.distributed import sync

        sync.check_same_data(description, self.comm)

    def _check_inputs(self, data) -> None:
        """Checks ranks before the first step and casts arrays once to their Input's dtype.

        Keras converts inputs to ``Input(dtype=...)``: integer pixels feed a float model and
        float ids an Embedding.
        """
        expected = getattr(self.model, "inputs", None) or []
        data_module.check_text_inputs(expected, data.x)
        x = data.x
        if isinstance(x, dict):
            by_name = {t.name: t for t in expected}
            slots = [(by_name.get(key), key) for key in x]
        elif isinstance(x, torch.Tensor):
            slots = [(expected[0], None)] if len(expected) == 1 else []
        elif all(isinstance(t, torch.Tensor) for t in x) and len(x) == len(expected):
            x = list(x)
            slots = list(zip(expected, range(len(x))))
        else:
            slots = []
        for symbolic, key in slots:
            tensor = x if key is None else x[key]
            if symbolic is None or symbolic.dtype == "string":  # text: conform_input checks it
                continue
            if len(symbolic.shape) != tensor.ndim:
                raise ValueError(
                    f"Model '{self.model.name}' expects input '{symbolic.name}' of rank "
                    f"{len(symbolic.shape)} (shape {symbolic.shape}); received data of shape "
                    f"{tuple(tensor.shape)}."
                )
            dtype = backend.standardize_dtype(symbolic.dtype)
            if tensor.dtype != dtype and not (
                tensor.is_floating_point() and dtype.is_floating_point
            ):
                if key is None:
                    x = tensor.to(dtype)
                else:
                    x[key] = tensor.to(dtype)
        data.x = type(data.x)(x) if isinstance(data.x, tuple) else x
        for target in flatten(data.y) if data.y is not None else []:
            if not (
                target.is_floating_point()
                or target.dtype
                in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)
            ):
                raise TypeError(f"Labels must be numeric. Received dtype {target.dtype}.")

    def _prepare(self, y_true: list, y_pred: list) -> None:
        """After the first forward pass (the model is built): optimizer, metrics, sync."""
        model = self.model
        # Keras's trainable_weights order, so optimizer state saves in Keras's order too.
        self.params = model.trainable_weights
        self.reg_terms = model.regularization_terms()
        self.constraints = [
            (spec.param, spec.constraint)
            for spec in model._weight_spec_list()
            if spec.constraint is not None and spec.param.requires_grad
        ]
        optimizer = model.optimizer
        if optimizer is not None and not getattr(optimizer, "built", False):
            optimizer.build(self.params)
        metrics = model._compiled_metrics
        if metrics is not None and not metrics.built:
            losses = model._compiled_loss.losses if model._compiled_loss else None
            metrics.build(y_true, y_pred, losses)
        if self.world_size > 1:
            from distkeras.distributed import sync

            sync.check_and_broadcast(model, self.comm)
            model._weights_synced = True
            # The batch loss (and each output's, with several) rides in the gradient
            # all-reduce: the per-step logs are the global batch's on every rank.
            outputs = len(model._compiled_loss.losses) if model._compiled_loss else 1
            self._loss_slots = 1 + (outputs if outputs > 1 else 0)
            self.reducer = sync.make_reducer(self.params, self.comm, loss_slots=self._loss_slots)
        self.metric_objects = metrics.metrics if metrics is not None else []
        self.prepared = True
        if getattr(self, "_pending_resume", None) is not None:
            self._apply_resume()

    def reset_metrics(self, resume_state: dict | None = None) -> None:
        """Zeroes the epoch's sums; ``resume_state`` (from ``epoch_state``) restores them."""
        self.loss_total = torch.zeros((), device=self.device)
        self.output_loss_totals = None
        # Under several workers: the running sums of the GLOBAL batch losses (the same on
        # every rank), which the per-step logs read; None until a training step adds to them.
        self.global_loss_totals = None
        self.samples_seen = 0
        if self.model._compiled_metrics is not None:
            self.model._compiled_metrics.reset_state()
        self._pending_resume = resume_state
        if resume_state is not None and self.prepared:
            self._apply_resume()

    def epoch_state(self) -> dict:
        """The epoch's global loss/metric sums so far (collective: all ranks call it).

        Reduces copies: training may go on after it (a periodic backup), adding to the
        running sums that epoch_logs reduces at the end of the epoch.
        """
        states = [t.detach().clone() for t in self._state_tensors()]
        if self.world_size > 1:
            from distkeras.distributed import sync

            sync.all_reduce_sum(states, self.comm)
        states = [t.cpu() for t in states]
        outputs = None if self.output_loss_totals is None else states[1]
        return {
            "loss_total": states[0],
            "output_loss_totals": outputs,
            "samples_seen": self.samples_seen,
            "metrics": states[1 if outputs is None else 2 :],
        }

    def _apply_resume(self) -> None:
        state, self._pending_resume = self._pending_resume, None
        self.samples_seen = int(state["samples_seen"])
        if self.reducer is not None:  # the saved sums are global: every rank's logs start there
            saved = [state["loss_total"].reshape(1)]
            if state.get("output_loss_totals") is not None and self._loss_slots > 1:
                saved.append(state["output_loss_totals"].reshape(-1))
            totals = torch.cat(saved).to(self.device, torch.float32)
            self.global_loss_totals = torch.zeros(self._loss_slots, device=self.device)
            self.global_loss_totals[: totals.numel()] = totals
        if self.rank != 0:
            return  # the saved sums are global: one rank holds them, the others add to zero
        with torch.no_grad():
            self.loss_total.copy_(state["loss_total"])
            if state.get("output_loss_totals") is not None:
                self.output_loss_totals = state["output_loss_totals"].to(self.device)
            metrics = [v for m in self.metric_objects for v in m.variables]
            for variable, saved in zip(metrics, state.get("metrics") or []):
                variable.copy_(saved)

    def stop_agreed(self, local_vote: bool) -> bool:
        """True on every rank once any rank voted to stop in a step's all-reduce."""
        if self.world_size == 1:
            return local_vote
        if self.reducer is None or not hasattr(self.reducer, "votes"):
            return local_vote
        return self._votes.agreed(self.reducer.votes())

    # ------------------------------------------------------------------------- steps
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _forward_loss(self, batch, training: bool):
        model = self.model
        if not self.prepared:
            # A first inference pass builds the model and shows output shapes (to resolve
            # metrics) before weights are synchronised in place, outside any autograd graph.
            with torch.no_grad(), self._autocast():
                probe = flatten_outputs(
                    model(batch.x, training=False), self.names, "the model's outputs"
                )
            self._prepare(self._targets(batch, probe), probe)
        with self._autocast():
            y_pred = self.forward(batch.x, training=training)
        y_pred_flat = flatten_outputs(y_pred, self.names, "the model's outputs")
        y_true_flat = self._targets(batch, y_pred_flat)
        loss, per_output = model._compiled_loss(
            y_true_flat, y_pred_flat, batch.sample_weight, batch.size, batch.global_size
        )
        if self.reg_terms:
            penalty = sum(reg(param) for reg, param in self.reg_terms)
            # Weight penalties are the same on every worker: each adds its 1/N share.
            loss = loss + (penalty / self.world_size if self.world_size > 1 else penalty)
        if CALL_CONTEXT.loss_layers:
            # Per-call losses (activity penalties) are means over this worker's part of the
            # batch; weighting by its share makes the workers' sum the global-batch mean.
            share = batch.size / batch.global_size
            for layer in CALL_CONTEXT.loss_layers:
                for extra in layer._call_losses:
                    loss = loss + (extra * share if share != 1 else extra)
        return loss, per_output, y_true_flat, y_pred_flat

    def _targets(self, batch, y_pred_flat: list) -> list:
        if batch.y is None:
            return [None] * len(y_pred_flat)
        return flatten_outputs(batch.y, self.names, "y")

    def train_step(self, batch, vote: bool = False) -> None:
        """One optimizer step; ``vote`` asks all ranks to stop after it (preemption)."""
        timer = self.model._step_timer  # set by TensorBoard(write_step_time=True)
        if timer is not None:
            timer.phase("data")
        loss, per_output, y_true, y_pred = self._forward_loss(batch, training=True)
        params = self.params
        if not params:  # nothing to train (all frozen): Keras warns and still reports
            warnings.warn("The model does not have any trainable weights.", stacklevel=2)
            self._track(loss, per_output, batch, y_true, y_pred)
            return
        if self.reducer is not None:
            losses = loss if self._loss_slots == 1 else self._loss_vector(loss, per_output)
            self.reducer.prepare(vote=1.0 if vote else 0.0, losses=losses)
        if self.grad_scaler is not None:
            (loss * self.grad_scaler.scale).backward()
        else:
            loss.backward()
        if timer is not None:
            timer.phase("forward_backward")
        if self.reducer is not None:
            self.reducer.finish()
            if timer is not None:
                timer.phase("communication")
        if self.model._gradient_observer is not None:
            self.model._gradient_observer(self.model)
        optimizer = self.model.optimizer
        if self.grad_scaler is not None:
            self._scaled_optimizer_step(optimizer, params)
        else:
            optimizer.step(params)
        if timer is not None:
            timer.phase("optimizer")
        # Dropping the gradients (rather than zeroing them with a kernel) lets the next
        # backward write fresh ones without an accumulate pass, as torch's
        # zero_grad(set_to_none=True); it is one attribute store per parameter, no kernel.
        for param in params:
            param.grad = None
        if self.constraints:
            with torch.no_grad():
                for param, constraint in self.constraints:
                    param.copy_(constraint(param))
        if self.reducer is not None:
            if self.global_loss_totals is None:
                self.global_loss_totals = torch.zeros(self._loss_slots, device=self.device)
            self.global_loss_totals.add_(self.reducer.summed_losses(), alpha=batch.global_size)
        self._track(loss, per_output, batch, y_true, y_pred)

    def _loss_vector(self, loss, per_output) -> torch.Tensor:
        """[total, output 1, output 2, ...] for the reducer (an output without a loss: 0)."""
        values = [v.detach().float() if v is not None else None for v in per_output]
        zero = loss.detach().float().new_zeros(())
        return torch.stack([loss.detach().float(), *(zero if v is None else v for v in values)])

    def _scaled_optimizer_step(self, optimizer, params) -> None:
        scaler = self.grad_scaler
        found_inf = scaler.unscale_([p.grad for p in params if p.grad is not None])
        if self.world_size > 1:
            self.comm.all_reduce(found_inf, op="max")
        # Loss scaling must skip steps whose gradients overflowed; that needs the flag.
        if not bool(found_inf):
            optimizer.step(params)
        scaler.update(found_inf)

    def test_step(self, batch) -> None:
        loss, per_output, y_true, y_pred = self._forward_loss(batch, training=False)
        self._track(loss, per_output, batch, y_true, y_pred)

    @backend.without_grad
    def _track(self, loss, per_output, batch, y_true, y_pred) -> None:
        # Sum of loss x global batch: summing it over workers and dividing by the
        # samples seen gives the one-worker, batch-size-weighted epoch loss.
        self.loss_total.add_(loss.detach().float(), alpha=batch.global_size)
        if len(per_output) > 1:
            if self.output_loss_totals is None:
                self.output_loss_totals = torch.zeros(len(per_output), device=self.device)
            values = [
                v.detach().float() if v is not None else self.loss_total.new_zeros(())
                for v in per_output
            ]
            self.output_loss_totals.add_(torch.stack(values), alpha=batch.global_size)
        self.samples_seen += batch.global_size
        if self.metric_objects:
            self.model._compiled_metrics.update_state(y_true, y_pred, batch.sample_weight)

    # -------------------------------------------------------------------------- logs
    def _state_tensors(self) -> list[torch.Tensor]:
        states = [self.loss_total]
        if self.output_loss_totals is not None:
            states.append(self.output_loss_totals)
        for metric in getattr(self, "metric_objects", []):
            states.extend(metric.variables)
        return states

    def sync_for_inference(self, batch) -> None:
        """Before predict on several workers: every rank must use rank 0's weights.

        fit and evaluate synchronise in ``_prepare``; a predict that comes first (an unseeded
        or freshly loaded model) does it here, once per model.
        """
        if self.world_size == 1 or getattr(self.model, "_weights_synced", False):
            return
        from distkeras.distributed import sync

        if not self.model.built:
            with torch.no_grad():
                self.model(batch.x, training=False)
        sync.check_and_broadcast(self.model, self.comm)
        self.model._weights_synced = True

    def average_non_trainable(self) -> None:
        """End of an epoch on several workers: average non-trainable float weights.

        BatchNormalization's moving statistics follow each worker's own batches; averaging
        them (as Keras's mirrored strategy does on read) makes evaluate, predict and saved
        files agree on every rank. One all-reduce per epoch.
        """
        if self.world_size == 1 or not self.prepared:
            return
        frozen = [
            spec.param
            for spec in self.model._weight_spec_list()
            if not spec.trainable and spec.param.is_floating_point()
        ]
        if not frozen:
            return
        from distkeras.distributed import sync

        sync.all_reduce_sum(frozen, self.comm)
        with torch.no_grad():
            torch._foreach_mul_(frozen, 1.0 / self.world_size)

    def epoch_logs(self) -> dict:
        """Global loss and metrics: metric sums all-reduced once, then read to the host."""
        if not self.prepared:
            return {}
        if self.world_size > 1:
            from distkeras.distributed import sync

            sync.all_reduce_sum(self._state_tensors(), self.comm)
        return self._read_logs()

    def lazy_logs(self) -> LazyLogs:
        """This worker's running values, computed only if a callback reads them."""
        return LazyLogs(self._read_logs, {"loss": self._read_loss})

    def _read_loss(self) -> float:
        totals = self.global_loss_totals
        total = self.loss_total if totals is None else totals[0]
        return float(total) / max(self.samples_seen, 1)

    def _read_logs(self) -> dict:
        if not self.prepared:
            return {}
        seen = max(self.samples_seen, 1)
        if self.global_loss_totals is not None:  # one host copy: total, then each output's
            total, *per_output = self.global_loss_totals.tolist()
        else:
            total = float(self.loss_total)
            per_output = (
                None if self.output_loss_totals is None else self.output_loss_totals.tolist()
            )
        logs = {"loss": total / seen}
        if per_output and self.output_loss_totals is not None:
            losses = self.model._compiled_loss.losses
            for name, loss, total in zip(self.names, losses, per_output):
                if loss is not None:  # an output without a loss has no loss to report
                    logs[f"{name}_loss"] = total / seen
        metrics = self.model._compiled_metrics
        if metrics is not None and metrics.built:
            for name, metric in zip(metrics.names(), metrics.metrics):
                value = metric.result()
                logs[name] = float(value) if np.ndim(_host(value)) == 0 else _host(value)
        return logs

    def gather_predictions(self, parts: list, data):
        """Concatenates batch outputs; under several workers, reassembles the full order."""
        if self.world_size > 1:
            from distkeras.distributed import sync

            return sync.gather_ordered(parts, data, self.comm)
        return _concat(parts)


def _host(value):
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value


def _concat(parts: list):
    first = parts[0]
    if isinstance(first, dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(np.concatenate([p[i] for p in parts]) for i in range(len(first)))
    return np.concatenate(parts)
