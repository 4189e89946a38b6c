"""RNN cells: one time step of SimpleRNN, LSTM and GRU with Keras's weights and formulas.

A cell stores its weights in the layout torch's fused kernels (``torch.rnn_tanh``,
``torch.lstm``, ``torch.gru``) take: kernels ``(gates * units, input_dim)``, LSTM gates in
i, f, c, o order (torch's i, f, g, o: the same order) and GRU gates in torch's r, z, n order.
``get_weights``/``set_weights`` and initializers see Keras's layout: kernels
``(input_dim, gates * units)`` with GRU gates z, r, h, and a GRU ``reset_after`` bias
``(2, 3 * units)``.

The sequence layers in :mod:`distkeras.layers.recurrent` run a whole sequence through the fused
kernel when the configuration allows, and otherwise loop over time with :meth:`project_inputs`
(one matmul for every step's input) and :meth:`step` (the recurrent part).
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F

from distkeras import activations, constraints, initializers, regularizers
from distkeras.layers.base import Layer
from distkeras.layers.core import check_positive_int
from distkeras.random import random as random_ops
from distkeras.random.seed_generator import SeedGenerator

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell"]

# On CUDA, cuDNN copies separately stored weights into one buffer per call (cheap next to the
# sequence) and warns about it; the warning is meant for torch.nn.RNN modules, so it is
# silenced for calls made from this module only.
warnings.filterwarnings(
    "ignore",
    message="RNN module weights are not part of single contiguous chunk",
    module=__name__,
)


def _run_kernel(op, *args):
    """Calls a fused RNN kernel, outside torch.compile graphs when compiling (inductor cannot
    lower the CPU kernel with autograd; torch.nn.LSTM is likewise left out of graphs)."""
    if torch.compiler.is_compiling():
        return _graph_break_runner()(op, *args)
    return op(*args)


@functools.cache
def _graph_break_runner():
    # Built on first use: torch.compiler.disable imports dynamo, ~1.5 s a process start.
    return torch.compiler.disable(_call)


def _call(op, *args):
    return op(*args)


# Pre-activation added to the LSTM input/forget gates on frozen steps: sigmoid saturates to
# exactly 0 and 1 in float32/16, so the carry passes through unchanged and gets no gradient.
_SATURATE = 1e4


# ------------------------------------------------------------------ layout converters
# Module-level functions (not lambdas) so layers stay picklable.
def _transpose(w: torch.Tensor) -> torch.Tensor:
    return w.t()


def _swap_first_two_gates(w: torch.Tensor) -> torch.Tensor:
    """Keras z, r, h <-> torch r, z, n along the last axis (its own inverse)."""
    a, b, c = w.chunk(3, dim=-1)
    return torch.cat([b, a, c], dim=-1)


def _gru_kernel_to_storage(w: torch.Tensor) -> torch.Tensor:
    return _swap_first_two_gates(w).t()


def _gru_kernel_to_keras(w: torch.Tensor) -> torch.Tensor:
    return _swap_first_two_gates(w.t())


def _is_activation(fn, *candidates) -> bool:
    return any(fn is c for c in candidates)


def _dropout_rate(layer: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(
            f"{layer}: argument `{name}` must be a float in [0, 1]. Received: {name}={value!r}"
        )
    return float(value)


class _UnitForgetBias(initializers.Initializer):
    """LSTM bias: the base initializer everywhere except ones for the forget gate."""

    def __init__(self, base):
        self.base = base

    def __call__(self, shape, dtype=None):
        units = shape[0] // 4
        ones = initializers.get("ones")((units,), dtype=dtype)
        parts = [self.base((units,), dtype=dtype), ones, self.base((2 * units,), dtype=dtype)]
        return torch.cat([torch.as_tensor(p, dtype=ones.dtype) for p in parts])


class _RNNCell(Layer):
    """Shared arguments, weights, dropout masks and config of the built-in cells."""

    _gates = 1
    _keras_name = "RNNCell"

    def __init__(
        self,
        units: int,
        activation="tanh",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
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
        kwargs.pop("implementation", None)  # Keras's implementation switch; one path here.
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.units = check_positive_int(cls, "units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = _dropout_rate(cls, "dropout", dropout)
        self.recurrent_dropout = _dropout_rate(cls, "recurrent_dropout", recurrent_dropout)
        self.seed = seed
        # Created always, as Keras does (an unseeded one draws its seed from Python's random).
        self.seed_generator = SeedGenerator(seed)
        self._dropout_mask_cache = self._recurrent_mask_cache = None
        self.state_size: int | list[int] = self.units
        self.output_size = self.units

    # ------------------------------------------------------------------------ weights
    def _kernel_layout(self):
        return _transpose, _transpose

    def _bias_spec(self):
        """(Keras shape, initializer, to_storage, to_keras) of the bias."""
        return (self._gates * self.units,), self.bias_initializer, None, None

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' needs a known feature dimension. "
                f"Received: input_shape={input_shape}"
            )
        width = self._gates * self.units
        to_storage, to_keras = self._kernel_layout()
        self.kernel = self.add_weight(
            shape=(input_dim, width),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
            to_storage=to_storage,
            to_keras=to_keras,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
            name="recurrent_kernel",
            to_storage=to_storage,
            to_keras=to_keras,
        )
        if not self.use_bias:
            self.bias = None
        else:
            shape, init, bias_to_storage, bias_to_keras = self._bias_spec()
            self.bias = self.add_weight(
                shape=shape,
                initializer=init,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
                to_storage=bias_to_storage,
                to_keras=bias_to_keras,
            )

    # ------------------------------------------------------------------------ compute
    def get_initial_state(self, batch_size: int, like: torch.Tensor | None = None):
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        ref = like if like is not None else self.kernel
        return [ref.new_zeros(batch_size, n) for n in sizes]

    def dropout_mask(self, like: torch.Tensor, rate: float) -> torch.Tensor | None:
        """An inverted-dropout mask shaped like ``like`` (None when ``rate`` drops nothing).

        Drawn through ``distkeras.random.dropout`` on the cell's SeedGenerator: inside a fit
        training step each sample's mask depends only on (seed, layer, step, sample index),
        whichever worker holds the sample.
        """
        if not 0.0 < rate < 1.0:
            return None
        return random_ops.dropout(torch.ones_like(like), rate, seed=self.seed_generator)

    # Keras's DropoutRNNCell: a cell called step by step (RNN over custom or stacked cells)
    # keeps one mask for every step of a sequence; the RNN layer resets them per call.
    def get_dropout_mask(self, step_input: torch.Tensor) -> torch.Tensor | None:
        cached = self._dropout_mask_cache
        if cached is None or cached.shape != step_input.shape:
            cached = self._dropout_mask_cache = self.dropout_mask(step_input, self.dropout)
        return cached

    def get_recurrent_dropout_mask(self, step_input: torch.Tensor) -> torch.Tensor | None:
        cached = self._recurrent_mask_cache
        if cached is None or cached.shape != step_input.shape:
            rate = self.recurrent_dropout
            cached = self._recurrent_mask_cache = self.dropout_mask(step_input, rate)
        return cached

    def reset_dropout_mask(self) -> None:
        self._dropout_mask_cache = None

    def reset_recurrent_dropout_mask(self) -> None:
        self._recurrent_mask_cache = None

    def _input_bias(self):
        return self.bias

    def project_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """The input part of every gate, for one step ``(batch, in)`` or all ``(batch, T, in)``."""
        return F.linear(inputs, self.kernel, self._input_bias())

    def step(self, projected: torch.Tensor, states: list, recurrent_mask=None):
        """One recurrent step from projected inputs; returns ``(output, new_states)``."""
        raise NotImplementedError

    def fused_op(self):
        """The torch fused kernel for this configuration, or None when it cannot be used."""
        return None

    def fused_forward(self, inputs: torch.Tensor, states: list, freeze=None):
        """Runs the fused kernel over ``(batch, T, in)``; returns ``(h_sequence, final_states)``.

        ``freeze`` (batch, T) marks trailing steps that must keep every carry unchanged (only
        cells with a carry besides ``h`` need it; ``h`` is read from the sequence).
        """
        h0 = states[0].unsqueeze(0)
        params = [self.kernel, self.recurrent_kernel]
        if self.use_bias:
            params += [self.bias, self.bias.new_zeros(self.bias.shape)]
        out, h_n = _run_kernel(
            self.fused_op(),
            inputs,
            h0,
            params,
            self.use_bias,
            1,
            0.0,
            torch.is_grad_enabled(),
            False,
            True,
        )
        return out, [h_n[0]]

    def call(self, inputs, states, training=None):
        single = isinstance(states, torch.Tensor)
        states = [states] if single else list(states)
        recurrent_mask = None
        if training:
            in_mask = self.get_dropout_mask(inputs) if self.dropout > 0 else None
            if in_mask is not None:
                inputs = inputs * in_mask
            if self.recurrent_dropout > 0:
                recurrent_mask = self.get_recurrent_dropout_mask(states[0])
        output, new_states = self.step(self.project_inputs(inputs), states, recurrent_mask)
        return output, (new_states[0] if single else new_states)

    # ------------------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            recurrent_initializer=initializers.serialize(self.recurrent_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
            recurrent_regularizer=regularizers.serialize(self.recurrent_regularizer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
            kernel_constraint=constraints.serialize(self.kernel_constraint),
            recurrent_constraint=constraints.serialize(self.recurrent_constraint),
            bias_constraint=constraints.serialize(self.bias_constraint),
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            seed=self.seed,
        )
        return config


class SimpleRNNCell(_RNNCell):
    """One step of a fully connected RNN: ``h = activation(x @ kernel + h @ recurrent + b)``.

    Weights (Keras layout): kernel ``(in, units)``, recurrent_kernel ``(units, units)``,
    bias ``(units,)``.

    Example:
        >>> cell = SimpleRNNCell(4)
        >>> out, state = cell(torch.ones(2, 3), [torch.zeros(2, 4)])
        >>> out.shape
        torch.Size([2, 4])
    """

    def step(self, projected, states, recurrent_mask=None):
        h = states[0] if recurrent_mask is None else states[0] * recurrent_mask
        out = self.activation(projected + F.linear(h, self.recurrent_kernel))
        return out, [out]

    def fused_op(self):
        if _is_activation(self.activation, activations.tanh, torch.tanh):
            return torch.rnn_tanh
        if _is_activation(self.activation, activations.relu, torch.relu, F.relu):
            return torch.rnn_relu
        return None


class _GatedCell(_RNNCell):
    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)

    def _default_activations(self) -> bool:
        return _is_activation(self.activation, activations.tanh, torch.tanh) and _is_activation(
            self.recurrent_activation, activations.sigmoid, torch.sigmoid
        )

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        return config


class LSTMCell(_GatedCell):
    """One LSTM step (Hochreiter 1997) with Keras's gates i, f, c, o.

    ``c = f * c + i * activation(x_c)``, ``h = o * activation(c)``, gates through
    ``recurrent_activation``. Weights (Keras layout): kernel ``(in, 4 * units)``,
    recurrent_kernel ``(units, 4 * units)``, bias ``(4 * units,)``. ``unit_forget_bias``
    initializes the forget-gate bias to ones.

    Example:
        >>> cell = LSTMCell(4)
        >>> h, (h, c) = cell(torch.ones(2, 3), [torch.zeros(2, 4), torch.zeros(2, 4)])
        >>> c.shape
        torch.Size([2, 4])
    """

    _gates = 4

    def __init__(self, units: int, *args, unit_forget_bias: bool = True, **kwargs):
        super().__init__(units, *args, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]

    def _bias_spec(self):
        init = self.bias_initializer
        if self.unit_forget_bias:
            init = _UnitForgetBias(init)
        return (4 * self.units,), init, None, None

    def step(self, projected, states, recurrent_mask=None):
        h, c = states
        h_in = h if recurrent_mask is None else h * recurrent_mask
        z = projected + F.linear(h_in, self.recurrent_kernel)
        i, f, g, o = z.chunk(4, dim=-1)
        ra = self.recurrent_activation
        c = ra(f) * c + ra(i) * self.activation(g)
        h = ra(o) * self.activation(c)
        return h, [h, c]

    def fused_op(self):
        return torch.lstm if self._default_activations() else None

    def fused_forward(self, inputs, states, freeze=None):
        h0, c0 = (s.unsqueeze(0) for s in states)
        w_ih = self.kernel
        if freeze is not None:
            # An extra input column saturates i to 0 and f to 1 on frozen steps.
            column = w_ih.new_zeros(4 * self.units, 1)
            column[: self.units] = -_SATURATE
            column[self.units : 2 * self.units] = _SATURATE
            w_ih = torch.cat([w_ih, column], dim=1)
            inputs = torch.cat([inputs, freeze.unsqueeze(-1).to(inputs.dtype)], dim=-1)
        params = [w_ih, self.recurrent_kernel]
        if self.use_bias:
            params += [self.bias, self.bias.new_zeros(self.bias.shape)]
        out, h_n, c_n = _run_kernel(
            torch.lstm,
            inputs,
            (h0, c0),
            params,
            self.use_bias,
            1,
            0.0,
            torch.is_grad_enabled(),
            False,
            True,
        )
        return out, [h_n[0], c_n[0]]

    def get_config(self):
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


class GRUCell(_GatedCell):
    """One GRU step (Cho et al. 2014) with Keras's gates z, r, h.

    ``h = z * h_prev + (1 - z) * activation(x_h + r * (h_prev @ U_h + b_rh))`` with
    ``reset_after=True`` (the default, and torch's/cuDNN's formulation), or
    ``activation(x_h + (r * h_prev) @ U_h)`` with ``reset_after=False``. Weights (Keras layout):
    kernel ``(in, 3 * units)``, recurrent_kernel ``(units, 3 * units)``, bias ``(2, 3 * units)``
    (input bias; recurrent bias) when ``reset_after`` else ``(3 * units,)``.

    Example:
        >>> cell = GRUCell(4)
        >>> out, state = cell(torch.ones(2, 3), torch.zeros(2, 4))
        >>> state.shape
        torch.Size([2, 4])
    """

    _gates = 3

    def __init__(self, units: int, *args, reset_after: bool = True, **kwargs):
        super().__init__(units, *args, **kwargs)
        self.reset_after = bool(reset_after)

    def _kernel_layout(self):
        return _gru_kernel_to_storage, _gru_kernel_to_keras

    def _bias_spec(self):
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        return shape, self.bias_initializer, _swap_first_two_gates, _swap_first_two_gates

    def _input_bias(self):
        if self.bias is None:
            return None
        return self.bias[0] if self.reset_after else self.bias

    def step(self, projected, states, recurrent_mask=None):
        h = states[0]
        h_in = h if recurrent_mask is None else h * recurrent_mask
        x_r, x_z, x_n = projected.chunk(3, dim=-1)
        ra = self.recurrent_activation
        u = self.units
        if self.reset_after:
            rec_bias = None if self.bias is None else self.bias[1]
            h_r, h_z, h_n = F.linear(h_in, self.recurrent_kernel, rec_bias).chunk(3, dim=-1)
            r, z = ra(x_r + h_r), ra(x_z + h_z)
            n = self.activation(x_n + r * h_n)
        else:
            h_r, h_z = F.linear(h_in, self.recurrent_kernel[: 2 * u]).chunk(2, dim=-1)
            r, z = ra(x_r + h_r), ra(x_z + h_z)
            n = self.activation(x_n + F.linear(r * h_in, self.recurrent_kernel[2 * u :]))
        h = z * h + (1.0 - z) * n
        return h, [h]

    def fused_op(self):
        return torch.gru if self.reset_after and self._default_activations() else None

    def fused_forward(self, inputs, states, freeze=None):
        params = [self.kernel, self.recurrent_kernel]
        if self.use_bias:
            params += [self.bias[0], self.bias[1]]
        out, h_n = _run_kernel(
            torch.gru,
            inputs,
            states[0].unsqueeze(0),
            params,
            self.use_bias,
            1,
            0.0,
            torch.is_grad_enabled(),
            False,
            True,
        )
        return out, [h_n[0]]

    def get_config(self):
        config = super().get_config()
        config["reset_after"] = self.reset_after
        return config
