"""Multi-tensor building blocks shared by every optimizer: parameter groups and clipping.

Everything works on lists of tensors that share a device and dtype, with ``torch._foreach_*``
ops, so the cost of a stage is a few kernel launches per group, not per parameter. Nothing
here reads a value back to the host.
"""

from __future__ import annotations

import numpy as np
import torch

Tensor = torch.Tensor


class ParamGroup:
    """The built parameters that share one device and dtype, with their state, in build order.

    ``slots`` maps a state name (``"momentum"``, ...) to the list aligned with ``params``;
    ``decay`` lists the parameters weight decay applies to.
    """

    __slots__ = ("params", "slots", "decay_mask", "decay", "device", "dtype", "_subsets")

    def __init__(self, params, slots, decay_mask, device, dtype):
        self.params = params
        self.slots = slots
        self.decay_mask = decay_mask
        self.decay = [p for p, use in zip(params, decay_mask) if use]
        self.device = device
        self.dtype = dtype
        self._subsets: dict[tuple, ParamGroup] = {}

    def subset(self, positions: tuple) -> ParamGroup:
        """The group restricted to ``positions`` (cached: the same ones tend to lack grads)."""
        sub = self._subsets.get(positions)
        if sub is None:
            sub = ParamGroup(
                [self.params[i] for i in positions],
                {name: [lst[i] for i in positions] for name, lst in self.slots.items()},
                [self.decay_mask[i] for i in positions],
                self.device,
                self.dtype,
            )
            self._subsets[positions] = sub
        return sub


def make_groups(variables, slots: dict, use_decay) -> tuple[list[ParamGroup], dict]:
    """Groups ``variables`` by (device, dtype); also returns ``id(var) -> (group, position)``."""
    buckets: dict[tuple, list[int]] = {}
    for i, v in enumerate(variables):
        buckets.setdefault((v.device, v.dtype), []).append(i)
    groups, locate = [], {}
    for gi, ((device, dtype), idx) in enumerate(buckets.items()):
        params = [variables[i] for i in idx]
        group_slots = {name: [lst[i] for i in idx] for name, lst in slots.items()}
        groups.append(
            ParamGroup(params, group_slots, [use_decay(p) for p in params], device, dtype)
        )
        for pos, i in enumerate(idx):
            locate[id(variables[i])] = (gi, pos)
    return groups, locate


def grads_from_params(groups: list[ParamGroup]) -> list[tuple[ParamGroup, list[Tensor]]]:
    """Pairs each group (or its part that has gradients) with the ``.grad`` of its params."""
    work = []
    for group in groups:
        grads = [p.grad for p in group.params]
        # Identity tests only: `None in grads` would call Tensor.__eq__, ~10 us per tensor.
        present = [g for g in grads if g is not None]
        if len(present) == len(grads):
            work.append((group, grads))
        elif present:
            positions = tuple(i for i, g in enumerate(grads) if g is not None)
            work.append((group.subset(positions), present))
    return work


def match_grads(groups, locate, grads, variables) -> tuple[list, int]:
    """Sorts explicit ``(grad, variable)`` pairs into groups; returns the work and how many
    variables had no gradient. Errors name what does not match."""
    per_group: dict[int, list] = {}
    missing = 0
    for g, v in zip(grads, variables):
        loc = locate.get(id(v))
        if loc is None:
            raise ValueError(
                f"Unknown variable of shape {tuple(v.shape)}. This optimizer can only be "
                "called for the variables it was originally built with. When working with a "
                "new set of variables, you should recreate a new optimizer instance."
            )
        if g is None:
            missing += 1
            continue
        group = groups[loc[0]]
        if not isinstance(g, Tensor):
            g = torch.as_tensor(np.asarray(g))
        if g.shape != v.shape:
            raise ValueError(
                f"Gradient of shape {tuple(g.shape)} does not match its variable's shape "
                f"{tuple(v.shape)}."
            )
        per_group.setdefault(loc[0], []).append((loc[1], g.to(group.device, group.dtype)))
    work = []
    for gi in sorted(per_group):
        entries = sorted(per_group[gi], key=lambda e: e[0])
        positions = tuple(pos for pos, _ in entries)
        group = groups[gi]
        if positions != tuple(range(len(group.params))):
            group = group.subset(positions)
        work.append((group, [g for _, g in entries]))
    return work, missing


def clip_by_norm(grads: list[Tensor], clipnorm: float) -> list[Tensor]:
    """``g * clipnorm / max(||g||, clipnorm)`` for each tensor, the factors kept on device."""
    factors = torch._foreach_norm(grads)
    torch._foreach_clamp_min_(factors, clipnorm)
    torch._foreach_reciprocal_(factors)
    torch._foreach_mul_(factors, clipnorm)
    return torch._foreach_mul(grads, factors)


def clip_by_global_norm(work, clipnorm: float) -> list[list[Tensor]]:
    """Scales all gradients of all groups by ``clipnorm / max(global_norm, clipnorm)``."""
    anchor = work[0][0].device
    norms = [
        torch.linalg.vector_norm(torch.stack(torch._foreach_norm(g)).float()).to(anchor)
        for _, g in work
    ]
    total = torch.linalg.vector_norm(torch.stack(norms))
    # Adding (total - total) turns the scale into NaN for a non-finite norm, as Keras does.
    scale = clipnorm / torch.clamp_min(total, clipnorm) + (total - total)
    return [torch._foreach_mul(g, scale.to(group.device, group.dtype)) for group, g in work]


def clip_by_value(grads: list[Tensor], clipvalue: float) -> list[Tensor]:
    out = torch._foreach_clamp_min(grads, -clipvalue)
    torch._foreach_clamp_max_(out, clipvalue)
    return out
