"""``EinsumDense``: a dense layer of any dimensionality, ``einsum(equation, inputs, kernel)``.

The kernel and bias shapes are derived from the equation, the input shape and the partial
``output_shape`` exactly as Keras 3 derives them (``_analyze_einsum_string``), so weights move
between Keras and distkeras unchanged; the kernel is stored in Keras's layout (``torch.einsum``
takes any layout). A VarianceScaling kernel initializer (glorot, he, lecun...) without explicit
axes is given the kernel's input and output axes, as Keras 3.15 does, so fans are computed
over the contracted and the produced axes rather than the dense/conv convention.
"""

from __future__ import annotations

import copy
import re

import torch

from distkeras import activations, constraints, initializers, regularizers
from distkeras.layers.base import Layer
from distkeras.layers.input_spec import InputSpec

__all__ = ["EinsumDense"]

# Keras arguments for LoRA and quantization; only their "off" values are supported here.
_UNSUPPORTED = ("lora_rank", "lora_alpha", "gptq_unpacked_column_size", "quantization_config")


def analyze_einsum_string(equation: str, bias_axes, input_shape, output_shape):
    """``(kernel_shape, bias_shape, full_output_shape, input_axes, output_axes)``."""
    dotted = re.sub(r"\.\.\.", "0", equation)
    match = re.match("([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$", dotted)
    if match:
        return _analyze_split(match, bias_axes, input_shape, output_shape, left_elided=False)
    match = re.match("0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)$", dotted)
    if match:
        return _analyze_split(match, bias_axes, input_shape, output_shape, left_elided=True)
    match = re.match("([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0$", dotted)
    if match:
        return _analyze_split(match, bias_axes, input_shape, output_shape, left_elided=False)
    raise ValueError(
        f"Invalid einsum equation '{equation}'. Equations must be in the form "
        "[X],[Y]->[Z], ...[X],[Y]->...[Z], or [X]...,[Y]->[Z]...."
    )


def _analyze_split(match, bias_axes, input_shape, output_shape, left_elided: bool):
    input_spec, weight_spec, output_spec = match.group(1), match.group(2), match.group(3)
    input_shape = tuple(input_shape)
    elided = len(input_shape) - len(input_spec)
    output_shape = [output_shape] if isinstance(output_shape, int) else list(output_shape)
    output_shape.insert(0, input_shape[0])
    if elided > 0 and left_elided:
        for i in range(1, elided):
            output_shape.insert(1, input_shape[i])
    elif elided > 0:
        output_shape.extend(input_shape[len(input_shape) - elided :])

    if left_elided:
        # Elided leading axes: input axes counted from the end, output axes after them.
        input_dim_map = {d: (i + elided) - len(input_shape) for i, d in enumerate(input_spec)}
        output_dim_map = {d: i + elided for i, d in enumerate(output_spec)}
    else:
        input_dim_map = {d: i for i, d in enumerate(input_spec)}
        output_dim_map = {d: i for i, d in enumerate(output_spec)}

    for dim in input_spec:
        size = input_shape[input_dim_map[dim]]
        if dim in output_dim_map:
            out = output_shape[output_dim_map[dim]]
            if out is not None and out != size:
                raise ValueError(
                    f"Input shape and output shape do not match at shared dimension '{dim}'. "
                    f"Input shape is {size}, and output shape is {out}."
                )
    for dim in output_spec:
        if dim not in input_spec and dim not in weight_spec:
            raise ValueError(
                f"Dimension '{dim}' was specified in the output '{output_spec}' but has no "
                f"corresponding dim in the input spec '{input_spec}' or weight spec "
                f"'{weight_spec}'"
            )

    kernel_shape, input_axes, output_axes = [], [], []
    for i, dim in enumerate(weight_spec):
        if dim in output_dim_map:
            kernel_shape.append(output_shape[output_dim_map[dim]])
            output_axes.append(i)
        elif dim in input_dim_map:
            kernel_shape.append(input_shape[input_dim_map[dim]])
            input_axes.append(i)
        else:
            raise ValueError(
                f"Weight dimension '{dim}' did not have a match in either the input spec "
                f"'{input_spec}' or the output spec '{output_spec}'. For this layer, the weight "
                "must be fully specified."
            )

    bias_shape = None
    if bias_axes is not None:
        offset = elided if left_elided else 0
        sizes = {c: output_shape[i + offset] for i, c in enumerate(output_spec)}
        for char in bias_axes:
            if char not in output_spec:
                raise ValueError(
                    f"Bias dimension '{char}' was requested, but is not part of the output "
                    f"spec '{output_spec}'"
                )
        first = min(output_spec.find(c) for c in bias_axes)
        bias_shape = [sizes[c] if c in bias_axes else 1 for c in output_spec[first:]]
        if not left_elided:
            bias_shape.extend([1] * max(elided, 0))
    return kernel_shape, bias_shape, output_shape, input_axes, output_axes


