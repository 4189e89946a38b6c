"""``TextVectorization``: raw text to token ids or bag-of-words vectors, without TensorFlow.

Keras's steps, as its TensorFlow ops do them: ``standardize`` lowercases ASCII letters only
(``tf.strings.lower``) and deletes ASCII punctuation; ``split="whitespace"`` splits on runs
of ASCII whitespace, ``"character"`` into Unicode code points; ``ngrams`` appends, for each
width in order, every n-gram joined by a space; the tokens go through a
:class:`StringLookup` whose mask token is ``""`` (index 0) and OOV token ``"[UNK]"``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

import numpy as np
import torch

from distkeras import backend
from distkeras.layers.base import Layer
from distkeras.layers.preprocessing_encoding import (
    _listify,
    batch_features,
    encode_ids,
    encoded_shape,
    to_string_array,
)
from distkeras.layers.preprocessing_lookup import StringLookup

__all__ = ["TextVectorization"]

_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_STRIP = str.maketrans("", "", string.punctuation)
_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")
# Python's str.split() also splits on these (and on non-ASCII spaces); TensorFlow does not.
_PY_ONLY_SPACES = ("\x1c", "\x1d", "\x1e", "\x1f")
_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = ("whitespace", "character")


def _check_choice(name: str, value, allowed: tuple) -> None:
    if value is None or callable(value) or value in allowed:
        return
    raise ValueError(
        f"TextVectorization: unknown `{name}`; expected one of {allowed}, None or a callable. "
        f"Received: {name}={value!r}"
    )


def _ngrams(tokens: list, widths: tuple) -> list:
    out = []
    for width in widths:
        out.extend(" ".join(tokens[i : i + width]) for i in range(len(tokens) - width + 1))
    return out


class TextVectorization(Layer):
    """Maps strings to sequences of token indices (``output_mode="int"``) or to multi-hot,
    count or TF-IDF vectors, with a vocabulary learned by :meth:`adapt` or given.

    Inputs are numpy string arrays of shape ``(batch,)`` or ``(batch, 1)``, or lists of str.

    Example:
        >>> layer = TextVectorization(output_sequence_length=4)
        >>> layer.adapt(["the cat sat", "the dog"])
        >>> layer(np.array(["The cat!", "a bird"]))
        tensor([[2, 5, 0, 0],
                [1, 1, 0, 0]])
    """

    _convert_input_args = False  # text stays a numpy array

    def __init__(
        self,
        max_tokens: int | None = None,
        standardize: str | Callable | None = "lower_and_strip_punctuation",
        split: str | Callable | None = "whitespace",
        ngrams: int | tuple | None = None,
        output_mode: str = "int",
        output_sequence_length: int | None = None,
        pad_to_max_tokens: bool = False,
        vocabulary=None,
        idf_weights=None,
        sparse: bool = False,
        ragged: bool = False,
        encoding: str = "utf-8",
        name: str | None = None,
        **kwargs,
    ):
        if sparse:
            raise ValueError("`sparse=True` can only be used with the TensorFlow backend.")
        if ragged:
            raise ValueError("`ragged=True` can only be used with the TensorFlow backend.")
        _check_choice("standardize", standardize, _STANDARDIZE)
        _check_choice("split", split, _SPLIT)
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        modes = ("int", "one_hot", "multi_hot", "count", "tf_idf")
        if output_mode not in modes:
            raise ValueError(
                f"TextVectorization: invalid `output_mode`; expected one of {modes}. "
                f"Received: output_mode={output_mode!r}"
            )
        if not (
            ngrams is None
            or (isinstance(ngrams, int) and not isinstance(ngrams, bool))
            or (isinstance(ngrams, tuple) and all(isinstance(n, int) for n in ngrams))
        ):
            raise ValueError(
                f"`ngrams` must be None, an integer, or a tuple of integers. Received: "
                f"ngrams={ngrams}"
            )
        if output_mode == "int" and not (
            output_sequence_length is None or isinstance(output_sequence_length, int)
        ):
            raise ValueError(
                "`output_sequence_length` must be either None or an integer when "
                f"`output_mode` is 'int'. Received: output_sequence_length="
                f"{output_sequence_length}"
            )
        if output_mode != "int" and output_sequence_length is not None:
            raise ValueError(
                "`output_sequence_length` must not be set if `output_mode` is not 'int'. "
                f"Received output_sequence_length={output_sequence_length}."
            )
        has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        vocabulary_size = kwargs.pop("vocabulary_size", None)
        super().__init__(name=name, **kwargs)
        self._max_tokens = max_tokens
        self._standardize = standardize
        self._split = split
        self._ngrams_arg = ngrams
        self._ngrams = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self._output_mode = output_mode
        self._output_sequence_length = output_sequence_length
        self._encoding = encoding
        self._lookup_layer = StringLookup(
            max_tokens=max_tokens,
            vocabulary=vocabulary,
            idf_weights=idf_weights,
            pad_to_max_tokens=pad_to_max_tokens,
            mask_token="",
            output_mode=output_mode,
            has_input_vocabulary=has_input_vocabulary,
            encoding=encoding,
            vocabulary_size=vocabulary_size,
        )
        self._input_dtype = "string"
        self.built = True

    # ----------------------------------------------------------------- preprocessing
    def _standardized(self, texts: np.ndarray) -> np.ndarray:
        if self._standardize is None:
            return texts
        if callable(self._standardize):
            return to_string_array(self._standardize(texts), self._encoding, "TextVectorization")
        flat = texts.reshape(-1).tolist()
        if self._standardize in ("lower", "lower_and_strip_punctuation"):
            flat = [t.translate(_LOWER) for t in flat]
        if self._standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            flat = [t.translate(_STRIP) for t in flat]
        return np.array(flat, dtype=str).reshape(texts.shape)

    def _preprocess(self, inputs):
        """Standardized text as token rows (lists of str), or, with ``split=None`` and no
        ngrams, the dense array of whole strings."""
        texts = self._standardized(to_string_array(inputs, self._encoding, "TextVectorization"))
        if self._split is None and self._ngrams is None:
            return texts
        if self._split is not None:
            if texts.ndim > 1:
                if texts.shape[-1] != 1:
                    raise ValueError(
                        "When using `TextVectorization` to tokenize strings, the input rank "
                        "must be 1 or the last shape dimension must be 1. Received: "
                        f"inputs.shape={texts.shape} with rank={texts.ndim}"
                    )
                texts = texts.squeeze(-1)
            texts = texts.reshape(-1)
            if self._split == "whitespace":
                rows = [_split_whitespace(s) for s in texts.tolist()]
            elif self._split == "character":
                rows = [list(s) for s in texts.tolist()]
            else:
                rows = [[str(t) for t in row] for row in self._split(texts)]
        else:
            rows = [list(r) for r in texts.reshape(texts.shape[0], -1).tolist()]
        if self._ngrams is not None:
            rows = [_ngrams(row, self._ngrams) for row in rows]
        return rows

    # ------------------------------------------------------------------------- adapt
    def adapt(self, data, batch_size=None, steps=None) -> None:
        """Learns the vocabulary (and IDF weights) from text: an array or list of strings,
        or an iterable of such batches."""
        self.reset_state()
        if hasattr(data, "__iter__") and not isinstance(
            data, (list, tuple, np.ndarray, torch.Tensor, str, bytes)
        ):
            for i, batch in enumerate(data):
                if steps is not None and i >= steps:
                    break
                self.update_state(batch_features(batch))
        else:
            texts = to_string_array(data, self._encoding, "TextVectorization")
            self.update_state(texts.reshape(-1, 1) if texts.ndim == 1 else texts)
        self.finalize_state()

    def update_state(self, data) -> None:
        rows = self._preprocess(data)
        if isinstance(rows, list):
            self._lookup_layer.update_documents(rows)
        else:
            self._lookup_layer.update_state(rows)

    def finalize_state(self) -> None:
        self._lookup_layer.finalize_state()

    def reset_state(self) -> None:
        self._lookup_layer.reset_state()

    def get_vocabulary(self, include_special_tokens: bool = True) -> list:
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def vocabulary_size(self) -> int:
        return self._lookup_layer.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None) -> None:
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights=idf_weights)

    # -------------------------------------------------------------------------- call
    def call(self, inputs):
        scalar = np.ndim(inputs) == 0 and self._split is not None
        processed = self._preprocess([inputs] if scalar else inputs)
        lookup = self._lookup_layer
        if not isinstance(processed, list):  # split=None: a dense array of whole strings
            ids = lookup(processed)
            if self._output_mode == "int" and self._output_sequence_length is not None:
                ids = _fit_length(ids, self._output_sequence_length)
            return ids
        lengths = [len(row) for row in processed]
        flat = [token for row in processed for token in row]
        if self._output_mode == "int":
            ids = lookup.lookup_tokens(flat)
            width = self._output_sequence_length
            width = max(lengths, default=0) if width is None else width
            out = torch.zeros((len(lengths), width), dtype=torch.int64, device=ids.device)
            rows, cols = _positions(lengths, ids.device)
            keep = cols < width
            out[rows[keep], cols[keep]] = ids[keep]
            return out[0] if scalar else out
        # Encodings over each row's tokens; padding (-1) counts for nothing.
        ids = lookup.lookup_tokens(flat)
        rows, cols = _positions(lengths, ids.device)
        dense = torch.full(
            (len(lengths), max(lengths, default=0)), -1, dtype=torch.int64, device=ids.device
        )
        dense[rows, cols] = ids
        mode = "count" if self._output_mode == "tf_idf" else self._output_mode
        weights = lookup.idf_weights if self._output_mode == "tf_idf" else None
        out = encode_ids(dense, mode, lookup._depth(), weights)
        return out[0] if scalar else out

    # ------------------------------------------------------------------ shapes/config
    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self._output_mode == "int":
            if self._split is None and self._ngrams is None:
                if self._output_sequence_length is None:
                    return input_shape
                return (*input_shape[:-1], self._output_sequence_length)
            return (input_shape[0] if input_shape else None, self._output_sequence_length)
        lookup = self._lookup_layer
        depth = lookup.max_tokens if lookup.pad_to_max_tokens else lookup._frozen_vocab_size
        if self._split is None and self._ngrams is None:
            return encoded_shape(input_shape, self._output_mode, depth)
        batch = input_shape[0] if input_shape else None
        return (batch, None, depth) if self._output_mode == "one_hot" else (batch, depth)

    def compute_output_spec(self, inputs):
        from distkeras.layers.input import KerasTensor

        dtype = "int64" if self._output_mode == "int" else backend.floatx()
        return KerasTensor(self.compute_output_shape(inputs.shape), dtype)

    def get_build_config(self):
        return {}

    def build_from_config(self, config) -> None:
        self.built = True

    def get_config(self) -> dict:
        lookup = self._lookup_layer
        config = super().get_config()
        config.update(
            max_tokens=lookup.max_tokens,
            standardize=_serialize_callable(self._standardize),
            split=_serialize_callable(self._split),
            ngrams=self._ngrams_arg,
            output_mode=self._output_mode,
            output_sequence_length=self._output_sequence_length,
            pad_to_max_tokens=lookup.pad_to_max_tokens,
            sparse=False,
            ragged=False,
            vocabulary=_listify(lookup.input_vocabulary),
            idf_weights=_listify(lookup.input_idf_weights),
            encoding=self._encoding,
            vocabulary_size=self.vocabulary_size(),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("standardize", "split"):
            if config.get(key) is not None and not isinstance(config[key], str):
                from distkeras.saving import deserialize_keras_object

                config[key] = deserialize_keras_object(config[key])
        if isinstance(config.get("ngrams"), list):
            config["ngrams"] = tuple(config["ngrams"])
        return cls(**config)

    # ------------------------------------------------------------- .keras archives
    def save_own_variables(self, store) -> None:
        self._lookup_layer.save_own_variables(store)

    def load_own_variables(self, store) -> None:
        self._lookup_layer.load_own_variables(store)

    def save_assets(self, dir_path: str) -> None:
        self._lookup_layer.save_assets(dir_path)

    def load_assets(self, dir_path: str) -> None:
        self._lookup_layer.load_assets(dir_path)


def _split_whitespace(text: str) -> list[str]:
    """``tf.strings.split``: runs of ASCII whitespace separate tokens."""
    if text.isascii() and not any(c in text for c in _PY_ONLY_SPACES):
        return text.split()  # the same split, in C
    return [t for t in _WHITESPACE.split(text) if t]


def _serialize_callable(value):
    if value is None or isinstance(value, str):
        return value
    from distkeras.saving import serialize_keras_object

    return serialize_keras_object(value)


def _positions(lengths: list[int], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of every token of ragged rows of these lengths, in row order."""
    counts = torch.as_tensor(lengths, dtype=torch.int64)
    rows = torch.repeat_interleave(torch.arange(len(lengths)), counts)
    starts = torch.cumsum(counts, 0) - counts
    cols = torch.arange(int(counts.sum())) - starts[rows]
    return rows.to(device), cols.to(device)


def _fit_length(ids: torch.Tensor, length: int) -> torch.Tensor:
    """Truncates or zero-pads the last axis to ``length`` (output_sequence_length)."""
    ids = ids[..., :length]
    pad = length - ids.shape[-1]
    return torch.nn.functional.pad(ids, (0, pad)) if pad > 0 else ids
