"""Recurrent layers with Keras 3's names, defaults and weights: SimpleRNN, LSTM and GRU.

Each layer is :class:`~distkeras.layers.rnn.RNN` over its cell (:mod:`.rnn_cells`), whose
arguments it takes and exposes. The default configurations run torch's fused kernels
(``torch.rnn_tanh``/``rnn_relu``, ``torch.lstm``, ``torch.gru``); see :mod:`.rnn` for masks.
"""

from __future__ import annotations

from distkeras.layers.base import Layer
from distkeras.layers.rnn import RNN
from distkeras.layers.rnn_cells import GRUCell, LSTMCell, SimpleRNNCell
from distkeras.layers.stacked_cells import StackedRNNCells

__all__ = [
    "RNN", "SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells",
]  # fmt: skip


def _cell_attribute(name: str) -> property:
    return property(lambda self: getattr(self.cell, name), doc=f"The cell's `{name}`.")


def _cell_base_kwargs(kwargs: dict, name: str) -> dict:
    """What the cell shares with its layer: dtype, trainable, Keras's `implementation`."""
    return {
        "name": name,
        "dtype": kwargs.get("dtype"),
        "trainable": kwargs.get("trainable", True),
        "implementation": kwargs.pop("implementation", None),
    }


class _BuiltinRNN(RNN):
    """Shared plumbing of SimpleRNN/LSTM/GRU: the cell's arguments are the layer's."""

    def __init__(self, cell, use_cudnn="auto", **kwargs):
        if use_cudnn not in ("auto", True, False):
            raise ValueError(
                f"{type(self).__name__}: argument `use_cudnn` must be 'auto', True or False. "
                f"Received: use_cudnn={use_cudnn!r}"
            )
        super().__init__(cell, **kwargs)
        self.use_cudnn = use_cudnn

    units = _cell_attribute("units")
    activation = _cell_attribute("activation")
    use_bias = _cell_attribute("use_bias")
    kernel_initializer = _cell_attribute("kernel_initializer")
    recurrent_initializer = _cell_attribute("recurrent_initializer")
    bias_initializer = _cell_attribute("bias_initializer")
    kernel_regularizer = _cell_attribute("kernel_regularizer")
    recurrent_regularizer = _cell_attribute("recurrent_regularizer")
    bias_regularizer = _cell_attribute("bias_regularizer")
    kernel_constraint = _cell_attribute("kernel_constraint")
    recurrent_constraint = _cell_attribute("recurrent_constraint")
    bias_constraint = _cell_attribute("bias_constraint")
    dropout = _cell_attribute("dropout")
    recurrent_dropout = _cell_attribute("recurrent_dropout")
    seed = _cell_attribute("seed")

    def get_config(self):
        config = self._rnn_config()
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config.update(cell_config)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return Layer.from_config.__func__(cls, config)


_ARGS_DOC = """
    Args:
        units: dimensionality of the output and of each state.
        activation, recurrent_activation: ``"tanh"`` and ``"sigmoid"`` by default (the
            defaults run torch's fused kernel; others run the Python time loop).
        use_bias, kernel_initializer ("glorot_uniform"), recurrent_initializer
            ("orthogonal"), bias_initializer ("zeros"), *_regularizer, *_constraint: as Keras.
        dropout: fraction of the inputs dropped while training (one mask for all steps).
        recurrent_dropout: fraction of the recurrent state dropped while training (runs the
            Python time loop while training).
        seed: seed of the dropout masks.
        return_sequences, return_state, go_backwards, stateful, unroll: see :class:`RNN`.
"""


class SimpleRNN(_BuiltinRNN):
    """Fully connected RNN whose output is fed back: ``h = activation(x W + h U + b)``.

    Weights (Keras layout): kernel ``(in, units)``, recurrent_kernel ``(units, units)``,
    bias ``(units,)``. tanh and relu run ``torch.rnn_tanh``/``torch.rnn_relu``.

    Example:
        >>> SimpleRNN(4)(torch.ones(2, 5, 3)).shape
        torch.Size([2, 4])
    """

    __doc__ += _ARGS_DOC

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
        cell = SimpleRNNCell(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **_cell_base_kwargs(kwargs, "simple_rnn_cell"),
        )
        super().__init__(cell, **kwargs)


class LSTM(_BuiltinRNN):
    """Long Short-Term Memory layer (Hochreiter 1997), on ``torch.lstm`` when it can.

    Gates i, f, c, o: ``c = f*c + i*tanh(x_c)``, ``h = o*tanh(c)``. Weights (Keras layout):
    kernel ``(in, 4*units)``, recurrent_kernel ``(units, 4*units)``, bias ``(4*units,)``;
    ``unit_forget_bias=True`` starts the forget-gate bias at one. With ``return_state`` the
    layer returns ``[output, h, c]``.

    Example:
        >>> out, h, c = LSTM(4, return_state=True)(torch.ones(2, 5, 3))
        >>> c.shape
        torch.Size([2, 4])
    """

    __doc__ += _ARGS_DOC

    def __init__(
        self,
        units: int,
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
        cell = LSTMCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **_cell_base_kwargs(kwargs, "lstm_cell"),
        )
        super().__init__(cell, **kwargs)

    recurrent_activation = _cell_attribute("recurrent_activation")
    unit_forget_bias = _cell_attribute("unit_forget_bias")


class GRU(_BuiltinRNN):
    """Gated Recurrent Unit (Cho et al. 2014), on ``torch.gru`` when it can.

    Gates z, r, h; ``reset_after=True`` (default, torch's/cuDNN's formulation) applies the
    reset gate after the recurrent matmul and has bias ``(2, 3*units)`` (input; recurrent),
    ``reset_after=False`` before it, with bias ``(3*units,)`` (Python time loop). Kernels
    (Keras layout): ``(in, 3*units)`` and ``(units, 3*units)``.

    Example:
        >>> GRU(4, return_sequences=True)(torch.ones(2, 5, 3)).shape
        torch.Size([2, 5, 4])
    """

    __doc__ += _ARGS_DOC + "        reset_after: GRU convention, default True.\n"

    def __init__(
        self,
        units: int,
        activation="tanh",
        recurrent_activation="sigmoid",
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
        reset_after: bool = True,
        **kwargs,
    ):
        cell = GRUCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            reset_after=reset_after,
            **_cell_base_kwargs(kwargs, "gru_cell"),
        )
        super().__init__(cell, **kwargs)

    recurrent_activation = _cell_attribute("recurrent_activation")
    reset_after = _cell_attribute("reset_after")
