"""Merging layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot.

Each takes a list of tensors. Elementwise merges broadcast as Keras does: inputs of lower rank
get size-1 axes inserted after the batch axis, then numpy broadcasting applies; shapes that
cannot broadcast are refused when the layer is built, naming the layer. The lowercase
functions (``add([a, b])``, ``concatenate([a, b], axis=1)``...) build and call the layer.
"""

from __future__ import annotations

import torch

from distkeras.layers.base import Layer

__all__ = [
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "Dot",
]


def _broadcast_shape(layer: Layer, shape1: tuple, shape2: tuple, shapes) -> tuple:
    """Numpy broadcasting of two non-batch shapes; None (unknown) is compatible with all."""
    if len(shape1) < len(shape2):
        shape1, shape2 = shape2, shape1
    out = list(shape1[: len(shape1) - len(shape2)])
    for a, b in zip(shape1[len(shape1) - len(shape2) :], shape2):
        if a is None or b is None:
            out.append(None)
        elif a == 1 or b == 1 or a == b:
            out.append(b if a == 1 else a)
        else:
            raise ValueError(
                f"{type(layer).__name__} layer '{layer.name}': inputs have incompatible shapes "
                f"{[tuple(s) for s in shapes]}; non-batch dimensions must be equal or 1."
            )
    return tuple(out)


def _check_list(layer: Layer, input_shape, exactly: int | None = None) -> list:
    if not isinstance(input_shape, (list, tuple)) or not all(
        isinstance(s, (list, tuple)) for s in input_shape
    ):
        raise ValueError(
            f"{type(layer).__name__} layer '{layer.name}' must be called on a list of tensors. "
            f"Received: input_shape={input_shape}"
        )
    if not input_shape or (exactly is not None and len(input_shape) != exactly):
        expected = f"exactly {exactly}" if exactly else "at least 1"
        raise ValueError(
            f"{type(layer).__name__} layer '{layer.name}' must be called on {expected} inputs. "
            f"Received {len(input_shape)} inputs with shapes {list(input_shape)}"
        )
    batch_sizes = {s[0] for s in input_shape if len(s)} - {None}
    if len(batch_sizes) > 1:
        raise ValueError(
            f"{type(layer).__name__} layer '{layer.name}': inputs have different batch sizes. "
            f"Received shapes {list(input_shape)}"
        )
    return [tuple(s) for s in input_shape]


def _spread_mask(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    while mask.ndim < x.ndim:
        mask = mask.unsqueeze(-1)
    return mask.expand_as(x)


class _Merge(Layer):
    """Base of the elementwise merges: shape checks, rank alignment, masks."""

    _exact_inputs: int | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        shapes = _check_list(self, input_shape, self._exact_inputs)
        out = shapes[0][1:]
        for shape in shapes[1:]:
            out = _broadcast_shape(self, out, shape[1:], shapes)

    def call(self, inputs, mask=None):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{type(self).__name__} layer '{self.name}' must be called on a list of tensors. "
                f"Received: {type(inputs).__name__}"
            )
        inputs = list(inputs)
        rank = max(x.ndim for x in inputs)
        # Keras aligns lower-rank inputs by inserting axes right after the batch axis.
        for i, x in enumerate(inputs):
            while x.ndim < rank:
                x = x.unsqueeze(1)
            inputs[i] = x
        masks = list(mask) if isinstance(mask, (list, tuple)) else [None] * len(inputs)
        return self._merge(inputs, masks)

    def _merge(self, inputs: list, masks: list) -> torch.Tensor:
        raise NotImplementedError

    def compute_mask(self, inputs, mask=None):
        # Keras: an output step is valid where any input is valid, if every input has a mask.
        if not isinstance(mask, (list, tuple)) or any(m is None for m in mask):
            return None
        out = mask[0]
        for m in mask[1:]:
            out = torch.logical_or(out, m)
        return out


class Add(_Merge):
    """Elementwise sum of a list of tensors.

    Example:
        >>> Add()([torch.ones(2, 3), torch.ones(2, 3)])
        tensor([[2., 2., 2.],
                [2., 2., 2.]])
    """

    def _merge(self, inputs, masks):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


