"""``IndexLookup``, the vocabulary table behind StringLookup, IntegerLookup and
TextVectorization (Keras's private base class of the same name).

Keras 3 runs it on TensorFlow hash tables; here the vocabulary is a sorted array searched
with ``np.searchsorted`` (strings, on the host: numpy arrays and Python lists) or
``torch.searchsorted`` (integers, on the tensor's device). Indices, OOV buckets (FarmHash
``Fingerprint64`` or keyed SipHash, as TensorFlow computes them), vocabulary order after
``adapt`` (by count, ties by the larger token), encodings, configs and the
``assets/.../vocabulary.txt`` file of ``.keras`` archives are Keras's.
"""

from __future__ import annotations

import collections
import os

import numpy as np
import torch

from distkeras import backend
from distkeras.layers.base import Layer
from distkeras.layers.preprocessing_encoding import (
    _listify,
    batch_features,
    encode_ids,
    encoded_shape,
    to_int_tensor,
    to_string_array,
)
from distkeras.layers.string_hashing import hash_buckets

_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


class IndexLookup(Layer):
    """Shared logic of StringLookup and IntegerLookup (Keras's ``IndexLookup``)."""

    _string_keys = True
    _convert_input_args = False  # strings stay numpy arrays; ids are converted here

    def __init__(
        self,
        max_tokens=None,
        num_oov_indices=1,
        mask_token=None,
        oov_token=None,
        vocabulary=None,
        idf_weights=None,
        invert=False,
        output_mode="int",
        sparse=False,
        pad_to_max_tokens=False,
        oov_method="floormod",
        salt=None,
        name=None,
        **kwargs,
    ):
        cls = type(self).__name__
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(
                f"{cls}: if set, `max_tokens` must be greater than 1. Received: "
                f"max_tokens={max_tokens}"
            )
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(
                f"{cls}: if pad_to_max_tokens is True, must set `max_tokens`. Received: "
                f"max_tokens={max_tokens}"
            )
        if num_oov_indices is None or num_oov_indices < 0:
            raise ValueError(
                f"{cls}: `num_oov_indices` must be greater than or equal to 0. Received: "
                f"num_oov_indices={num_oov_indices}"
            )
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(
                f"{cls}: unknown `oov_method`; expected 'floormod' or 'farmhash'. Received: "
                f"oov_method={oov_method!r}"
            )
        if salt is not None:
            if not self._string_keys and oov_method != "farmhash":
                raise ValueError(
                    "`salt` can only be used when `oov_method='farmhash'`. "
                    f"Received: oov_method={oov_method}"
                )
            if isinstance(salt, (tuple, list)) and len(salt) == 2:
                salt = [int(s) for s in salt]
            elif isinstance(salt, int) and not isinstance(salt, bool):
                salt = [salt, salt]
            else:
                raise ValueError(
                    f"The `salt` argument for `{cls}` can only be a tuple of 2 integers, or a "
                    f"single integer. Received: salt={salt}."
                )
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        if output_mode not in _MODES:
            raise ValueError(
                f"{cls}: invalid `output_mode`; expected one of {_MODES}. Received: "
                f"output_mode={output_mode!r}"
            )
        if invert and output_mode != "int":
            raise ValueError(
                "`output_mode` must be `'int'` when `invert` is true. "
                f"Received: output_mode={output_mode}"
            )
        if sparse:
            raise ValueError("`sparse=True` can only be used with the TensorFlow backend.")
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(
                "`idf_weights` should only be set if `output_mode` is `'tf_idf'`. Received: "
                f"idf_weights={idf_weights} and output_mode={output_mode}"
            )
        frozen_size = kwargs.pop("vocabulary_size", None)
        has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        kwargs.pop("vocabulary_dtype", None)
        kwargs.pop("trainable", None)
        kwargs.pop("dtype", None)
        if kwargs:
            raise ValueError(f"{cls}: unrecognized keyword argument(s): {kwargs}")
        super().__init__(name=name)
        self.invert = bool(invert)
        self.max_tokens = max_tokens
        self.num_oov_indices = int(num_oov_indices)
        self.mask_token = mask_token
        self.oov_token = oov_token
        self.output_mode = output_mode
        self.sparse = False
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.oov_method = oov_method
        self.salt = salt
        self._frozen_vocab_size = frozen_size
        self.input_vocabulary = None if isinstance(vocabulary, (str, os.PathLike)) else vocabulary
        self.input_idf_weights = idf_weights
        self._has_input_vocabulary = has_input_vocabulary
        self.idf_weights = None  # float tensor, padded to the output depth (tf_idf only)
        if output_mode == "tf_idf" and has_input_vocabulary and idf_weights is None:
            raise ValueError(
                "When specifying the `vocabulary` argument, in TF-IDF output mode, the "
                "`idf_weights` argument must also be provided."
            )
        self._set_tokens([])
        self.reset_state()
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        self.built = True

    # --------------------------------------------------------------------- vocabulary
    def _oov_start_index(self) -> int:
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start_index(self) -> int:
        return self._oov_start_index() + self.num_oov_indices

    def _set_tokens(self, tokens) -> None:
        self._tokens = list(tokens)
        keys = self._key_array(self._tokens)
        order = np.argsort(keys, kind="stable")
        self._sorted_keys = keys[order]
        self._sorted_ids = order.astype(np.int64) + self._token_start_index()
        self._device_tables = {}
        start = self._token_start_index()
        self._token_index = {self._plain(t): i + start for i, t in enumerate(self._tokens)}

    def _key_array(self, tokens) -> np.ndarray:
        return np.array(tokens, dtype=str if self._string_keys else np.int64).reshape(-1)

    def vocabulary_size(self) -> int:
        """The vocabulary size, mask and OOV indices included."""
        return len(self._tokens) + self._token_start_index()

    def get_vocabulary(self, include_special_tokens: bool = True) -> list:
        """The vocabulary, index i holding the token that maps to i (with the special
        tokens), or only the learned/given tokens."""
        vocab = [self.oov_token] * self._token_start_index() + list(self._tokens)
        if self.mask_token is not None and self.output_mode == "int":
            vocab[0] = self.mask_token
        if not include_special_tokens:
            vocab = vocab[self._token_start_index() :]
        return [self._plain(v) for v in vocab]

    def _plain(self, token):
        return str(token) if self._string_keys else int(token)

    def set_vocabulary(self, vocabulary, idf_weights=None) -> None:
        """Sets the vocabulary (a list/array, or the path of a file with one token a line),
        and for ``tf_idf`` the idf weights; replaces any vocabulary present."""
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise ValueError("`idf_weights` must be set if output_mode is 'tf_idf'.")
        elif idf_weights is not None:
            raise ValueError(
                "`idf_weights` should only be set if output_mode is `'tf_idf'`. Received: "
                f"output_mode={self.output_mode} and idf_weights={idf_weights}"
            )
        if isinstance(vocabulary, (str, os.PathLike)):
            path = os.fspath(vocabulary)
            if not os.path.exists(path):
                raise ValueError(f"Vocabulary file {path} does not exist.")
            if self.output_mode == "tf_idf":
                raise ValueError(
                    "output_mode `'tf_idf'` does not support loading a vocabulary from file."
                )
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
            vocabulary = lines if self._string_keys else [int(line) for line in lines]
            self._set_checked(vocabulary, None, from_file=True)
            return
        self._set_checked(_listify(vocabulary), _listify(idf_weights), from_file=False)

    def _set_checked(self, vocabulary, idf_weights, from_file: bool) -> None:
        vocabulary = [self._plain(v) for v in np.asarray(vocabulary, dtype=object).reshape(-1)]
        if not vocabulary:
            raise ValueError(f"Cannot set an empty vocabulary. Received: vocabulary={vocabulary}")
        token_start = self._token_start_index()
        special = [self.mask_token] * self._oov_start_index() + [
            self.oov_token
        ] * self.num_oov_indices
        # A file is taken line by line as tokens from the token start (TextFileInitializer).
        found_special = not from_file and vocabulary[:token_start] == special
        tokens = vocabulary[token_start:] if found_special else vocabulary
        repeated = [t for t, c in collections.Counter(tokens).items() if c > 1]
        if repeated:
            raise ValueError(
                "The passed vocabulary has at least one repeated term. Please uniquify your "
                f"dataset. The repeated terms are: {repeated}"
            )
        for token, what in ((self.mask_token, "mask"), (self.oov_token, "OOV")):
            if what == "OOV" and not self.invert:
                continue
            if token is not None and token in tokens:
                raise ValueError(
                    f"Found reserved {what} token at unexpected location in `vocabulary`. "
                    "Note that passed `vocabulary` does not need to include the OOV and mask "
                    "tokens. Either remove all mask and OOV tokens, or include them only at "
                    f"the start of the vocabulary in precisely this order: {special}. "
                    f"Received: {what.lower()}_token={token} at vocabulary index "
                    f"{vocabulary.index(token)}"
                )
        if self.max_tokens is not None and token_start + len(tokens) > self.max_tokens:
            raise ValueError(
                "Attempted to set a vocabulary larger than the maximum vocab size. Received "
                f"vocabulary size is {token_start + len(tokens)}; `max_tokens` is "
                f"{self.max_tokens}."
            )
        self._set_tokens(tokens)
        if self.output_mode == "tf_idf":
            idf = np.asarray(idf_weights, dtype=np.float64)
            if idf.ndim != 1:
                raise ValueError(f"TF-IDF data must be a 1-index array. Received: {idf_weights}")
            if len(idf) != len(vocabulary):
                raise ValueError(
                    "`idf_weights` must be the same length as vocabulary. len(idf_weights) is "
                    f"{len(idf)}; len(vocabulary) is {len(vocabulary)}"
                )
            front = 0 if found_special else token_start
            self._set_idf(idf, front, float(np.average(idf)))
        self._frozen_vocab_size = self.vocabulary_size()

    def _set_idf(self, idf: np.ndarray, front: int, front_value: float) -> None:
        back = self.max_tokens - front - len(idf) if self.pad_to_max_tokens else 0
        padded = np.pad(idf, (front, max(back, 0)), constant_values=(front_value, 0.0))
        self.idf_weights = torch.as_tensor(padded, dtype=backend.standardize_dtype(None))

    # ------------------------------------------------------------------------- adapt
    def reset_state(self) -> None:
        self._token_counts = collections.Counter()
        self._document_counts = collections.Counter()
        self._num_documents = 0

    def adapt(self, data, steps=None) -> None:
        """Learns the vocabulary from ``data``: an array/list (each element of a rank-1
        input is one document), or an iterable of batches."""
        self.reset_state()
        if _is_batch_iterable(data):
            for i, batch in enumerate(data):
                if steps is not None and i >= steps:
                    break
                self.update_state(batch_features(batch))
        else:
            values = self._keys_of(data)
            self.update_state(values.reshape(-1, 1) if values.ndim == 1 else values)
        self.finalize_state()

    def _keys_of(self, data) -> np.ndarray:
        if self._string_keys:
            return to_string_array(data, getattr(self, "encoding", "utf-8"), type(self).__name__)
        return to_int_tensor(data, type(self).__name__).cpu().numpy()

    def update_state(self, data) -> None:
        if self._has_input_vocabulary:
            raise ValueError(
                f"Cannot adapt layer '{self.name}' after setting a static vocabulary via "
                "`vocabulary` argument or `set_vocabulary()` method."
            )
        values = self._keys_of(data)
        values = values.reshape(1, -1) if values.ndim < 2 else values
        self.update_documents(values.reshape(values.shape[0], -1).tolist())

    def update_documents(self, documents: list[list]) -> None:
        """Counts the tokens of each document (a list of tokens; rows may differ in length)."""
        if self._has_input_vocabulary:
            raise ValueError(
                f"Cannot adapt layer '{self.name}' after setting a static vocabulary via "
                "`vocabulary` argument or `set_vocabulary()` method."
            )
        counts = self._token_counts
        for row in documents:
            counts.update(row)
        if self.output_mode == "tf_idf":
            for row in documents:
                self._document_counts.update(set(row))
        self._num_documents += len(documents)

    def finalize_state(self) -> None:
        if self._has_input_vocabulary or not self._token_counts:
            return
        for special in (self.mask_token, self.oov_token):
            self._token_counts.pop(special, None)
        # Keras: np.lexsort((tokens, counts))[::-1], most frequent first, ties by the larger.
        ranked = sorted(self._token_counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        if self.max_tokens:
            ranked = ranked[: self.max_tokens - self._token_start_index()]
        tokens = [t for t, _ in ranked]
        self._set_tokens(tokens)
        if self.output_mode == "tf_idf":
            doc_counts = np.array([self._document_counts[t] for t in tokens], dtype=np.float64)
            idf = np.log(1 + self._num_documents / (1 + doc_counts))
            self._set_idf(idf, self._token_start_index(), float(idf.mean()) if len(idf) else 0.0)
        self._frozen_vocab_size = self.vocabulary_size()
        self.reset_state()

    # -------------------------------------------------------------------------- call
    def _lookup(self, inputs) -> torch.Tensor:
        """Token -> index, with mask and OOV handling; int64 on the backend's device."""
        masked = None
        if self._string_keys:
            keys = self._keys_of(inputs)
            found, ids = self._search_numpy(keys)
            ids = np.where(found, ids, self._oov_ids_numpy(keys, found))
            device = backend.get_device()
            ids, found = torch.as_tensor(ids, device=device), torch.as_tensor(found, device=device)
            if self.mask_token is not None:
                masked = torch.as_tensor(keys == self.mask_token, device=device)
        else:
            keys = to_int_tensor(inputs, type(self).__name__)
            found, ids = self._search_torch(keys)
            ids = torch.where(found, ids, self._oov_ids_torch(keys, found))
            if self.mask_token is not None:
                masked = keys == int(self.mask_token)
        if masked is not None:
            mask_value = 0 if self.output_mode == "int" else -1  # -1: dropped by encodings
            ids = torch.where(masked, torch.full_like(ids, mask_value), ids)
            found = found | masked
        if self.num_oov_indices == 0:
            self._check_all_known(keys, found)
        return ids

    def lookup_tokens(self, tokens: list) -> torch.Tensor:
        """``_lookup`` of a flat Python list of str (TextVectorization's tokens): a dict
        lookup per token, faster than building and searching a numpy array."""
        if self.num_oov_indices != 1 or not self._string_keys:
            return self._lookup(np.array(tokens, dtype=str))
        index, oov, mask = self._token_index, self._oov_start_index(), self.mask_token
        if mask is None:
            ids = [index.get(t, oov) for t in tokens]
        else:
            mask_value = 0 if self.output_mode == "int" else -1
            ids = [mask_value if t == mask else index.get(t, oov) for t in tokens]
        ids = np.fromiter(ids, dtype=np.int64, count=len(ids))
        return torch.as_tensor(ids, device=backend.get_device())

    def _search_numpy(self, keys: np.ndarray):
        if not len(self._sorted_keys):
            return np.zeros(keys.shape, bool), np.zeros(keys.shape, np.int64)
        pos = np.minimum(np.searchsorted(self._sorted_keys, keys), len(self._sorted_keys) - 1)
        return self._sorted_keys[pos] == keys, self._sorted_ids[pos]

    def _search_torch(self, keys: torch.Tensor):
        if not len(self._sorted_keys):
            return torch.zeros_like(keys, dtype=torch.bool), torch.zeros_like(keys)
        table = self._device_tables.get(keys.device)
        if table is None:
            table = (
                torch.as_tensor(self._sorted_keys, device=keys.device),
                torch.as_tensor(self._sorted_ids, device=keys.device),
            )
            self._device_tables[keys.device] = table
        sorted_keys, sorted_ids = table
        pos = torch.searchsorted(sorted_keys, keys.contiguous()).clamp_(max=len(sorted_keys) - 1)
        return sorted_keys[pos] == keys, sorted_ids[pos]

    def _oov_ids_numpy(self, keys: np.ndarray, found: np.ndarray) -> np.ndarray | int:
        if self.num_oov_indices <= 1:
            return -1 if self.num_oov_indices == 0 else self._oov_start_index()
        ids = np.zeros(keys.shape, np.int64)
        ids[~found] = hash_buckets(keys[~found], self.num_oov_indices, self.salt)
        return ids + self._oov_start_index()

    def _oov_ids_torch(self, keys: torch.Tensor, found: torch.Tensor) -> torch.Tensor:
        if self.num_oov_indices <= 1:
            value = -1 if self.num_oov_indices == 0 else self._oov_start_index()
            return torch.full_like(keys, value)
        if self.oov_method == "floormod":
            return torch.remainder(keys, self.num_oov_indices) + self._oov_start_index()
        # farmhash: integers hashed as their decimal text (tf.strings.as_string), on the host.
        buckets = hash_buckets(keys.cpu().numpy(), self.num_oov_indices, self.salt)
        return torch.as_tensor(buckets, device=keys.device) + self._oov_start_index()

    def _check_all_known(self, keys, found: torch.Tensor) -> None:
        unknown = (~found).cpu().numpy()
        if unknown.any():
            values = np.asarray(keys.cpu().numpy() if isinstance(keys, torch.Tensor) else keys)
            raise ValueError(
                "When `num_oov_indices=0` all inputs should be in vocabulary, found OOV "
                f"values {values[unknown].tolist()}, consider setting `num_oov_indices=1`."
            )

    def _invert(self, inputs):
        ids = to_int_tensor(inputs, type(self).__name__)
        vocab = self.get_vocabulary()
        in_range = (ids >= 0) & (ids < len(vocab))
        if self._string_keys:
            table = np.array(vocab + [self.oov_token], dtype=object)
            picks = np.where(in_range.cpu().numpy(), ids.cpu().numpy(), len(vocab))
            return table[picks].astype(str)
        table = torch.as_tensor(vocab, dtype=torch.int64, device=ids.device)
        picked = table[torch.where(in_range, ids, torch.zeros_like(ids))]
        return torch.where(in_range, picked, torch.full_like(ids, int(self.oov_token)))

    def _depth(self) -> int:
        if not self.pad_to_max_tokens and self._frozen_vocab_size is None:
            raise RuntimeError(
                f"When using `output_mode={self.output_mode}` and `pad_to_max_tokens="
                "False`, you must set the layer's vocabulary before calling it. Either "
                "pass a `vocabulary` argument to the layer, or call `adapt` with some "
                "sample data."
            )
        return self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()

    def call(self, inputs):
        if self.invert:
            return self._invert(inputs)
        ids = self._lookup(inputs)
        if self.output_mode == "int":
            return ids
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        weights = self.idf_weights if self.output_mode == "tf_idf" else None
        return encode_ids(ids, mode, self._depth(), weights)

    # ------------------------------------------------------------------ shapes/config
    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        depth = self.max_tokens if self.pad_to_max_tokens else self._frozen_vocab_size
        return encoded_shape(input_shape, self.output_mode, depth)

    def compute_output_spec(self, inputs):
        from distkeras.layers.input import KerasTensor

        if self.invert:
            dtype = "string" if self._string_keys else "int64"
        else:
            dtype = "int64" if self.output_mode == "int" else backend.floatx()
        return KerasTensor(self.compute_output_shape(inputs.shape), dtype)

    def get_build_config(self):
        return {}

    def build_from_config(self, config) -> None:
        self.built = True

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            invert=self.invert,
            max_tokens=self.max_tokens,
            num_oov_indices=self.num_oov_indices,
            oov_token=self.oov_token,
            mask_token=self.mask_token,
            output_mode=self.output_mode,
            sparse=False,
            pad_to_max_tokens=self.pad_to_max_tokens,
            vocabulary_dtype="string" if self._string_keys else "int64",
            idf_weights=_listify(self.input_idf_weights),
            vocabulary=_listify(self.input_vocabulary),
            vocabulary_size=self._frozen_vocab_size,
            oov_method=self.oov_method,
            salt=self.salt,
        )
        return config

    # ------------------------------------------------------------- .keras archives
    def save_own_variables(self, store) -> None:
        if self.output_mode == "tf_idf" and self.idf_weights is not None:
            store["0"] = self.idf_weights.numpy()

    def load_own_variables(self, store) -> None:
        if self.output_mode == "tf_idf" and store:
            values = store.get("0", store.get("idf_weights"))
            self.idf_weights = torch.as_tensor(np.asarray(values), dtype=torch.float32)

    def save_assets(self, dir_path: str) -> None:
        """Writes the vocabulary to ``vocabulary.txt`` (an adapted one; a given one is in the
        config), as Keras does in ``.keras`` archives."""
        if self.input_vocabulary is not None:
            return
        with open(os.path.join(dir_path, "vocabulary.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(str(w) for w in self.get_vocabulary(include_special_tokens=True)))

    def load_assets(self, dir_path: str) -> None:
        if self.input_vocabulary is not None:
            return
        path = os.path.join(dir_path, "vocabulary.txt")
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        while lines and lines[-1] == "":
            lines.pop()
        values = lines if self._string_keys else [int(line) for line in lines]
        if not values:
            return
        idf = None
        if self.output_mode == "tf_idf":
            idf = None if self.idf_weights is None else self.idf_weights.numpy()
            if idf is not None:
                idf = idf[: len(values)]
        self.set_vocabulary(values, idf_weights=idf)


def _is_batch_iterable(data) -> bool:
    """A generator/iterable of batches (not an array, tensor or Python list/tuple)."""
    return hasattr(data, "__iter__") and not isinstance(
        data, (list, tuple, np.ndarray, torch.Tensor, str, bytes)
    )
