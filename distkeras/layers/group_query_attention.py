"""``GroupQueryAttention``: attention with fewer key/value heads than query heads (GQA).

Keras 3.15's layer (exported and saved as ``GroupQueryAttention``): four
``EinsumDense`` projections with Keras's names and layouts (``query/kernel`` is
``(dim, num_query_heads, head_dim)``, ``key``/``value`` ``(dim, num_key_value_heads,
head_dim)``, ``attention_output/kernel`` ``(num_query_heads, head_dim, dim)``), the key and
value heads repeated to the query heads, then torch's fused ``scaled_dot_product_attention``
(Keras's ``dot_product_attention`` path). With dropout or returned scores the scores are
computed explicitly, as Keras does; the dropout on them uses a ``Dropout`` sublayer, so inside
fit its masks are drawn per sample and do not depend on the worker count.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from distkeras import constraints, initializers, regularizers
from distkeras.layers.attention import (
    _large_negative as _large_negative_softmax,  # what Keras's Softmax fills masked logits with
)
from distkeras.layers.attention import _shape_of
from distkeras.layers.base import Layer
from distkeras.layers.core import check_positive_int
from distkeras.layers.einsum_dense import EinsumDense
from distkeras.layers.regularization import Dropout

__all__ = ["GroupQueryAttention"]


def _large_negative_sdpa(dtype: torch.dtype) -> float:
    # Keras's torch dot_product_attention turns a boolean mask into this additive bias.
    return (65500.0 if dtype == torch.float16 else 3.38953e38) * -0.7


class GroupQueryAttention(Layer):
    """Grouped query attention.

    Args:
        head_dim: size of each attention head.
        num_query_heads: number of query heads.
        num_key_value_heads: number of key and value heads (divides ``num_query_heads``).
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        sliding_window: when set, each query attends to keys less than this many positions
            away (combined with the causal mask if any).
        flash_attention: accepted for Keras compatibility; torch picks its fused kernel.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        activity_regularizer, kernel_constraint, bias_constraint: for the projections.
        use_gate: gate the attention output with ``sigmoid(query @ gate)`` before the output
            projection.
        seed: seed of the dropout.

    Call arguments: ``query (B, T, dim)``, ``value (B, S, dim)``, ``key`` (default value),
    ``query_mask``, ``value_mask``, ``key_mask``, ``attention_mask (B, T, S)``,
    ``return_attention_scores``, ``training``, ``use_causal_mask``.

    Example:
        >>> layer = GroupQueryAttention(head_dim=16, num_query_heads=8, num_key_value_heads=2)
        >>> layer(torch.ones(2, 5, 32), torch.ones(2, 7, 32)).shape
        torch.Size([2, 5, 32])
    """

    # Keras's class is GroupedQueryAttention: its weight files name the group after it.
    _keras_class_name = "GroupedQueryAttention"

    def __init__(
        self,
        head_dim: int,
        num_query_heads: int,
        num_key_value_heads: int,
        dropout: float = 0.0,
        use_bias: bool = True,
        sliding_window: int | None = None,
        flash_attention: bool | None = None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        use_gate: bool = False,
        seed: int | None = None,
        **kwargs,
    ):
        # Keras applies the activity regularizer to the layer's output and every projection's.
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        name = "GroupQueryAttention"
        self.supports_masking = True
        self.head_dim = check_positive_int(name, "head_dim", head_dim)
        self.num_query_heads = check_positive_int(name, "num_query_heads", num_query_heads)
        self.num_key_value_heads = check_positive_int(
            name, "num_key_value_heads", num_key_value_heads
        )
        if num_query_heads % num_key_value_heads != 0:
            raise ValueError("`num_query_heads` must be divisible by `num_key_value_heads`.")
        self.num_repeats = num_query_heads // num_key_value_heads
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise ValueError(f"{name}: `dropout` must be a float. Received: dropout={dropout!r}")
        self.dropout = dropout
        self.use_bias = use_bias
        self.use_gate = use_gate
        if sliding_window is not None and (
            isinstance(sliding_window, bool)
            or not isinstance(sliding_window, int)
            or sliding_window <= 0
        ):
            raise ValueError(
                "`sliding_window` must be `None` or a positive integer. "
                f"Received: sliding_window={sliding_window}"
            )
        self.sliding_window = sliding_window
        self._flash_attention = bool(flash_attention)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self._inverse_sqrt_head_dim = 1.0 / math.sqrt(float(self.head_dim))
        if self._flash_attention and self.dropout > 0.0:
            raise ValueError(
                "Dropout is not supported when flash attention is enabled. "
                "Please set dropout to 0.0 to use flash attention."
            )

    # ----------------------------------------------------------------------------- build
    def _projection(self, equation, output_shape, bias_axes, name, activation=None):
        return EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            activation=activation,
            name=name,
            # Fresh initializer instances, as Keras: one instance would repeat its values.
            kernel_initializer=self.kernel_initializer.clone(),
            bias_initializer=self.bias_initializer.clone(),
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            activity_regularizer=self.activity_regularizer,
            kernel_constraint=self.kernel_constraint,
            bias_constraint=self.bias_constraint,
            dtype=self.dtype,
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        if value_shape is None and isinstance(query_shape, list) and len(query_shape) in (2, 3):
            query_shape, value_shape, key_shape = (list(query_shape) + [None])[:3]
        query_shape = tuple(query_shape)
        value_shape = query_shape if value_shape is None else tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        self.feature_dim = query_shape[-1]
        q_heads, kv_heads, head = self.num_query_heads, self.num_key_value_heads, self.head_dim
        self._query_dense = self._projection("bqm,muh->bquh", (None, q_heads, head), "uh", "query")
        self._query_dense.build(query_shape)
        self._key_dense = self._projection("bkm,mvh->bkvh", (None, kv_heads, head), "vh", "key")
        self._key_dense.build(key_shape)
        if self.use_gate:
            self._gate_dense = self._projection(
                "bqm,muh->bquh", (None, q_heads, head), "uh", "gate", activation="sigmoid"
            )
            self._gate_dense.build(query_shape)
        self._value_dense = self._projection("bkm,mvh->bkvh", (None, kv_heads, head), "vh", "value")
        self._value_dense.build(value_shape)
        self._dropout_layer = Dropout(rate=self.dropout, seed=self.seed, dtype=self.dtype)
        self._output_dense = self._projection(
            "bquh,uhm->bqm", (None, self.feature_dim), "m", "attention_output"
        )
        self._output_dense.build((None, None, q_heads, head))
        self._build_shapes = {
            "query_shape": query_shape,
            "value_shape": value_shape,
            "key_shape": key_shape,
        }

    def get_build_config(self):
        if self._build_shapes is None:
            return None
        shapes = {
            k: [None if d is None else int(d) for d in v] for k, v in self._build_shapes.items()
        }
        return {"shapes_dict": shapes}

    def build_from_config(self, config):
        if not config or self.built:
            return
        shapes = config.get("shapes_dict", config)
        if "query_shape" in shapes:
            self._build_if_needed_with(
                shapes["query_shape"], shapes.get("value_shape"), shapes.get("key_shape")
            )
        elif config.get("input_shape") is not None:
            self._build_if_needed_with(config["input_shape"])

    def _build_if_needed_with(self, query_shape, value_shape=None, key_shape=None):
        if not self.built:
            self.build(query_shape, value_shape, key_shape)

    # ------------------------------------------------------------------------------ call
    def __call__(self, *args, **kwargs):
        # Keras code passes query/value by keyword too; build from all three shapes.
        if not args and "query" in kwargs:
            args = (kwargs.pop("query"),)
        if not args and "inputs" in kwargs:
            args = (kwargs.pop("inputs"),)
        if not self.built and args:
            value = args[1] if len(args) > 1 else kwargs.get("value")
            key = args[2] if len(args) > 2 else kwargs.get("key")
            if value is None and isinstance(args[0], (list, tuple)):
                self.build([tuple(t.shape) for t in args[0]])
            else:
                self.build(_shape_of(args[0]), _shape_of(value), _shape_of(key))
        return super().__call__(*args, **kwargs)

    def forward(self, *args, **kwargs):
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
            query, value, key = (list(query) + [None, None])[:3]
        if value is None:
            raise ValueError(
                f"GroupQueryAttention layer '{self.name}' needs a `value` tensor: call it as "
                "layer(query, value)."
            )
        # Keras fills `<arg>_mask` from the inputs' Keras masks.
        if query_mask is None:
            query_mask = getattr(query, "_keras_mask", None)
        if value_mask is None:
            value_mask = getattr(value, "_keras_mask", None)
        if key is None:
            key = value
        elif key_mask is None:
            key_mask = getattr(key, "_keras_mask", None)
        if self._flash_attention and return_attention_scores:
            raise ValueError(
                "Returning attention scores is not supported when flash attention is enabled. "
                "Please disable flash attention to access attention scores."
            )
        t_len, s_len = query.shape[1], value.shape[1]
        causal_only = (
            use_causal_mask
            and self.sliding_window is None
            and all(m is None for m in (query_mask, value_mask, key_mask, attention_mask))
        )
        mask = None
        if not causal_only:
            mask = self._attention_mask(
                query_mask, value_mask, key_mask, attention_mask, use_causal_mask,
                t_len, s_len, query.device,
            )  # fmt: skip
        gate = self._gate_dense(query) if self.use_gate else None
        q = self._query_dense(query)
        k = self._key_dense(key).repeat_interleave(self.num_repeats, dim=2)
        v = self._value_dense(value).repeat_interleave(self.num_repeats, dim=2)

        scores = None
        if self.dropout > 0.0 or return_attention_scores or q.ndim != 4:
            if causal_only:
                mask = self._causal_mask(t_len, s_len, q.device)
            output, scores = self._explicit_attention(q, k, v, mask, training)
        else:
            output = self._fused_attention(q, k, v, mask, causal_only)
        if gate is not None:
            output = output * gate
        output = self._output_dense(output)
        if query_mask is not None:
            output._keras_mask = query_mask
        if return_attention_scores:
            return output, scores
        return output

    @staticmethod
    def _causal_mask(t_len: int, s_len: int, device) -> torch.Tensor:
        return torch.ones(t_len, s_len, dtype=torch.bool, device=device).tril().unsqueeze(0)

    def _attention_mask(
        self, query_mask, value_mask, key_mask, attention_mask, use_causal, t_len, s_len, device
    ):
        """Keras's masks combined with AND into ``(B or 1, T, S)``; None when there are none."""
        mask = None
        if query_mask is not None:
            mask = query_mask.to(device).bool().unsqueeze(-1)
        for m in (value_mask, key_mask):
            if m is not None:
                m = m.to(device).bool().unsqueeze(-2)
                mask = m if mask is None else mask & m
        if use_causal:
            causal = self._causal_mask(t_len, s_len, device)
            mask = causal if mask is None else mask & causal
        if self.sliding_window is not None:
            rows = torch.arange(t_len, device=device).view(1, t_len, 1)
            cols = torch.arange(s_len, device=device).view(1, 1, s_len)
            window = (rows - cols).abs() < self.sliding_window
            mask = window if mask is None else mask & window
        if mask is not None and attention_mask is not None:
            return attention_mask.to(device).bool() & mask
        return attention_mask if mask is None else mask

    def _fused_attention(self, q, k, v, mask, causal_only: bool) -> torch.Tensor:
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, heads, T, head_dim)
        bias = None
        if mask is not None:
            mask = mask.to(q.device).bool()
            while mask.ndim < 4:
                mask = mask.unsqueeze(-3)
            bias = torch.where(mask, 0.0, _large_negative_sdpa(q.dtype)).to(q.dtype)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, is_causal=causal_only, scale=self._inverse_sqrt_head_dim
        )
        return out.transpose(1, 2)

    def _explicit_attention(self, q, k, v, mask, training):
        q = q * self._inverse_sqrt_head_dim
        scores = torch.einsum("bquh,bkuh->buqk", q, k)
        if mask is not None:
            mask = mask.to(scores.device).bool()
            while mask.ndim < scores.ndim:
                mask = mask.unsqueeze(-3)
            scores = torch.where(mask, scores, _large_negative_softmax(scores.dtype))
        scores = torch.softmax(scores, dim=-1)
        if mask is not None:
            scores = torch.where(mask, scores, 0.0)
        dropped = self._dropout_layer(scores, training=training) if self.dropout > 0 else scores
        return torch.einsum("buqk,bkuh->bquh", dropped, v), scores

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        return mask

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        if value_shape is None and isinstance(query_shape, list):
            query_shape, value_shape = query_shape[0], query_shape[1]
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        if query_shape[-1] != value_shape[-1]:
            raise ValueError(
                "The last dimension of `query_shape` and `value_shape` must be equal, but are "
                f"{query_shape[-1]}, {value_shape[-1]}. Received: query_shape={query_shape}, "
                f"value_shape={value_shape}"
            )
        if tuple(value_shape[1:-1]) != tuple(key_shape[1:-1]):
            raise ValueError(
                "All dimensions of `value` and `key`, except the last one, must be equal. "
                f"Received: value_shape={value_shape} and key_shape={key_shape}"
            )
        return tuple(query_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            head_dim=self.head_dim,
            num_query_heads=self.num_query_heads,
            num_key_value_heads=self.num_key_value_heads,
            use_bias=self.use_bias,
            use_gate=self.use_gate,
            sliding_window=self.sliding_window,
            dropout=self.dropout,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
            activity_regularizer=regularizers.serialize(self.activity_regularizer),
            kernel_constraint=constraints.serialize(self.kernel_constraint),
            bias_constraint=constraints.serialize(self.bias_constraint),
            seed=self.seed,
        )
        return config


# Keras's class name (its files say GroupQueryAttention, the exported name).
GroupedQueryAttention = GroupQueryAttention
