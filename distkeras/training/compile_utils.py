"""What ``compile`` turns losses, loss weights and metrics into, per model output.

Losses are reduced against the GLOBAL batch: a worker holding ``n`` of a global batch of
``B`` samples divides its sum by ``B`` (times the per-sample element count), so summing the
workers' gradients gives exactly the one-worker gradient.
"""

from __future__ import annotations

import torch

from distkeras import losses as losses_module
from distkeras import metrics as metrics_module
from distkeras.losses.logits import crossentropy_from_logits
from distkeras.utils.tree import flatten


def _per_output(spec, output_names: list[str], what: str) -> list:
    """Aligns a loss/metric spec (single, list or dict by output name) with the outputs."""
    count = len(output_names)
    if isinstance(spec, dict):
        unknown = set(spec) - set(output_names)
        if unknown:
            raise ValueError(
                f"compile(): {what} has keys {sorted(unknown)} that are not model outputs. "
                f"Outputs are: {output_names}"
            )
        return [spec.get(name) for name in output_names]
    if isinstance(spec, (list, tuple)) and count > 1:
        if len(spec) != count:
            raise ValueError(
                f"compile(): the model has {count} outputs {output_names} but {what} has "
                f"{len(spec)} entries."
            )
        return list(spec)
    return [spec] * count


def _loss_name(loss) -> str:
    return getattr(loss, "name", None) or getattr(loss, "__name__", None) or "loss"


class CompiledLoss:
    """Per-output loss objects and weights; ``__call__`` returns the worker's share."""

    def __init__(self, loss, loss_weights, output_names: list[str]):
        self.output_names = output_names
        self.losses = [
            None if spec is None else losses_module.get(spec)
            for spec in _per_output(loss, output_names, "loss")
        ]
        if all(loss is None for loss in self.losses):
            raise ValueError("compile(): `loss` must be given to train the model.")
        weights = _per_output(loss_weights, output_names, "loss_weights")
        self.weights = [1.0 if w is None else float(w) for w in weights]
        if isinstance(loss_weights, (list, tuple)) and len(output_names) == 1:
            self.weights = [float(loss_weights[0])]

    def __call__(
        self, y_true: list, y_pred: list, sample_weight, local_size: int, global_size: int
    ) -> tuple[torch.Tensor, list]:
        total = None
        per_output = []
        for loss, weight, target, pred in zip(self.losses, self.weights, y_true, y_pred):
            if loss is None:
                per_output.append(None)
                continue
            value = reduce_loss(loss, target, pred, sample_weight, local_size, global_size)
            per_output.append(value)
            value = value * weight if weight != 1.0 else value
            total = value if total is None else total + value
        return total, per_output


def reduce_loss(loss, y_true, y_pred, sample_weight, local_size: int, global_size: int):
    """The loss over this worker's samples, normalised by the global element count."""
    # Unweighted, unmasked batch means may come back already reduced (one kernel fewer);
    # such a mean over this worker's samples is weighted below like any reduced value.
    batch_mean = (
        sample_weight is None
        and local_size > 0
        and getattr(y_pred, "_keras_mask", None) is None
        and getattr(loss, "reduction", "sum_over_batch_size") == "sum_over_batch_size"
    )
    values = crossentropy_from_logits(
        getattr(loss, "fn", loss),
        getattr(loss, "_fn_kwargs", {}),
        y_true,
        y_pred,
        reduction="mean" if batch_mean else "none",
    )
    if values is None:
        if y_pred.dtype in (torch.float16, torch.bfloat16):
            y_pred = y_pred.float()
        values = loss.call(y_true, y_pred) if hasattr(loss, "call") else loss(y_true, y_pred)
    if values.ndim == 0:  # a custom function that already reduced over its batch
        return values * (local_size / global_size) if local_size != global_size else values
    mask = getattr(y_pred, "_keras_mask", None)
    if mask is None:
        mask = getattr(values, "_keras_mask", None)
    if mask is not None:
        # Masked outputs (Embedding(mask_zero) sequences, ignore_class): Keras averages over
        # the unmasked entries of the batch; each worker's share is weighted by its size.
        value = losses_module.reduce_weighted_values(
            values, sample_weight, mask, getattr(loss, "reduction", "sum_over_batch_size")
        )
        return value * (local_size / global_size) if local_size != global_size else value
    if sample_weight is not None:
        sw = sample_weight.to(values.dtype)
        while sw.ndim < values.ndim:
            sw = sw.unsqueeze(-1)
        while sw.ndim > values.ndim and sw.shape[-1] == 1:
            sw = sw.squeeze(-1)
        values = values * sw
    if getattr(loss, "reduction", "sum_over_batch_size") == "sum":
        return values.sum()
    per_sample = values.numel() // max(local_size, 1) if values.shape[0] == local_size else 1
    return values.sum() / (global_size * max(per_sample, 1))


