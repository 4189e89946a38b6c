"""Convolutional LSTMs: ``ConvLSTM1D``, ``ConvLSTM2D`` and ``ConvLSTM3D``.

An LSTM whose input and recurrent transformations are convolutions (Keras 3's formulas and
weights): inputs ``(batch, time, *spatial, channels)`` (or ``(batch, time, channels,
*spatial)`` with ``channels_first``); the cell's ``kernel`` is ``(*kernel_size, in, 4 *
filters)``, ``recurrent_kernel`` ``(*kernel_size, filters, 4 * filters)`` and ``bias`` ``(4 *
filters,)``, gates i, f, c, o. They are stored in torch's conv layout ``(out, in, *k)``.

The input convolution of every step runs as one batched convolution; the loop over time only
does the recurrent convolution ("same" padding, stride 1). Masked steps keep the states and
repeat the previous output, as in Keras's RNN. While training, ``dropout`` and
``recurrent_dropout`` draw one mask per sequence through the layer's ``SeedGenerator``, so
inside fit each sample's mask is the same on any number of workers.
"""

from __future__ import annotations

import torch

from distkeras import activations, constraints, initializers, regularizers
from distkeras.layers.base import CALL_CONTEXT, Layer
from distkeras.layers.conv_base import (
    common_config,
    convolve,
    kernel_to_keras,
    kernel_to_torch,
    lift,
    standardize_data_format,
    standardize_padding,
    standardize_tuple,
)
from distkeras.layers.core import check_positive_int
from distkeras.layers.input_spec import InputSpec
from distkeras.layers.rnn_cells import _UnitForgetBias
from distkeras.random import random as random_ops
from distkeras.random.seed_generator import SeedGenerator

__all__ = ["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"]


# Module-level converters (picklable). 1D kernels are stored lifted to 2D: (out, in, 1, k).
def _to_storage_1d(kernel: torch.Tensor) -> torch.Tensor:
    return kernel_to_torch(kernel).unsqueeze(2)


def _to_keras_1d(stored: torch.Tensor) -> torch.Tensor:
    return kernel_to_keras(stored.squeeze(2))


