"""The overridable steps of Keras 3's torch backend: what ``fit`` calls for each batch.

``Model`` gets Keras's ``train_step(data)``, ``test_step(data)``, ``predict_step(data)``,
``compute_loss(x, y, y_pred, sample_weight, training)``, ``compute_metrics``,
``get_metrics_result``, ``reset_metrics`` and the ``metrics`` property from this mixin, with
Keras's default implementations. A subclass that overrides any of them (or tracks its own
``Metric`` objects, or compiles without a loss) is trained by calling these methods, exactly as
Keras does (see ``training/custom_loop.py``); a model that overrides nothing runs the fused
built-in step of ``step_context.py``, which computes the same numbers faster.

Inside a step the loss is the mean over the batch this worker holds, as on one Keras process;
under several workers the gradients are weighted by the worker's share of the global batch
and summed before ``optimizer.apply`` reads them (``custom_loop.py``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import warnings

import torch

from distkeras.backend import without_grad
from distkeras.metrics.base import Metric
from distkeras.training.compile_utils import flatten_outputs
from distkeras.utils.tree import flatten
from distkeras.variables import WEIGHTS_VERSION

# Methods a Model subclass may override; fit/evaluate call them when it does.
OVERRIDABLE = ("train_step", "test_step", "compute_loss", "compute_metrics")
# Keras hooks of other backends or of its own compiled functions: nothing here would call
# them, so a subclass defining one is told so rather than silently ignored.
UNSUPPORTED = (
    "make_train_function",
    "make_test_function",
    "make_predict_function",
    "stateless_compute_loss",
    "compute_loss_and_updates",
)


def unpack_x_y_sample_weight(data):
    """``(x, y, sample_weight)`` from a batch as fit hands it to ``train_step``."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError(
        "Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`, "
        f"found: {data}"
    )


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """The batch structure Keras passes to the steps: ``x``, ``(x, y)`` or ``(x, y, sw)``."""
    if y is None:
        return x if not isinstance(x, (tuple, list)) else (x,)
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def pythonify_logs(logs) -> dict:
    """Flattens nested result dicts and turns scalar tensors into floats (as Keras)."""
    result = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            result.update(pythonify_logs(value))
            continue
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            value = float(value) if value.numel() == 1 else value.numpy()
        else:
            with contextlib.suppress(TypeError, ValueError):
                value = float(value)
        result[key] = value
    return result


class CompileMetrics(Metric):
    """The metrics given to ``compile``, as one metric (Keras's ``compile_metrics``).

    ``update_state(y, y_pred, sample_weight)`` resolves them on first use (``"accuracy"`` from
    the shapes) and updates each; ``result()`` is a dict by metric name.
    """

    def __init__(self, model):
        super().__init__(name="compile_metrics")
        self._model = model

    def _compiled(self):
        return self._model._compiled_metrics

    @without_grad
    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        compiled = self._compiled()
        names = self._model._step_output_names()
        y_pred = flatten_outputs(y_pred, names, "y_pred")
        y_true = [None] * len(y_pred) if y_true is None else flatten_outputs(y_true, names, "y")
        if not compiled.built:
            losses = self._model._compiled_loss.losses if self._model._compiled_loss else None
            compiled.build(y_true, y_pred, losses)
        compiled.update_state(y_true, y_pred, sample_weight)

    def result(self) -> dict:
        compiled = self._compiled()
        return compiled.results()

    def reset_state(self) -> None:
        self._compiled().reset_state()

    @property
    def metrics(self) -> list:
        return self._compiled().metrics

    @property
    def variables(self) -> list:
        return [v for m in self._compiled().metrics for v in m.variables]


class StepCache:
    """A model's weight lists for the length of one fit with the model's own steps.

    ``trainable_weights``, ``zero_grad()`` and ``losses`` run in every user step; walking the
    layer tree each time costs more than the rest of a small model's step. The lists are
    rebuilt whenever a weight is created or its trainable flag changes (``WEIGHTS_VERSION``).
    """

    def __init__(self, model):
        from distkeras.layers.base import Layer

        self.version = WEIGHTS_VERSION.value
        self.trainable = Layer.trainable_weights.fget(model)
        self.params = list(model.parameters())
        self.reg_terms = model.regularization_terms()
        self.layer_ids = {id(m) for m in model.modules()}
        self.output_names: list[str] | None = None  # read after the model's first call

    @property
    def valid(self) -> bool:
        return self.version == WEIGHTS_VERSION.value


