"""Conversion, casting, control flow and scatter/slice ops of ``keras.ops`` (Keras's core ops).

Semantics and dtypes follow Keras 3's torch backend: Python floats become floatx, Python ints
int32 (int64 beyond its range), numpy arrays keep their dtype (float64 included), and control
flow runs eagerly as Python loops over torch calls, as Keras's torch backend does.
"""

from __future__ import annotations

import builtins
import re

import numpy as np
import torch

from distkeras import backend
from distkeras.ops import dispatch, dtypes
from distkeras.ops.dispatch import keras_op
from distkeras.utils.tree import flatten, map_structure, pack_sequence_as

__all__ = [
    "associative_scan",
    "cast",
    "cond",
    "convert_to_numpy",
    "convert_to_tensor",
    "custom_gradient",
    "dtype",
    "fori_loop",
    "is_tensor",
    "map",
    "rearrange",
    "saturate_cast",
    "scan",
    "scatter",
    "scatter_update",
    "shape",
    "slice",
    "slice_update",
    "stop_gradient",
    "switch",
    "unstack",
    "vectorized_map",
    "while_loop",
]


def dtype_name(dtype: torch.dtype) -> str:
    return dtypes.standardize_dtype(dtype)


def _unwrap(x):
    """A Keras variable's torch Parameter, anything else unchanged."""
    if not isinstance(x, torch.Tensor):
        value = getattr(x, "value", None)
        if isinstance(value, torch.Tensor):
            return value
    return x


def _is_symbolic(x) -> bool:
    return type(x) in dispatch._SYMBOLIC_TYPES


@keras_op("core")
def convert_to_tensor(x, dtype=None, sparse=None, ragged=None) -> torch.Tensor:
    """``x`` as a torch tensor on the current device (Keras's dtype rules, not numpy's)."""
    if sparse:
        raise ValueError("convert_to_tensor: `sparse=True` is not supported (torch backend).")
    if ragged:
        raise ValueError("convert_to_tensor: `ragged=True` is not supported (torch backend).")
    x = _unwrap(x)
    if isinstance(x, torch.Tensor):
        device = backend.get_device()
        x = x if x.device == device else x.to(device)
    return dtypes.convert_to_tensor(x, dtype)


def convert_to_numpy(x) -> np.ndarray:
    """``x`` as a numpy array (detached, on the host). Lists are converted item by item."""
    if _is_symbolic(x):
        raise ValueError(
            "convert_to_numpy: a symbolic tensor (the result of an op on distkeras.Input) has "
            "no value to convert. Call it inside a layer's call() instead."
        )

    def one(value):
        value = _unwrap(value)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            if value.dtype == torch.bfloat16:
                try:
                    import ml_dtypes
                except ImportError as err:
                    raise ImportError(
                        "convert_to_numpy on a bfloat16 tensor needs the ml_dtypes package."
                    ) from err
                return value.float().numpy().astype(ml_dtypes.bfloat16)
            return value.numpy()
        return np.array(value)

    if isinstance(x, (list, tuple)):
        return np.array([one(item) for item in x])
    return one(x)


def is_tensor(x) -> bool:
    """True for a torch tensor (as Keras's torch backend: not numpy, not KerasTensor)."""
    return isinstance(x, torch.Tensor)


def shape(x) -> tuple:
    """The shape as a tuple of ints (None for unknown dimensions of a symbolic tensor)."""
    if _is_symbolic(x):
        return x.shape
    return tuple(_unwrap(x).shape)


def dtype(x) -> str:
    """The Keras dtype name of ``x`` ("float32", "int32", ...)."""
    value = x.dtype
    if isinstance(value, str):
        return value
    return dtypes.standardize_dtype(value)


@keras_op("core")
def cast(x, dtype) -> torch.Tensor:
    torch_dtype = dtypes.to_torch_dtype(dtype)
    x = _unwrap(x)
    if isinstance(x, torch.Tensor):
        return x if x.dtype == torch_dtype else x.to(torch_dtype)
    return convert_to_tensor(x, dtype)


def _dtype_limits(dtype: torch.dtype) -> tuple:
    if dtype == torch.bool:
        return 0, 1
    info = torch.finfo(dtype) if dtype.is_floating_point else torch.iinfo(dtype)
    return info.min, info.max