def _conv_output_size(n, k, s, d, padding):
    if n is None:
        return None
    if padding == "same":
        return -(-n // s)
    return (n - d * (k - 1) - 1) // s + 1


class ConvLSTMCell(Layer):
    """One step of a convolutional LSTM (Keras's ``ConvLSTMCell``; used by ``ConvLSTMND``)."""

    def __init__(
        self,
        rank: int,
        filters: int,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        layer = f"ConvLSTM{rank}D"
        if rank not in (1, 2, 3):
            raise ValueError(f"Rank {rank} convolutions are not currently implemented.")
        self.rank = rank
        self.filters = check_positive_int(layer, "filters", filters)
        self.kernel_size = standardize_tuple(layer, "kernel_size", kernel_size, rank)
        self.strides = standardize_tuple(layer, "strides", strides, rank)
        self.padding = standardize_padding(layer, padding)
        self.data_format = standardize_data_format(layer, data_format)
        self.dilation_rate = standardize_tuple(layer, "dilation_rate", dilation_rate, rank)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "Specifying `strides > 1` is not compatible with `dilation_rate > 1`. Please "
                f"provide `strides=1` or `dilation_rate=1`. Received: strides={self.strides} "
                f"and dilation_rate={self.dilation_rate}"
            )
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        for name, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{layer}: `{name}` must be a float. Received: {name}={value!r}")
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)

    def build(self, input_shape):
        channel_axis = -1 if self.data_format == "channels_last" else 1
        input_dim = input_shape[channel_axis]
        if input_dim is None:
            raise ValueError(
                "The channel dimension of the inputs (last axis) should be defined. Found "
                f"None. Full input shape received: input_shape={tuple(input_shape)}"
            )
        self.input_dim = int(input_dim)
        self.kernel = self._conv_kernel("kernel", "kernel", self.input_dim)
        self.recurrent_kernel = self._conv_kernel("recurrent_kernel", "recurrent", self.filters)
        if not self.use_bias:
            self.bias = None
        else:
            init = self.bias_initializer
            if self.unit_forget_bias:
                init = _UnitForgetBias(init)
            self.bias = self.add_weight(
                shape=(4 * self.filters,),
                initializer=init,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )

    def _conv_kernel(self, name: str, prefix: str, in_dim: int):
        """A Keras-layout ``(*kernel_size, in_dim, 4 * filters)`` weight, stored as torch's."""
        one_d = self.rank == 1
        return self.add_weight(
            shape=(*self.kernel_size, in_dim, 4 * self.filters),
            initializer=getattr(self, f"{prefix}_initializer"),
            regularizer=getattr(self, f"{prefix}_regularizer"),
            constraint=getattr(self, f"{prefix}_constraint"),
            name=name,
            to_storage=_to_storage_1d if one_d else kernel_to_torch,
            to_keras=_to_keras_1d if one_d else kernel_to_keras,
        )

    # ------------------------------------------------------------------- conv helpers
    def _conv_args(self):
        return lift(self.kernel_size, 1), lift(self.strides, 1), lift(self.dilation_rate, 1)

    def input_conv(self, x: torch.Tensor) -> torch.Tensor:
        """Input part of every gate for channels-first ``(N, C, *spatial)`` steps."""
        if self.rank == 1:
            x = x.unsqueeze(2)
        kernel, strides, dilation = self._conv_args()
        out = convolve(x, self.kernel, self.bias, kernel, strides, dilation, self.padding, 1)
        return out.squeeze(2) if self.rank == 1 else out

    def recurrent_conv(self, h: torch.Tensor) -> torch.Tensor:
        if self.rank == 1:
            h = h.unsqueeze(2)
        kernel, _, _ = self._conv_args()
        ones = (1,) * len(kernel)
        out = convolve(h, self.recurrent_kernel, None, kernel, ones, ones, "same", 1)
        return out.squeeze(2) if self.rank == 1 else out

    def output_spatial(self, spatial) -> tuple:
        return tuple(
            _conv_output_size(n, k, s, d, self.padding)
            for n, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate)
        )

    def step(self, projected, h, c, recurrent_mask=None):
        """One step on channels-first tensors: ``projected`` holds the input convolution."""
        h_in = h if recurrent_mask is None else h * recurrent_mask
        z = projected + self.recurrent_conv(h_in)
        zi, zf, zc, zo = z.chunk(4, dim=1)
        act, rec = self.activation, self.recurrent_activation
        i = activations.apply(rec, zi)
        f = activations.apply(rec, zf)
        c = f * c + i * activations.apply(act, zc)
        o = activations.apply(rec, zo)
        return o * activations.apply(act, c), c

    def call(self, inputs, states, training=None):
        raise NotImplementedError(
            "ConvLSTMCell runs inside ConvLSTM1D/2D/3D only in distkeras; use those layers."
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
            recurrent_activation=activations.serialize(self.recurrent_activation),
            unit_forget_bias=self.unit_forget_bias,
        )
        config.update(common_config(self, "kernel", "recurrent"))
        config.update(
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            seed=self.seed,
        )
        return config


_CELL_ARGS = (
    "filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
    "activation", "recurrent_activation", "use_bias", "kernel_initializer",
    "recurrent_initializer", "bias_initializer", "unit_forget_bias", "kernel_regularizer",
    "recurrent_regularizer", "bias_regularizer", "kernel_constraint", "recurrent_constraint",
    "bias_constraint", "dropout", "recurrent_dropout",
)  # fmt: skip


