"""Attention layers: MultiHeadAttention with Keras's weight layout and masking semantics.

(Attention and AdditiveAttention live in ``dot_attention.py`` and are re-exported here.)

The projections keep Keras's EinsumDense layouts in ``get_weights`` (query/kernel is
``(dim, num_heads, key_dim)``, attention_output/kernel ``(num_heads, value_dim, out_dim)``) and
store them as ``(out, in)`` matrices, so each projection is one ``F.linear`` and the attention
itself is torch's fused ``scaled_dot_product_attention`` whenever scores are not requested.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F

from distkeras import constraints, initializers, regularizers
from distkeras.layers.base import Layer
from distkeras.layers.core import check_positive_int
from distkeras.layers.dot_attention import AdditiveAttention, Attention
from distkeras.random import random as random_ops
from distkeras.random.seed_generator import SeedGenerator

__all__ = ["MultiHeadAttention", "Attention", "AdditiveAttention"]


def _kernel_to_storage(kernel: torch.Tensor, fan_in: int) -> torch.Tensor:
    return kernel.reshape(fan_in, -1).t()


def _kernel_to_keras(stored: torch.Tensor, shape: tuple) -> torch.Tensor:
    return stored.t().reshape(shape)


def _reshape(tensor: torch.Tensor, shape: tuple) -> torch.Tensor:
    return tensor.reshape(shape)


def _large_negative(dtype: torch.dtype) -> float:
    # Keras's stand-in for -inf on masked logits (finite, so fully masked rows give no NaN).
    return -3e4 if dtype == torch.float16 else -1e9


class _HeadProjection(Layer):
    """Keras's EinsumDense inside MultiHeadAttention: kernel ``(*in_dims, *out_dims)``.

    Stored as a ``(prod(out_dims), prod(in_dims))`` matrix for ``F.linear``; the bias
    ``out_dims`` is stored flat.
    """

    def __init__(
        self,
        in_dims: tuple,
        out_dims: tuple,
        use_bias: bool,
        kernel_initializer,
        bias_initializer,
        kernel_regularizer,
        bias_regularizer,
        kernel_constraint,
        bias_constraint,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_dims = tuple(int(d) for d in in_dims)
        self.out_dims = tuple(int(d) for d in out_dims)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self.kernel_constraint = kernel_constraint
        self.bias_constraint = bias_constraint

    def build(self, input_shape=None):
        kernel_shape = self.in_dims + self.out_dims
        self.kernel = self.add_weight(
            shape=kernel_shape,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
            to_storage=partial(_kernel_to_storage, fan_in=math.prod(self.in_dims)),
            to_keras=partial(_kernel_to_keras, shape=kernel_shape),
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self.out_dims,
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
                to_storage=torch.flatten,
                to_keras=partial(_reshape, shape=self.out_dims),
            )
        else:
            self.bias = None
        self.built = True

    def call(self, inputs):
        return F.linear(inputs, self.kernel, self.bias)


def _shape_of(x):
    return None if x is None else tuple(x.shape)


def _is_shape_list(shape) -> bool:
    return isinstance(shape, (list, tuple)) and bool(shape) and isinstance(shape[0], (list, tuple))


class MultiHeadAttention(Layer):
    """Multi-head (scaled dot-product) attention, as in "Attention Is All You Need".

    ``query`` ``(B, T, dim)`` attends to ``key`` ``(B, S, key_dim_in)`` (``value`` when not
    given); the result is projected back to ``(B, T, dim)`` or ``(B, T, *output_shape)``.
    The query is scaled by ``1/sqrt(key_dim)``. Masks: ``attention_mask`` ``(B, T, S)`` with
    True = attend, ``use_causal_mask``, and the Keras masks of ``query``/``value``/``key``
    (``_keras_mask``, e.g. from ``Embedding(mask_zero=True)``) are combined with a logical AND;
    a query position with nothing to attend to gets a zero attention vector, as in Keras.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value (default ``key_dim``).
        dropout: dropout rate on the attention probabilities (training only).
        use_bias: whether the projections have biases.
        output_shape: output feature shape (int or tuple); default the query's last dim.
        attention_axes: ``None`` (every axis but batch and features) is supported.

    Example:
        >>> mha = MultiHeadAttention(num_heads=2, key_dim=8)
        >>> x = torch.randn(4, 10, 16)
        >>> mha(x, x, use_causal_mask=True).shape
        torch.Size([4, 10, 16])
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape=None,
        attention_axes=None,
        flash_attention: bool | None = None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._num_heads = check_positive_int("MultiHeadAttention", "num_heads", num_heads)
        self._key_dim = check_positive_int("MultiHeadAttention", "key_dim", key_dim)
        self._value_dim = (
            check_positive_int("MultiHeadAttention", "value_dim", value_dim)
            if value_dim
            else self._key_dim
        )
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise ValueError(
                f"MultiHeadAttention: argument `dropout` must be a float in [0, 1). "
                f"Received: dropout={dropout!r}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"MultiHeadAttention: argument `dropout` must be in [0, 1). "
                f"Received: dropout={dropout!r}"
            )
        self._dropout = float(dropout)
        self._use_bias = bool(use_bias)
        if output_shape:
            if isinstance(output_shape, int):
                output_shape = (output_shape,)
            if not isinstance(output_shape, (list, tuple)) or not all(
                isinstance(d, int) and d > 0 for d in output_shape
            ):
                raise ValueError(
                    "MultiHeadAttention: argument `output_shape` must be an int or a tuple of "
                    f"positive ints. Received: output_shape={output_shape!r}"
                )
            output_shape = tuple(output_shape)
        self._output_shape = output_shape or None
        if isinstance(attention_axes, int) and not isinstance(attention_axes, bool):
            attention_axes = (attention_axes,)
        elif attention_axes is not None and not isinstance(attention_axes, (list, tuple)):
            raise ValueError(
                "MultiHeadAttention: argument `attention_axes` must be an int, list, or tuple. "
                f"Received: attention_axes={attention_axes!r}"
            )
        self._attention_axes = attention_axes
        # torch picks its fastest fused kernel (flash, memory-efficient or math) by itself.
        self._flash_attention = flash_attention
        if flash_attention and self._dropout > 0.0:
            # As Keras: dropout runs the explicit formula, which flash attention excludes.
            raise ValueError(
                "MultiHeadAttention: dropout is not supported when flash attention is enabled. "
                f"Set dropout to 0.0 to use flash attention. Received: dropout={self._dropout}"
            )
        self._kernel_initializer = initializers.get(kernel_initializer)
        self._bias_initializer = initializers.get(bias_initializer)
        self._kernel_regularizer = regularizers.get(kernel_regularizer)
        self._bias_regularizer = regularizers.get(bias_regularizer)
        # As in Keras, the activity regularizer applies to each projection's output.
        self._activity_regularizer = regularizers.get(activity_regularizer)
        self._kernel_constraint = constraints.get(kernel_constraint)
        self._bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self.seed_generator: SeedGenerator | None = None  # made in build, as Keras's Dropout
        self._inverse_sqrt_key_dim = 1.0 / math.sqrt(float(self._key_dim))
        self.supports_masking = True

    # Keras's read-only properties.
    num_heads = property(lambda self: self._num_heads)
    key_dim = property(lambda self: self._key_dim)
    value_dim = property(lambda self: self._value_dim)
    dropout = property(lambda self: self._dropout)
    use_bias = property(lambda self: self._use_bias)
    attention_axes = property(lambda self: self._attention_axes)
    query_dense = property(lambda self: self._query_dense)
    key_dense = property(lambda self: self._key_dense)
    value_dense = property(lambda self: self._value_dense)
    output_dense = property(lambda self: self._output_dense)

    # ------------------------------------------------------------------------------ build
    def build(self, query_shape, value_shape=None, key_shape=None):
        """Creates the query, key, value and attention_output projections (in that order)."""
        if _is_shape_list(query_shape) and value_shape is None:
            query_shape, value_shape, key_shape = (list(query_shape) + [None, None])[:3]
        query_shape = tuple(query_shape)
        value_shape = query_shape if value_shape is None else tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(
                f"MultiHeadAttention layer '{self.name}': all dimensions of `value` and `key`, "
                f"except the last one, must be equal. Received: value_shape={value_shape} and "
                f"key_shape={key_shape}"
            )
        for arg, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) < 3 or shape[-1] is None:
                raise ValueError(
                    f"MultiHeadAttention layer '{self.name}': `{arg}` must have rank >= 3 "
                    f"(batch, positions..., features) with a known feature size. "
                    f"Received: {arg}_shape={shape}"
                )
        if len(query_shape) != len(value_shape):
            raise NotImplementedError(
                f"MultiHeadAttention layer '{self.name}': query and value of different ranks "
                f"are not supported. Received: query_shape={query_shape}, "
                f"value_shape={value_shape}"
            )
        self._check_attention_axes(len(query_shape))
        heads = self._num_heads
        out_dims = self._output_shape or (query_shape[-1],)
        self._query_dense = self._projection((query_shape[-1],), (heads, self._key_dim), "query")
        self._key_dense = self._projection((key_shape[-1],), (heads, self._key_dim), "key")
        self._value_dense = self._projection((value_shape[-1],), (heads, self._value_dim), "value")
        self._output_dense = self._projection(
            (heads, self._value_dim), tuple(out_dims), "attention_output"
        )
        self._build_shapes = {
            "query_shape": query_shape,
            "value_shape": value_shape,
            "key_shape": key_shape,
        }
        if self._dropout > 0 and self.seed_generator is None:
            self.seed_generator = SeedGenerator(self.seed)
        self.built = True

    def _check_attention_axes(self, rank: int) -> None:
        if self._attention_axes is None:
            return
        # Keras counts axes on the projected (rank + 1) tensor: negative axes shift by one.
        given = tuple(a if a >= 0 else rank + a for a in self._attention_axes)
        if given != tuple(range(1, rank - 1)):
            raise NotImplementedError(
                f"MultiHeadAttention layer '{self.name}': only attention over every axis but "
                f"batch and features (attention_axes=None, here {tuple(range(1, rank - 1))}) is "
                f"supported. Received: attention_axes={self._attention_axes}"
            )

    def _projection(self, in_dims, out_dims, name) -> _HeadProjection:
        layer = _HeadProjection(
            in_dims,
            out_dims,
            use_bias=self._use_bias,
            kernel_initializer=self._kernel_initializer,
            bias_initializer=self._bias_initializer,
            kernel_regularizer=self._kernel_regularizer,
            bias_regularizer=self._bias_regularizer,
            kernel_constraint=self._kernel_constraint,
            bias_constraint=self._bias_constraint,
            name=name,
            dtype=self.dtype,
            trainable=self.trainable,
        )
        layer.build()
        return layer

    def get_build_config(self):
        if self._build_shapes is None:
            return None
        # Keras's layout: the build() arguments under "shapes_dict", unset ones left out.
        shapes = {
            k: [None if d is None else int(d) for d in v]
            for k, v in self._build_shapes.items()
            if v is not None
        }
        return {"shapes_dict": shapes}

    def build_from_config(self, config):
        if not config or self.built:
            return
        if "shapes_dict" in config:  # Keras 3 writes the build shapes under this key
            config = config["shapes_dict"]
        if "query_shape" in config:
            self.build(config["query_shape"], config.get("value_shape"), config.get("key_shape"))
        elif config.get("input_shape") is not None:
            self.build(config["input_shape"])

    # ------------------------------------------------------------------------------- call
    def __call__(self, *args, **kwargs):
        # Keras code often passes query/value by keyword; the base class reads the first
        # positional argument for the build shape and the Keras mask.
        if not args and "query" in kwargs:
            args = (kwargs.pop("query"),)
        if not self.built and args:
            query = args[0]
            value = args[1] if len(args) > 1 else kwargs.get("value")
            key = args[2] if len(args) > 2 else kwargs.get("key")
            if value is None and isinstance(query, (list, tuple)):
                self.build([tuple(t.shape) for t in query])
            else:
                self.build(_shape_of(query), _shape_of(value), _shape_of(key))
        return super().__call__(*args, **kwargs)

    def forward(self, *args, **kwargs):
        # torch's entry point must build from query, value and key shapes too.
        return self.__call__(*args, **kwargs)

    def call(
        self,
        query,
        value=None,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores: bool = False,
        training=None,
        use_causal_mask: bool = False,
    ):
        if value is None and isinstance(query, (list, tuple)):
            # [query, value] or [query, value, key] as one argument (like other multi-input
            # layers).
            query, value, key = (list(query) + [None, None])[:3]
        if value is None:
            raise ValueError(
                f"MultiHeadAttention layer '{self.name}' needs a `value` tensor: call it as "
                "layer(query, value) (pass the same tensor twice for self-attention)."
            )
        if query_mask is None:
            query_mask = getattr(query, "_keras_mask", None)
        if value_mask is None:
            value_mask = getattr(value, "_keras_mask", None)
        if key is None:
            key = value
        elif key_mask is None:
            key_mask = getattr(key, "_keras_mask", None)

        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(
                f"MultiHeadAttention layer '{self.name}': all dimensions of `value` and `key`, "
                f"except the last one, must be equal. Received: value.shape="
                f"{tuple(value.shape)} and key.shape={tuple(key.shape)}"
            )
        batch = query.shape[0]
        q_positions = tuple(query.shape[1:-1])
        kv_positions = tuple(value.shape[1:-1])
        t_len, s_len = math.prod(q_positions), math.prod(kv_positions)
        heads = self._num_heads
        if use_causal_mask and len(q_positions) > 1:
            raise NotImplementedError(
                f"MultiHeadAttention layer '{self.name}': use_causal_mask=True needs inputs of "
                f"rank 3 (batch, sequence, features). Received: query.shape={tuple(query.shape)}"
            )

        def project(layer, x, length, head_dim):
            # (B, positions..., in) -> (B, heads, length, head_dim), a view of F.linear's output.
            if x.shape[-1] != layer.in_dims[0]:
                raise ValueError(
                    f"MultiHeadAttention layer '{self.name}' was built for `{layer.name}` "
                    f"features of size {layer.in_dims[0]}. Received: shape={tuple(x.shape)}"
                )
            out = F.linear(x.reshape(batch, length, x.shape[-1]), layer.kernel, layer.bias)
            if self._activity_regularizer is not None:
                self.add_loss(self._activity_regularizer(out))
            return out.view(batch, length, heads, head_dim).transpose(1, 2)

        q = project(self._query_dense, query, t_len, self._key_dim)
        k = project(self._key_dense, key, s_len, self._key_dim)
        v = project(self._value_dense, value, s_len, self._value_dim)

        dropout_p = self._dropout if training else 0.0
        # is_causal lets torch pick its flash kernels; with T != S kernels disagree on the
        # diagonal's alignment, so that case gets Keras's (top-left) mask explicitly.
        only_causal = (
            use_causal_mask
            and t_len == s_len
            and all(m is None for m in (query_mask, value_mask, key_mask, attention_mask))
        )
        scores = None
        # Dropout runs the explicit formula, as Keras does: its mask comes from the layer's
        # SeedGenerator (per sample inside fit), which SDPA's internal dropout cannot take.
        explicit = return_attention_scores or dropout_p > 0
        if only_causal and not explicit:
            attended = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, scale=self._inverse_sqrt_key_dim
            )
        else:
            mask = self._compute_attention_mask(
                query_mask,
                value_mask,
                key_mask,
                attention_mask,
                use_causal_mask,
                (batch, t_len, s_len, len(q_positions)),
                q.device,
            )
            if explicit:
                attended, scores = self._explicit_attention(q, k, v, mask, dropout_p)
            elif mask is None:
                attended = F.scaled_dot_product_attention(q, k, v, scale=self._inverse_sqrt_key_dim)
            else:
                bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
                bias.masked_fill_(~mask, _large_negative(q.dtype))
                attended = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=bias, scale=self._inverse_sqrt_key_dim
                )
                # Keras multiplies the softmax by the mask: rows with nothing to attend to are 0.
                attended = attended * mask.any(dim=-1, keepdim=True)

        merged = attended.transpose(1, 2).reshape(batch, t_len, heads * self._value_dim)
        out = self._output_dense.call(merged)
        if self._activity_regularizer is not None:
            self.add_loss(self._activity_regularizer(out))
        out = out.reshape(batch, *q_positions, *self._output_dense.out_dims)
        if query_mask is not None:
            out._keras_mask = query_mask
        if return_attention_scores:
            return out, scores.reshape(batch, heads, *q_positions, *kv_positions)
        return out

    def _explicit_attention(self, q, k, v, mask, dropout_p):
        """Keras's formula step by step: when the probabilities are returned or dropped."""
        logits = torch.matmul(q * self._inverse_sqrt_key_dim, k.transpose(-1, -2))
        if mask is not None:
            logits = logits.masked_fill(~mask, _large_negative(logits.dtype))
        probs = torch.softmax(logits, dim=-1)
        if mask is not None:
            probs = probs * mask
        if dropout_p > 0:
            probs_used = random_ops.dropout(probs, dropout_p, seed=self.seed_generator)
        else:
            probs_used = probs
        return torch.matmul(probs_used, v), probs

    def _compute_attention_mask(
        self, query_mask, value_mask, key_mask, attention_mask, use_causal_mask, sizes, device
    ):
        """Keras's masks combined with AND, broadcastable to (B, heads, T, S); None if none.

        Query/value/key masks ``(B, positions...)`` and the ``attention_mask``
        ``(B, T..., S...)`` are flattened to the single attention axis used inside.
        """
        batch, t_len, s_len, n_axes = sizes
        mask = None
        if query_mask is not None:
            mask = query_mask.to(device).reshape(batch, t_len, 1).bool()
        for m in (value_mask, key_mask):
            if m is not None:
                m = m.to(device).reshape(batch, 1, s_len).bool()
                mask = m if mask is None else mask & m
        if use_causal_mask:
            causal = torch.ones(t_len, s_len, dtype=torch.bool, device=device).tril()
            mask = causal if mask is None else mask & causal
        if attention_mask is not None:
            attention_mask = attention_mask.to(device).bool()
            if n_axes > 1:
                lead = attention_mask.shape[: attention_mask.dim() - 2 * n_axes]
                attention_mask = attention_mask.reshape(*lead, t_len, s_len)
            mask = attention_mask if mask is None else attention_mask & mask
        if mask is None:
            return None
        while mask.dim() < 4:  # the heads axis (and a batch axis for (T, S) masks)
            mask = mask.unsqueeze(-3)
        return mask

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        return mask

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        if _is_shape_list(query_shape) and value_shape is None:
            query_shape = query_shape[0]
        query_shape = tuple(query_shape)
        if self._output_shape:
            return query_shape[:-1] + tuple(self._output_shape)
        return query_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self._num_heads,
            key_dim=self._key_dim,
            value_dim=self._value_dim,
            dropout=self._dropout,
            use_bias=self._use_bias,
            output_shape=self._output_shape,
            attention_axes=self._attention_axes,
            kernel_initializer=initializers.serialize(self._kernel_initializer),
            bias_initializer=initializers.serialize(self._bias_initializer),
            kernel_regularizer=regularizers.serialize(self._kernel_regularizer),
            bias_regularizer=regularizers.serialize(self._bias_regularizer),
            activity_regularizer=regularizers.serialize(self._activity_regularizer),
            kernel_constraint=constraints.serialize(self._kernel_constraint),
            bias_constraint=constraints.serialize(self._bias_constraint),
            seed=self.seed,
        )
        return config

    # Keras 3.15 options we do not implement; files written by Keras carry them at their defaults.
    _KERAS_ONLY_OPTIONS = {"use_gate": False, "sliding_window": None}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        for key, default in cls._KERAS_ONLY_OPTIONS.items():
            value = config.pop(key, default)
            if value != default:
                raise ValueError(
                    f"MultiHeadAttention '{config.get('name')}': Keras's `{key}` option is not "
                    f"supported by distkeras (only {key}={default}). "
                    f"Received: {key}={value!r}"
                )
        return super().from_config(config)