@keras_op("core")
def saturate_cast(x, dtype) -> torch.Tensor:
    """Casts with values clipped to the target dtype's range (no overflow wrap-around)."""
    x = convert_to_tensor(x)
    target = dtypes.to_torch_dtype(dtype)
    in_min, in_max = _dtype_limits(x.dtype)
    out_min, out_max = _dtype_limits(target)
    work = x.to(torch.int32) if x.dtype == torch.bool else x
    # The target's limits may not be representable in the input dtype: step inwards until
    # they are, so the clipped value never lands outside the target's range.
    low = torch.tensor(builtins.max(in_min, out_min), dtype=work.dtype)
    high = torch.tensor(builtins.min(in_max, out_max), dtype=work.dtype)
    if work.dtype.is_floating_point:
        if low.item() < out_min:
            low = torch.nextafter(low, torch.zeros_like(low))
        if high.item() > out_max:
            high = torch.nextafter(high, torch.zeros_like(high))
    clipped = torch.clamp(work, low.to(work.device), high.to(work.device))
    return clipped.to(target)


@keras_op("core")
def stop_gradient(variable) -> torch.Tensor:
    return convert_to_tensor(variable).detach()


@keras_op("core")
def unstack(x, num=None, axis=0) -> tuple:
    return tuple(convert_to_tensor(x).unbind(axis))


@keras_op("core")
def slice(inputs, start_indices, shape) -> torch.Tensor:
    """The block of ``inputs`` of size ``shape`` starting at ``start_indices``."""
    inputs = convert_to_tensor(inputs)
    if _all_ints(start_indices) and _all_ints(shape):
        return inputs[tuple(builtins.slice(s, s + n) for s, n in zip(start_indices, shape))]
    starts = convert_to_tensor(start_indices).to(torch.int64)
    sizes = convert_to_tensor(shape).to(torch.int64)
    result = inputs
    for dim in range(starts.shape[0]):
        result = torch.narrow(result, dim, starts[dim], int(sizes[dim]))
    return result


def _all_ints(values) -> bool:
    return isinstance(values, (list, tuple)) and all(isinstance(v, int) for v in values)


@keras_op("core")
def slice_update(inputs, start_indices, updates) -> torch.Tensor:
    """A copy of ``inputs`` with the block at ``start_indices`` replaced by ``updates``."""
    inputs = convert_to_tensor(inputs)
    updates = convert_to_tensor(updates)
    if not _all_ints(start_indices):
        start_indices = [int(s) for s in convert_to_tensor(start_indices).tolist()]
    block = tuple(builtins.slice(s, s + n) for s, n in zip(start_indices, updates.shape))
    outputs = inputs.clone()
    outputs[block] = updates
    return outputs


@keras_op("core")
def scatter(indices, values, shape) -> torch.Tensor:
    """Zeros of ``shape`` with ``values`` added at ``indices`` (duplicates accumulate)."""
    indices = convert_to_tensor(indices)
    values = convert_to_tensor(values)
    out = torch.zeros(tuple(shape), dtype=values.dtype, device=values.device)
    depth = indices.shape[-1]
    index = tuple(indices.reshape(-1, depth).to(torch.int64).unbind(-1))
    out.index_put_(index, values.reshape(-1, *tuple(shape)[depth:]), accumulate=True)
    return out


_INDEX_REDUCE = {"max": "amax", "min": "amin", "mul": "prod"}


@keras_op("core")
def scatter_update(inputs, indices, updates, reduction=None) -> torch.Tensor:
    """A copy of ``inputs`` with ``updates`` written (or reduced, ``reduction`` in add, max,
    min, mul) at ``indices``."""
    inputs = convert_to_tensor(inputs)
    indices = convert_to_tensor(indices, dtype="int64")
    updates = convert_to_tensor(updates, dtype=dtype_name(inputs.dtype))
    index = tuple(indices.unbind(-1))
    outputs = inputs.clone()
    if reduction is None:
        outputs[index] = updates
    elif reduction == "add":
        outputs.index_put_(index, updates, accumulate=True)
    elif reduction in _INDEX_REDUCE:
        # One vectorized scatter_reduce_ over the flattened indexed dimensions.
        depth = indices.shape[-1]
        lead = tuple(inputs.shape[:depth])
        strides = torch.tensor(
            [int(np.prod(lead[i + 1 :])) for i in range(depth)], device=indices.device
        )
        linear = (indices.reshape(-1, depth) * strides).sum(-1)
        flat = outputs.reshape(int(np.prod(lead)), -1)  # (indexed positions, the rest)
        source = updates.reshape(linear.shape[0], -1)
        index = linear[:, None].expand_as(source)
        flat.scatter_reduce_(0, index, source, _INDEX_REDUCE[reduction], include_self=True)
        outputs = flat.reshape(inputs.shape)
    else:
        raise ValueError(
            "scatter_update: `reduction` must be None, 'add', 'max', 'min' or 'mul'. "
            f"Received: reduction={reduction!r}"
        )
    return outputs