class _ConvLSTM(Layer):
    """Shared implementation of ConvLSTM1D/2D/3D (Keras's ``ConvLSTM``)."""

    rank = 2

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        **kwargs,
    ):
        cell_kwargs = {k: v for k, v in locals().items() if k in _CELL_ARGS}
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.cell = ConvLSTMCell(
            self.rank, **cell_kwargs, seed=seed, name="conv_lstm_cell", dtype=self.dtype
        )
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)  # accepted: the loop is the same either way
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.states: list[torch.Tensor] | None = None
        self.input_spec = InputSpec(ndim=self.rank + 3)

    def __getattr__(self, name):
        # Keras exposes the cell's arguments as the layer's properties (layer.filters, ...).
        if name in _CELL_ARGS:
            return getattr(self.cell, name)
        return super().__getattr__(name)

    def build(self, input_shape, initial_state_shape=None):
        shape = tuple(input_shape)
        step_shape = (shape[0], *shape[2:])
        spatial = step_shape[1:-1] if self.cell.data_format == "channels_last" else step_shape[2:]
        if None in spatial:
            raise ValueError(
                "ConvLSTM layers only support static input shapes for the spatial dimension. "
                f"Received invalid input shape: input_shape={shape}"
            )
        self.cell._build_if_needed(step_shape)
        self.input_spec = InputSpec(ndim=self.rank + 3, shape=(None, *shape[1:]))

    # ---------------------------------------------------------------------- shapes
    def _state_shape(self, step_shape) -> tuple:
        cell = self.cell
        if cell.data_format == "channels_last":
            out = cell.output_spatial(step_shape[1:-1])
            return (step_shape[0], *out, cell.filters)
        out = cell.output_spatial(step_shape[2:])
        return (step_shape[0], cell.filters, *out)

    def compute_output_shape(self, input_shape, initial_state_shape=None):
        shape = tuple(input_shape)
        state = self._state_shape((shape[0], *shape[2:]))
        output = (shape[0], shape[1], *state[1:]) if self.return_sequences else state
        return (output, state, state) if self.return_state else output

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        return [output_mask, None, None] if self.return_state else output_mask

    # ---------------------------------------------------------------------- states
    def _to_cf(self, x: torch.Tensor) -> torch.Tensor:
        """Channels-last ``(N, *spatial, C)`` -> channels-first view."""
        if self.cell.data_format == "channels_first":
            return x
        return x.permute(0, x.ndim - 1, *range(1, x.ndim - 1))

    def _from_cf(self, x: torch.Tensor) -> torch.Tensor:
        if self.cell.data_format == "channels_first":
            return x
        return x.permute(0, *range(2, x.ndim), 1)

    def reset_state(self) -> None:
        if self.states is not None:
            self.states = [torch.zeros_like(s) for s in self.states]

    reset_states = reset_state

    def _initial_states(self, initial_state, zeros: torch.Tensor) -> list:
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else []
            if len(states) != 2:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}' expects 2 initial state tensors "
                    f"[h, c]. Received: {initial_state!r}"
                )
            return [self._to_cf(torch.as_tensor(s, dtype=zeros.dtype)) for s in states]
        if not self.stateful or CALL_CONTEXT.symbolic:
            return [zeros, zeros]
        if self.states is None or self.states[0].shape != zeros.shape:
            if self.states is not None:
                raise ValueError(
                    f"Stateful layer '{self.name}' was first called with batch size "
                    f"{self.states[0].shape[0]} and now with {zeros.shape[0]}: a stateful "
                    "layer needs a fixed batch size."
                )
            self.states = [zeros, zeros]
        return list(self.states)

    def _dropout_mask(self, like: torch.Tensor, rate: float):
        if not 0.0 < rate < 1.0:
            return None
        # One mask per sequence, drawn per sample inside fit (worker-count independent).
        return random_ops.dropout(torch.ones_like(like), rate, seed=self.cell.seed_generator)

    # ------------------------------------------------------------------------ call
    def call(self, sequences, initial_state=None, mask=None, training=None):
        cell = self.cell
        x = sequences
        if not x.is_floating_point() or x.dtype != cell.kernel.dtype:
            x = x.to(cell.kernel.dtype)
        batch, steps = x.shape[0], x.shape[1]
        if training and not CALL_CONTEXT.symbolic:
            input_mask = self._dropout_mask(x[:, 0], cell.dropout)
            if input_mask is not None:
                x = x * input_mask.unsqueeze(1)
        step_cf = self._to_cf(x.reshape(batch * steps, *x.shape[2:]))
        projected = cell.input_conv(step_cf)
        projected = projected.reshape(batch, steps, *projected.shape[1:])
        zeros = projected.new_zeros(batch, cell.filters, *projected.shape[3:])
        h, c = self._initial_states(initial_state, zeros)
        recurrent_mask = None
        if training and not CALL_CONTEXT.symbolic:
            recurrent_mask = self._dropout_mask(self._from_cf(h), cell.recurrent_dropout)
            recurrent_mask = None if recurrent_mask is None else self._to_cf(recurrent_mask)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if mask is not None:
            mask = mask.to(device=x.device, dtype=torch.bool)
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        outputs, previous = [], None
        for t in order:
            h_new, c_new = cell.step(projected[:, t], h, c, recurrent_mask)
            out = h_new
            if mask is not None:
                keep = mask[:, t].view(-1, *[1] * (h.ndim - 1))
                h_new, c_new = torch.where(keep, h_new, h), torch.where(keep, c_new, c)
                if previous is None or self.zero_output_for_mask:
                    previous = torch.zeros_like(out)
                out = torch.where(keep, out, previous)
                previous = out
            h, c = h_new, c_new
            if self.return_sequences:
                outputs.append(out)
            last = out
        if self.stateful and not CALL_CONTEXT.symbolic:
            self.states = [h.detach(), c.detach()]
        if self.return_sequences:
            output = torch.stack([self._from_cf(o) for o in outputs], dim=1)
        else:
            output = self._from_cf(last)
        if self.return_state:
            return output, self._from_cf(h), self._from_cf(c)
        return output

    # ---------------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config.update(cell_config)
        config.update(
            activity_regularizer=regularizers.serialize(self.activity_regularizer),
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            go_backwards=self.go_backwards,
            stateful=self.stateful,
            unroll=self.unroll,
            zero_output_for_mask=self.zero_output_for_mask,
        )
        return config