class KerasSteps:
    """Keras 3's step API for ``Model`` (mixed into ``Trainer``)."""

    def _valid_step_cache(self) -> StepCache | None:
        cache = self.__dict__.get("_step_cache")
        if cache is None:
            return None
        if not cache.valid:
            cache = StepCache(self)
            object.__setattr__(self, "_step_cache", cache)
        return cache

    def _step_output_names(self) -> list[str]:
        # The output names, computed once per fit with the model's own steps (read after
        # a forward pass, so a subclassed model's output structure is known by then).
        cache = self.__dict__.get("_step_cache")
        if cache is None:
            return self._output_names()
        names = cache.output_names
        if names is None:
            names = cache.output_names = self._output_names()
        return names

    # ---------------------------------------------------------------- weight lists
    @property
    def trainable_weights(self) -> list:
        cache = self._valid_step_cache()
        if cache is None:
            from distkeras.layers.base import Layer

            return Layer.trainable_weights.fget(self)
        return list(cache.trainable)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears every parameter's gradient (``torch.nn.Module.zero_grad``)."""
        cache = self._valid_step_cache()
        if cache is None or not set_to_none:
            torch.nn.Module.zero_grad(self, set_to_none)
            return
        for param in cache.params:
            param.grad = None

    @property
    def losses(self) -> list:
        """Weight penalties (computed now) plus the losses added during the last call."""
        cache = self._valid_step_cache()
        if cache is None:
            from distkeras.layers.base import Layer

            return Layer.losses.fget(self)
        loss_layers = _call_context().loss_layers  # only these hold losses of the last call
        if not cache.reg_terms and not loss_layers:
            return []
        losses = [reg(param) for reg, param in cache.reg_terms]
        for layer in loss_layers:
            if id(layer) in cache.layer_ids:
                losses.extend(layer._call_losses)
        return losses

    # ------------------------------------------------------------------------ metrics
    @property
    def metrics(self) -> list:
        """Keras's order: the loss tracker, ``compile_metrics``, then the model's own."""
        metrics = []
        if self.compiled:
            if getattr(self, "_loss_tracker", None) is not None:
                metrics.append(self._loss_tracker)
            if getattr(self, "_compile_metrics", None) is not None:
                metrics.append(self._compile_metrics)
        metrics.extend(self._own_metrics())
        return metrics

    def __setattr__(self, name: str, value) -> None:
        # Keras tracks Metric attributes (``self.loss_tracker = Mean()``) into ``metrics``;
        # recording them here keeps the ``metrics`` property cheap enough for every step.
        tracked = self.__dict__.get("_metric_attributes")
        if isinstance(value, Metric) and name not in ("_loss_tracker", "_compile_metrics"):
            if tracked is None:
                tracked = {}
                object.__setattr__(self, "_metric_attributes", tracked)
            tracked[name] = value
        elif tracked is not None:
            tracked.pop(name, None)
        super().__setattr__(name, value)

    def _own_metrics(self) -> list:
        """``Metric`` objects assigned as attributes, in assignment order (as Keras)."""
        tracked = self.__dict__.get("_metric_attributes")
        return list(tracked.values()) if tracked else []

    def reset_metrics(self) -> None:
        for metric in self.metrics:
            metric.reset_state()

    def get_metrics_result(self) -> dict:
        """Results of ``self.metrics`` by name; dict results are merged in (as Keras)."""
        results = {}
        for metric in self.metrics:
            value = metric.result()
            if isinstance(value, dict):
                results.update(value)
            else:
                results[metric.name] = value
        return results

    def _get_metrics_result_or_logs(self, logs):
        # A custom step may return other keys than self.metrics: then its last logs stand.
        metric_logs = self.get_metrics_result()
        if isinstance(logs, dict) and set(logs) == set(metric_logs):
            return metric_logs
        return logs

    # --------------------------------------------------------------------------- loss
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The total loss of one batch: compiled losses plus ``self.losses`` (Keras)."""
        del x, training  # the default does not use them, as in Keras
        losses = []
        if self._compiled_loss is not None:
            names = self._step_output_names()
            n = _batch_size(y_pred)
            total, _ = self._compiled_loss(
                flatten_outputs(y, names, "y"),
                flatten_outputs(y_pred, names, "y_pred"),
                sample_weight,
                n,
                n,
            )
            if total is not None:
                losses.append(total)
        for extra in self.losses:
            if not (extra.is_floating_point() or extra.is_complex()):
                extra = extra.float()
            losses.append(extra.sum())
        if not losses:
            raise ValueError("No loss to compute. Provide a `loss` argument in `compile()`.")
        return losses[0] if len(losses) == 1 else torch.stack(losses).sum()

    def _compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # Overrides written before Keras 3.3 have no `training` argument.
        if _takes_training(type(self).compute_loss):
            return self.compute_loss(x, y, y_pred, sample_weight, training=training)
        return self.compute_loss(x, y, y_pred, sample_weight)

    def compute_metrics(self, x, y, y_pred, sample_weight=None) -> dict:
        """Updates the compiled metrics and returns ``get_metrics_result()``."""
        del x
        if getattr(self, "_compile_metrics", None) is not None:
            self._compile_metrics.update_state(y, y_pred, sample_weight)
        return self.get_metrics_result()

    # -------------------------------------------------------------------------- steps
    def train_step(self, data) -> dict:
        """One training step, as Keras 3's torch backend writes it."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y_pred = self(x, training=True)
        self.zero_grad()
        loss = self._compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
        )
        self._loss_tracker.update_state(loss.detach(), sample_weight=_batch_size(x))
        trainable_weights = self.trainable_weights
        if trainable_weights:
            loss.backward()
            gradients = [v.grad for v in trainable_weights]
            with torch.no_grad():
                self.optimizer.apply(gradients, trainable_weights)
        else:
            warnings.warn("The model does not have any trainable weights.", stacklevel=2)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, data) -> dict:
        """One evaluation step: loss tracker and compiled metrics, no gradients."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        loss = self._compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False
        )
        self._loss_tracker.update_state(loss.detach(), sample_weight=_batch_size(x))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def predict_step(self, data):
        """The model's outputs for one batch."""
        x, _, _ = unpack_x_y_sample_weight(data)
        return self(x, training=False)


