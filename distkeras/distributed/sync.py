"""What fit does with the communicator besides gradients: agree on weights, sum metrics,
reassemble predictions.

Every function here is collective: all ranks call it, in the same order.
"""

from __future__ import annotations

import numpy as np
import torch

from distkeras.distributed.comm import Communicator
from distkeras.distributed.reducer import GradientReducer


def weight_signature(model) -> list[tuple[str, str, tuple]]:
    """(layer name, weight name, Keras shape) for every weight, in ``model.weights`` order,
    then the optimizer's variables (which are broadcast too)."""
    signature = []
    for layer in _layers_with_weights(model):
        for spec in layer._weight_specs:
            signature.append((layer.name, spec.name, spec.keras_shape()))
    for index, variable in enumerate(_optimizer_state(model)):
        signature.append(("optimizer", f"variable_{index}", tuple(variable.shape)))
    return signature


def _optimizer_state(model) -> list[torch.Tensor]:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(optimizer, "built", False):
        return []
    return [v for v in optimizer.variables if isinstance(v, torch.Tensor)]


def _layers_with_weights(model):
    seen, ordered = set(), []

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if layer._weight_specs:
            ordered.append(layer)
        for child in layer._sublayers():
            visit(child)

    visit(model)
    return ordered


def check_same_weights_shapes(model, comm: Communicator) -> None:
    """Raises on EVERY rank, naming the layer, if any rank's weights differ in shape."""
    signatures = comm.all_gather_object(weight_signature(model))
    reference = signatures[0]
    for rank, signature in enumerate(signatures[1:], start=1):
        if signature == reference:
            continue
        for (layer0, name0, shape0), (layer, name, shape) in zip(reference, signature):
            if (layer0, name0) != (layer, name):
                raise ValueError(
                    f"Model weights differ across workers: rank 0 has layer '{layer0}' weight "
                    f"'{name0}' {shape0} where rank {rank} has layer '{layer}' weight "
                    f"'{name}' {shape}. Every worker must build the same model."
                )
            if shape0 != shape:
                raise ValueError(
                    f"Model weights differ across workers: layer '{layer0}' weight '{name0}' "
                    f"has shape {shape0} on rank 0 but {shape} on rank {rank}. Every worker "
                    "must build the same model."
                )
        raise ValueError(
            f"Model weights differ across workers: rank 0 has {len(reference)} weights, "
            f"rank {rank} has {len(signature)}. Every worker must build the same model."
        )


def broadcast_tensors(tensors: list[torch.Tensor], comm: Communicator, src: int = 0) -> None:
    """Rank ``src``'s values into every rank's tensors: one flat broadcast per dtype."""
    for group in _by_dtype_and_device(tensors):
        flat = torch.cat([t.detach().reshape(-1) for t in group])
        comm.broadcast(flat, src=src)
        offset = 0
        with torch.no_grad():
            for t in group:
                n = t.numel()
                t.copy_(flat[offset : offset + n].view_as(t))
                offset += n


def all_reduce_sum(tensors: list[torch.Tensor], comm: Communicator) -> None:
    """Sums each tensor across ranks in place: one flat all-reduce per dtype."""
    for group in _by_dtype_and_device(tensors):
        flat = torch.cat([t.detach().reshape(-1) for t in group])
        comm.all_reduce(flat)
        offset = 0
        with torch.no_grad():
            for t in group:
                n = t.numel()
                t.copy_(flat[offset : offset + n].view_as(t))
                offset += n


class _AllReduceSum(torch.autograd.Function):
    """Sum across ranks whose backward sums the incoming gradients across ranks too.

    Each rank's loss depends on the global sum, so the gradient of the total loss with
    respect to one rank's contribution is the sum of every rank's gradient.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, comm: Communicator) -> torch.Tensor:
        ctx.comm = comm
        out = tensor.detach().clone(memory_format=torch.contiguous_format)
        comm.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.clone(memory_format=torch.contiguous_format)
        ctx.comm.all_reduce(grad)
        return grad, None


def all_reduce_sum_differentiable(tensor: torch.Tensor, comm: Communicator) -> torch.Tensor:
    """The sum of ``tensor`` over ranks (a new tensor), differentiable on every rank.

    Example:
        >>> totals = all_reduce_sum_differentiable(local_sums, comm)   # synchronized BN
    """
    return _AllReduceSum.apply(tensor, comm)


def _by_dtype_and_device(tensors):
    groups: dict[tuple, list] = {}
    for t in tensors:
        if t.numel():
            groups.setdefault((t.dtype, t.device), []).append(t)
    return list(groups.values())


def check_and_broadcast(model, comm: Communicator) -> None:
    """Start of fit: same shapes everywhere, then rank 0's weights and optimizer state."""
    check_same_weights_shapes(model, comm)
    broadcast_tensors([spec.param for spec in model._weight_spec_list()], comm)
    state = _optimizer_state(model)
    if state:
        broadcast_tensors(state, comm)
        if hasattr(model.optimizer, "_sync_host_state"):
            model.optimizer._sync_host_state()


def check_same_data(description: dict, comm: Communicator) -> None:
    """Raises on EVERY rank if the workers were given different data or batch settings.

    ``description`` holds what must agree, e.g. ``{"samples": 100, "batch_size": 32}``.
    Different sample counts would give the workers different numbers of steps, and their
    collectives would stop matching: a hang instead of an error.
    """
    everyone = comm.all_gather_object(description)
    for key in description:
        values = [d.get(key) for d in everyone]
        if len(set(map(repr, values))) > 1:
            detail = ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))
            hint = (
                " Give every worker the full arrays: distkeras splits each global batch "
                "between the workers itself."
                if key == "samples"
                else ""
            )
            raise ValueError(
                f"The workers were given different data: {key} differs ({detail}).{hint}"
            )


def make_reducer(params: list[torch.nn.Parameter], comm: Communicator, **options):
    """The gradient reducer fit uses: ``distributed.configure_gradients()`` settings, or
    ``options`` when given."""
    from distkeras import distributed

    return GradientReducer(params, comm, **{**distributed.gradient_options(), **options})


def gather_ordered(parts: list, data, comm: Communicator):
    """Every rank's predict outputs, reassembled into the full ordered result on each rank.

    Array data and PyDatasets give rank r part r of every global batch, so batch k of the
    result is the concatenation of every rank's k-th part; iterable data is concatenated rank
    by rank.
    """
    everyone = comm.all_gather_object(parts)
    if getattr(data, "splits_global_batches", hasattr(data, "num_samples")):
        steps = max(len(p) for p in everyone)
        ordered = []
        for step in range(steps):
            for rank_parts in everyone:
                if step < len(rank_parts):
                    ordered.append(rank_parts[step])
    else:
        ordered = [part for rank_parts in everyone for part in rank_parts]
    return _concat(ordered)


def _concat(parts: list):
    first = parts[0]
    if isinstance(first, dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(np.concatenate([p[i] for p in parts]) for i in range(len(first)))
    return np.concatenate(parts)