class ConvLSTM1D(_ConvLSTM):
    """1D convolutional LSTM: inputs ``(batch, time, steps, channels)``.

    Takes Keras's ``ConvLSTM`` arguments (``filters``, ``kernel_size``, ``strides``,
    ``padding``, ``data_format``, ``dilation_rate``, activations, initializers, regularizers,
    constraints, ``dropout``, ``recurrent_dropout``, ``seed``, ``return_sequences``,
    ``return_state``, ``go_backwards``, ``stateful``, ``unroll``).

    Example:
        >>> ConvLSTM1D(4, 3, padding="same")(torch.ones(2, 5, 8, 3)).shape
        torch.Size([2, 8, 4])
    """

    rank = 1


class ConvLSTM2D(_ConvLSTM):
    """2D convolutional LSTM: inputs ``(batch, time, rows, cols, channels)``.

    Example:
        >>> ConvLSTM2D(4, 3, return_sequences=True)(torch.ones(2, 5, 8, 8, 3)).shape
        torch.Size([2, 5, 6, 6, 4])
    """

    rank = 2


class ConvLSTM3D(_ConvLSTM):
    """3D convolutional LSTM: inputs ``(batch, time, dim1, dim2, dim3, channels)``.

    Example:
        >>> ConvLSTM3D(2, 2)(torch.ones(1, 3, 4, 4, 4, 1)).shape
        torch.Size([1, 3, 3, 3, 2])
    """

    rank = 3