@keras_op("numpy", "get_item")
def get_item(x, key) -> torch.Tensor:
    """``x[key]``: what ``KerasTensor.__getitem__`` records (Keras's GetItem; not exported
    flat, as in Keras). A saved key comes back as a list, which means a tuple here too."""
    if isinstance(key, list):
        key = tuple(key)
    return convert_to_tensor(x)[key]


# ------------------------------------------------------------------------- control flow
@keras_op("core")
def cond(pred, true_fn, false_fn):
    """``true_fn()`` if ``pred`` else ``false_fn()`` (evaluated eagerly)."""
    return true_fn() if bool(pred) else false_fn()


@keras_op("core")
def switch(index, branches, *operands):
    """``branches[index](*operands)``, the index clipped into range as Keras does."""
    chosen = builtins.min(
        builtins.max(int(convert_to_tensor(index, "int32")), 0), len(branches) - 1
    )
    return branches[chosen](*operands)


@keras_op("core")
def while_loop(cond, body, loop_vars, maximum_iterations=None):
    """Runs ``body`` while ``cond(*loop_vars)`` holds (at most ``maximum_iterations`` times)."""
    is_sequence = isinstance(loop_vars, (list, tuple))
    values = tuple(loop_vars) if is_sequence else (loop_vars,)
    values = map_structure(convert_to_tensor, values)
    step = 0
    while (maximum_iterations is None or step < maximum_iterations) and bool(cond(*values)):
        values = body(*values)
        values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
        step += 1
    return values if is_sequence else values[0]


@keras_op("core")
def fori_loop(lower, upper, body_fun, init_val):
    """``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``."""
    value = init_val
    for i in range(int(lower), int(upper)):
        value = body_fun(i, value)
    return value


@keras_op("core")
def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """``carry, y = f(carry, x)`` over the leading axis of ``xs``; returns (carry, stacked ys)."""
    if not callable(f):
        raise TypeError(f"scan: `f` must be callable. Received: f={f!r}")
    if not isinstance(unroll, bool) and (not isinstance(unroll, int) or unroll < 1):
        raise ValueError(f"scan: `unroll` must be a positive int or bool. Received: {unroll!r}")
    if xs is None and length is None:
        raise ValueError("scan: got no `xs` to scan over and no `length`.")
    nested_xs = isinstance(xs, (list, tuple, dict))
    nested_init = isinstance(init, (list, tuple, dict))
    xs_flat = [] if xs is None else [convert_to_tensor(x) for x in flatten(xs)]
    steps = int(length) if length is not None else xs_flat[0].shape[0]
    init_flat = [convert_to_tensor(v) for v in flatten(init)]
    carry = pack_sequence_as(init, init_flat) if nested_init else init_flat[0]
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    ys = []
    for i in order:
        xs_i = [x[i] for x in xs_flat]
        packed = (pack_sequence_as(xs, xs_i) if nested_xs else xs_i[0]) if xs_i else None
        carry, y = f(carry, packed)
        ys.append([torch.zeros_like(v) for v in init_flat] if y is None else y)
    if reverse:
        ys.reverse()
    template = ys[0] if ys else None
    if template is None:
        return carry, None
    stacked = [torch.stack(column) for column in zip(*[flatten(y) for y in ys])]
    return carry, pack_sequence_as(template, stacked)


@keras_op("core")
def map(f, xs):
    """``f`` applied to each slice along the leading axis of ``xs``, results stacked."""
    _, ys = scan(lambda _, x: ((), f(x)), (), xs)
    return ys