class EinsumDense(Layer):
    """A dense layer computed with ``einsum``: ``activation(einsum(equation, x, kernel) + b)``.

    Args:
        equation: ``"ab,bc->ac"``, ``"...ab,bc->...ac"`` or ``"ab...,bc->ac..."`` forms.
        output_shape: the output shape without the batch axis and elided axes (an int for
            one axis; ``None`` entries are inferred from the input).
        activation: activation applied to the output.
        bias_axes: output axes (letters of the output spec) that get a bias.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: as in ``Dense``.

    Example:
        >>> layer = EinsumDense("abc,cd->abd", output_shape=(None, 64), bias_axes="d")
        >>> layer(torch.ones(2, 32, 128)).shape
        torch.Size([2, 32, 64])
    """

    def __init__(
        self,
        equation: str,
        output_shape,
        activation=None,
        bias_axes: str | None = None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        lora_rank=None,
        lora_alpha=None,
        gptq_unpacked_column_size=None,
        quantization_config=None,
        **kwargs,
    ):
        given = dict(
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            gptq_unpacked_column_size=gptq_unpacked_column_size,
            quantization_config=quantization_config,
        )
        for key in _UNSUPPORTED:
            if given[key] is not None:
                raise NotImplementedError(
                    f"EinsumDense: `{key}` (LoRA/quantization) is not supported by distkeras. "
                    f"Received: {key}={given[key]!r}"
                )
        super().__init__(**kwargs)
        if not isinstance(equation, str):
            raise TypeError(f"EinsumDense: `equation` must be a string. Received: {equation!r}")
        self.equation = equation
        if isinstance(output_shape, int):
            self.partial_output_shape = (output_shape,)
        else:
            self.partial_output_shape = tuple(output_shape)
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.lora_rank = None
        self.lora_enabled = False

    def _kernel_initializer_for(self, input_axes, output_axes):
        init = self.kernel_initializer
        if isinstance(init, initializers.VarianceScaling) and (
            init.input_axes is None or init.output_axes is None
        ):
            # A copy keeps the drawn seed (as Keras passes the concrete seed on).
            init = copy.copy(init)
            init.input_axes, init.output_axes = list(input_axes), list(output_axes)
        return init

    def build(self, input_shape):
        kernel_shape, bias_shape, _, input_axes, output_axes = analyze_einsum_string(
            self.equation, self.bias_axes, input_shape, self.partial_output_shape
        )
        if any(d is None for d in kernel_shape) or (bias_shape and None in bias_shape):
            raise ValueError(
                f"EinsumDense layer '{self.name}': the kernel shape {kernel_shape} has unknown "
                f"dimensions; give them in `output_shape` or the input shape. Received: "
                f"input_shape={tuple(input_shape)}"
            )
        self.input_spec = InputSpec(ndim=len(input_shape))
        self._kernel = self.add_weight(
            shape=tuple(kernel_shape),
            initializer=self._kernel_initializer_for(input_axes, output_axes),
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.bias = (
            self.add_weight(
                shape=tuple(bias_shape),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
            if bias_shape is not None
            else None
        )

    @property
    def kernel(self) -> torch.Tensor:
        if not self.built:
            raise AttributeError("You must build the layer before accessing `kernel`.")
        return self._kernel

    def call(self, inputs):
        x = torch.einsum(self.equation, inputs, self._kernel)
        if self.bias is not None:
            x = x + self.bias
        return activations.apply(self.activation, x)

    def compute_output_shape(self, input_shape):
        _, _, full, _, _ = analyze_einsum_string(
            self.equation, self.bias_axes, input_shape, self.partial_output_shape
        )
        return tuple(full)

    def enable_lora(self, *args, **kwargs):
        raise NotImplementedError("EinsumDense.enable_lora: LoRA is not supported by distkeras.")

    def quantize(self, *args, **kwargs):
        raise NotImplementedError(
            "EinsumDense.quantize: quantization is not supported by distkeras."
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            output_shape=list(self.partial_output_shape),
            equation=self.equation,
            activation=activations.serialize(self.activation),
            bias_axes=self.bias_axes,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
            activity_regularizer=regularizers.serialize(self.activity_regularizer),
            kernel_constraint=constraints.serialize(self.kernel_constraint),
            bias_constraint=constraints.serialize(self.bias_constraint),
            quantization_config=None,
        )
        return config