class Subtract(_Merge):
    """``inputs[0] - inputs[1]``; takes exactly two tensors.

    Example:
        >>> Subtract()([torch.ones(1, 2), torch.ones(1, 2)])
        tensor([[0., 0.]])
    """

    _exact_inputs = 2

    def _merge(self, inputs, masks):
        if len(inputs) != 2:
            raise ValueError(
                f"Subtract layer '{self.name}' must be called on exactly 2 inputs. "
                f"Received {len(inputs)}."
            )
        return inputs[0] - inputs[1]


class Multiply(_Merge):
    """Elementwise product of a list of tensors.

    With masks, masked entries count as 1 in the product, and when every input is masked the
    entries masked in all inputs are set to 0, as in Keras.

    Example:
        >>> Multiply()([torch.full((1, 2), 2.0), torch.full((1, 2), 3.0)])
        tensor([[6., 6.]])
    """

    def _merge(self, inputs, masks):
        all_masked = all(m is not None for m in masks)
        out, out_mask = None, None
        for x, m in zip(inputs, masks):
            if m is not None:
                m = _spread_mask(m, x)
                x = torch.where(m, x, torch.ones((), dtype=x.dtype, device=x.device))
                if all_masked:
                    out_mask = m if out_mask is None else torch.logical_or(out_mask, m)
            out = x if out is None else out * x
        if out_mask is not None:
            out = torch.where(out_mask, out, torch.zeros((), dtype=out.dtype, device=out.device))
        return out


class Average(_Merge):
    """Elementwise mean of a list of tensors.

    Example:
        >>> Average()([torch.zeros(1, 2), torch.full((1, 2), 4.0)])
        tensor([[2., 2.]])
    """

    def _merge(self, inputs, masks):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out / len(inputs)


class _MaskedExtremum(_Merge):
    """Maximum/Minimum: a masked entry takes the other operand's value (no identity element)."""

    _op = None

    def _merge(self, inputs, masks):
        op = type(self)._op
        out, out_mask = None, None
        for x, m in zip(inputs, masks):
            m = None if m is None else _spread_mask(m, x)
            if out is None:
                out, out_mask = x, m
                continue
            if m is not None:
                x = torch.where(m, x, out)
            if out_mask is not None:
                out = torch.where(out_mask, out, x)
            out_mask = None if m is None or out_mask is None else torch.logical_or(out_mask, m)
            out = op(out, x)
        return out


class Maximum(_MaskedExtremum):
    """Elementwise maximum of a list of tensors.

    Example:
        >>> Maximum()([torch.tensor([[1.0, 5.0]]), torch.tensor([[3.0, 2.0]])])
        tensor([[3., 5.]])
    """

    _op = staticmethod(torch.maximum)


class Minimum(_MaskedExtremum):
    """Elementwise minimum of a list of tensors.

    Example:
        >>> Minimum()([torch.tensor([[1.0, 5.0]]), torch.tensor([[3.0, 2.0]])])
        tensor([[1., 2.]])
    """

    _op = staticmethod(torch.minimum)


class Concatenate(_Merge):
    """Concatenates a list of tensors along ``axis``; other dimensions must match.

    Masks: when any input has one, the output mask concatenates the masks (all True for
    unmasked inputs), as Keras does.

    Example:
        >>> Concatenate(axis=1)([torch.zeros(2, 3), torch.ones(2, 4)]).shape
        torch.Size([2, 7])
    """

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(
                f"Concatenate: argument `axis` must be an int. Received: axis={axis!r}"
            )
        self.axis = axis

    def build(self, input_shape):
        shapes = _check_list(self, input_shape)
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes) or not -rank <= self.axis < rank:
            raise ValueError(
                f"Concatenate layer '{self.name}': all inputs must have the same rank and "
                f"contain axis={self.axis}. Received shapes {shapes}"
            )
        axis = self.axis % rank
        for dim in range(rank):
            sizes = {s[dim] for s in shapes} - {None}
            if dim != axis and len(sizes) > 1:
                raise ValueError(
                    f"Concatenate layer '{self.name}' needs inputs with matching shapes except "
                    f"along the concatenation axis {self.axis}. Received shapes {shapes}"
                )

    def call(self, inputs, mask=None):
        return torch.cat(list(inputs), dim=self.axis)

    def compute_mask(self, inputs, mask=None):
        if not isinstance(mask, (list, tuple)) or all(m is None for m in mask):
            return None
        full = []
        for x, m in zip(inputs, mask):
            if m is None:
                full.append(torch.ones(x.shape, dtype=torch.bool, device=x.device))
            else:
                full.append(_spread_mask(m, x))
        return torch.cat(full, dim=self.axis).any(dim=-1)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