class CompiledMetrics:
    """Metrics per output, resolved from data shapes on the first batch (Keras's rules)."""

    def __init__(self, metrics, weighted_metrics, output_names: list[str]):
        self.output_names = output_names
        self.specs = [_as_list(spec) for spec in _per_output(metrics, output_names, "metrics")]
        self.weighted_specs = [
            _as_list(spec)
            for spec in _per_output(weighted_metrics, output_names, "weighted_metrics")
        ]
        self.entries: list[tuple[int, object, bool]] = []
        self.built = False
        self._names: list[str] = []
        self._metrics: list = []

    def build(self, y_true: list, y_pred: list, losses: list) -> None:
        self.entries = []
        for index, (specs, weighted) in enumerate(zip(self.specs, self.weighted_specs)):
            for group, is_weighted in ((specs, False), (weighted, True)):
                for spec in group:
                    metric = metrics_module.resolve_metric(
                        spec,
                        tuple(y_true[index].shape) if y_true[index] is not None else None,
                        tuple(y_pred[index].shape),
                        losses[index] if losses else None,
                    )
                    self.entries.append((index, metric, is_weighted))
        # Fixed from here on; result() reads them every step of a custom train_step.
        multi = len(self.output_names) > 1
        self._names = [
            f"{self.output_names[i]}_{m.name}" if multi else m.name for i, m, _ in self.entries
        ]
        self._metrics = [m for _, m, _ in self.entries]
        self.built = True

    def names(self) -> list[str]:
        return list(self._names)

    @property
    def metrics(self) -> list:
        return list(self._metrics)

    def results(self) -> dict:
        """Each metric's ``result()`` by name (empty before the first update)."""
        return {name: m.result() for name, m in zip(self._names, self._metrics)}

    def update_state(self, y_true: list, y_pred: list, sample_weight) -> None:
        for index, metric, weighted in self.entries:
            metric.update_state(
                y_true[index], y_pred[index], sample_weight=sample_weight if weighted else None
            )

    def reset_state(self) -> None:
        for metric in self.metrics:
            metric.reset_state()


def _as_list(spec) -> list:
    if spec is None:
        return []
    # None entries mean "no metric here", as Keras skips them.
    return [m for m in spec if m is not None] if isinstance(spec, (list, tuple)) else [spec]


def flatten_outputs(values, output_names: list[str], what: str) -> list:
    """Targets or predictions as a list in output order (dicts keyed by output name)."""
    if isinstance(values, dict):
        missing = [name for name in output_names if name not in values]
        if missing:
            raise ValueError(
                f"{what} is a dict without keys {missing}; the model's outputs are {output_names}."
            )
        return [values[name] for name in output_names]
    flat = flatten(values) if isinstance(values, (list, tuple)) else [values]
    if len(flat) != len(output_names):
        raise ValueError(
            f"The model has {len(output_names)} output(s) {output_names} but {what} has "
            f"{len(flat)} array(s)."
        )
    return flat