@keras_op("core")
def associative_scan(f, elems, reverse=False, axis=0):
    """Inclusive prefix scan of the associative ``f`` along ``axis`` (``f(a, b)`` with ``a``
    earlier): a log-depth up-sweep/down-sweep, so ``f`` runs on whole slices, not elements."""
    if not callable(f):
        raise TypeError(f"associative_scan: `f` must be callable. Received: f={f!r}")
    flat = [convert_to_tensor(e) for e in flatten(elems)]
    if reverse:
        flat = [torch.flip(e, (axis,)) for e in flat]
    size = flat[0].shape[axis]
    if any(e.shape[axis] != size for e in flat[1:]):
        raise ValueError(
            "associative_scan: every input needs the same size along `axis`. "
            f"Received shapes {[tuple(e.shape) for e in flat]}."
        )

    def combine(a, b):
        out = f(pack_sequence_as(elems, a), pack_sequence_as(elems, b))
        return [convert_to_tensor(v) for v in flatten(out)]

    def take(values, start, stop=None, step=None):
        index = [builtins.slice(None)] * values[0].dim()
        index[axis] = builtins.slice(start, stop, step)
        return [v[tuple(index)] for v in values]

    def interleave(evens, odds):
        out = []
        for e, o in zip(evens, odds):
            shape_ = list(e.shape)
            shape_[axis] = e.shape[axis] + o.shape[axis]
            merged = torch.empty(shape_, dtype=e.dtype, device=e.device)
            index = [builtins.slice(None)] * e.dim()
            index[axis] = builtins.slice(0, None, 2)
            merged[tuple(index)] = e
            index[axis] = builtins.slice(1, None, 2)
            merged[tuple(index)] = o
            out.append(merged)
        return out

    def run(values):
        n = values[0].shape[axis]
        if n < 2:
            return values
        odds = run(combine(take(values, 0, -1, 2), take(values, 1, None, 2)))
        if n % 2 == 0:
            evens = combine(take(odds, 0, -1), take(values, 2, None, 2))
        else:
            evens = combine(odds, take(values, 2, None, 2))
        evens = [
            torch.cat([first, rest], dim=axis) for first, rest in zip(take(values, 0, 1), evens)
        ]
        return interleave(evens, odds)

    result = run(flat)
    if reverse:
        result = [torch.flip(r, (axis,)) for r in result]
    return pack_sequence_as(elems, result)


@keras_op("core")
def vectorized_map(function, elements):
    """``function`` mapped over the leading axis of ``elements`` with ``torch.vmap``."""
    return torch.vmap(function)(elements)


class _CustomGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, forward_fn, *args):
        ctx.save_for_backward(*args)
        output, ctx.grad_fn = forward_fn(*args)
        return output

    @staticmethod
    def backward(ctx, upstream):
        grads = ctx.grad_fn(*ctx.saved_tensors, upstream=upstream)
        return (None, *(grads if isinstance(grads, tuple) else (grads,)))


def custom_gradient(f):
    """Decorator: ``f(*args)`` returns ``(output, grad_fn)`` and autograd calls
    ``grad_fn(*args, upstream=g)`` for the gradients of the inputs (Keras's torch form)."""

    def wrapped(*args, **kwargs):
        if kwargs:
            return _CustomGradient.apply(lambda *a: f(*a, **kwargs), *args)
        return _CustomGradient.apply(f, *args)

    wrapped.__name__ = getattr(f, "__name__", "custom_gradient")
    wrapped.__doc__ = getattr(f, "__doc__", None)
    return wrapped


# ------------------------------------------------------------------------------ einops
_AXIS_TOKEN = re.compile(r"\w+|\(.*?\)")


def _groups(side: str) -> list[list[str]]:
    return [token.strip("()").split() for token in _AXIS_TOKEN.findall(side)]


@keras_op("core")
def rearrange(tensor, pattern, **axes_lengths) -> torch.Tensor:
    """einops-style axis rearrangement, e.g. ``"b (h p) w c -> b h w (p c)"`` with ``p=2``."""
    tensor = convert_to_tensor(tensor)
    left, right = re.split(r"\s*->\s*", pattern)
    in_groups, out_groups = _groups(left), _groups(right)
    if len(in_groups) != tensor.dim():
        raise ValueError(
            f"rearrange: pattern {left!r} names {len(in_groups)} axes but the tensor has "
            f"{tensor.dim()}."
        )
    sizes = dict(axes_lengths)
    for group, dim in zip(in_groups, tensor.shape):
        unknown = [a for a in group if a not in sizes]
        if len(unknown) > 1:
            raise ValueError(f"rearrange: cannot infer the sizes of {unknown}; pass them.")
        if unknown:
            known = int(np.prod([sizes[a] for a in group if a in sizes]))
            sizes[unknown[0]] = dim // known
        elif len(group) == 1:
            sizes[group[0]] = dim
    in_axes = [a for group in in_groups for a in group]
    out_axes = [a for group in out_groups for a in group]
    tensor = tensor.reshape([sizes[a] for a in in_axes])
    tensor = tensor.permute([in_axes.index(a) for a in out_axes])
    return tensor.reshape([int(np.prod([sizes[a] for a in group])) for group in out_groups])