def _dot_axes(axes, shape1, shape2) -> tuple[int, int]:
    pair = (axes, axes) if isinstance(axes, int) else tuple(axes)
    return pair[0] % len(shape1), pair[1] % len(shape2)


class Dot(_Merge):
    """Batchwise dot product of two tensors along ``axes``, as Keras's ``batch_dot``.

    The output has the remaining axes of the first input then of the second (batch once); a
    result with only the batch axis becomes ``(batch, 1)``. ``normalize=True`` L2-normalizes
    both inputs along the dot axes first (giving cosine similarity), dividing by
    ``max(norm, 1e-7)``.

    Example:
        >>> Dot(axes=1)([torch.ones(2, 3), torch.ones(2, 3)])
        tensor([[3.],
                [3.]])
    """

    _exact_inputs = 2

    def __init__(self, axes, normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (list, tuple)):
            if len(axes) != 2 or not all(
                isinstance(a, int) and not isinstance(a, bool) for a in axes
            ):
                raise ValueError(
                    "Dot: argument `axes` must be an int or a pair of ints. "
                    f"Received: axes={axes!r}"
                )
            axes = list(axes)
        elif isinstance(axes, bool) or not isinstance(axes, int):
            raise TypeError(
                f"Dot: argument `axes` must be an int or a pair of ints. Received: axes={axes!r}"
            )
        self.axes = axes
        self.normalize = bool(normalize)
        self.supports_masking = True

    def build(self, input_shape):
        shape1, shape2 = _check_list(self, input_shape, 2)
        if len(shape1) < 2 or len(shape2) < 2:
            raise ValueError(
                f"Dot layer '{self.name}' needs inputs of rank >= 2 (batch included). "
                f"Received shapes {shape1} and {shape2}"
            )
        a1, a2 = _dot_axes(self.axes, shape1, shape2)
        if a1 == 0 or a2 == 0:
            raise ValueError(
                f"Dot layer '{self.name}' cannot take the dot product over the batch axis. "
                f"Received: axes={self.axes}"
            )
        if shape1[a1] is not None and shape2[a2] is not None and shape1[a1] != shape2[a2]:
            raise ValueError(
                f"Dot layer '{self.name}': incompatible input shapes: axis {a1} of {shape1} has "
                f"size {shape1[a1]} but axis {a2} of {shape2} has size {shape2[a2]}."
            )

    def call(self, inputs, mask=None):
        x, y = inputs
        a1, a2 = _dot_axes(self.axes, x.shape, y.shape)
        if self.normalize:
            x = x / torch.linalg.vector_norm(x, dim=a1, keepdim=True).clamp_min(1e-7)
            y = y / torch.linalg.vector_norm(y, dim=a2, keepdim=True).clamp_min(1e-7)
        # einsum letters: 'a' batch, 'z' the contracted axis, others in order.
        letters = iter("bcdefghijklmnopqrstuvwxy")
        xs = ["a"] + [("z" if i == a1 else next(letters)) for i in range(1, x.ndim)]
        ys = ["a"] + [("z" if i == a2 else next(letters)) for i in range(1, y.ndim)]
        out = "a" + "".join(c for c in xs[1:] + ys[1:] if c != "z")
        result = torch.einsum(f"{''.join(xs)},{''.join(ys)}->{out}", x, y)
        return result.unsqueeze(-1) if result.ndim == 1 else result

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(axes=self.axes, normalize=self.normalize)
        return config


# ------------------------------------------------------------------ functional forms
def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``, as ``keras.layers.add``."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """``Subtract(**kwargs)(inputs)``, as ``keras.layers.subtract``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """``Multiply(**kwargs)(inputs)``, as ``keras.layers.multiply``."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """``Average(**kwargs)(inputs)``, as ``keras.layers.average``."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """``Maximum(**kwargs)(inputs)``, as ``keras.layers.maximum``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """``Minimum(**kwargs)(inputs)``, as ``keras.layers.minimum``."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis: int = -1, **kwargs):
    """``Concatenate(axis, **kwargs)(inputs)``, as ``keras.layers.concatenate``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, **kwargs):
    """``Dot(axes, **kwargs)(inputs)``, as ``keras.layers.dot``."""
    return Dot(axes=axes, **kwargs)(inputs)