def custom_step_reason(model) -> str | None:
    """Why ``model`` must be trained through its step methods; None for the fused step."""
    cls = type(model)
    for name in UNSUPPORTED:
        if callable(getattr(cls, name, None)):
            raise NotImplementedError(
                f"Model '{model.name}' overrides `{name}`, which distkeras does not call: "
                "override `train_step`, `test_step` or `predict_step` instead."
            )
    for name in OVERRIDABLE:
        if getattr(cls, name) is not getattr(KerasSteps, name):
            return name
    if cls.metrics is not KerasSteps.metrics:
        return "metrics"
    if model._own_metrics():
        return "metric attributes"
    if model._compiled_loss is None:
        return "no compiled loss"
    return None


def overrides_predict_step(model) -> bool:
    return type(model).predict_step is not KerasSteps.predict_step


def _takes_training(method) -> bool:
    params = inspect.signature(method).parameters
    return "training" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


@functools.cache
def _call_context():
    # layers.base imports this module's callers; imported on first use, then kept.
    from distkeras.layers.base import CALL_CONTEXT

    return CALL_CONTEXT


def _batch_size(structure) -> int:
    if type(structure) is torch.Tensor and structure.ndim:  # the per-step case
        return int(structure.shape[0])
    for value in flatten(structure):
        if value is not None and hasattr(value, "shape") and len(value.shape):
            return int(value.shape[0])
    return 1
