"""StringLookup and IntegerLookup against Keras's documented behaviour, without TensorFlow.

Keras 3 needs TensorFlow for both layers (not installed here), so the references are the
formulas and examples of Keras's docstrings and source: vocabulary by count then by the
larger token, ``[mask] + [oov] * num_oov_indices + tokens``, OOV buckets
``Fingerprint64(token) % num_oov_indices`` (``pyfarmhash``) or ``id % num_oov_indices``,
``idf = log(1 + documents / (1 + document_count))`` with the OOV slot at the mean weight.
"""

from __future__ import annotations

import collections
import zipfile

import farmhash
import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers

# Keras 3.15's get_config keys (index_lookup.py, string_lookup.py, integer_lookup.py).
_BASE_KEYS = {"name", "trainable", "dtype"}
_LOOKUP_KEYS = {
    "invert",
    "max_tokens",
    "num_oov_indices",
    "oov_token",
    "mask_token",
    "output_mode",
    "sparse",
    "pad_to_max_tokens",
    "idf_weights",
    "vocabulary",
    "vocabulary_size",
    "oov_method",
    "salt",
}


def reference_vocabulary(documents, max_tokens=None, specials=1, drop=()):
    """Tokens by count (most first), ties by the larger token, capped to max_tokens."""
    counts = collections.Counter(t for doc in documents for t in doc if t not in drop)
    items = sorted(counts.items(), key=lambda kv: kv[0], reverse=True)
    items.sort(key=lambda kv: -kv[1])  # stable: equal counts keep the descending tokens
    tokens = [t for t, _ in items]
    return tokens if max_tokens is None else tokens[: max_tokens - specials]


def reference_ids(data, vocab, oov_start, num_oov, mask=None, int_keys=False):
    index = {t: i for i, t in enumerate(vocab)}
    out = []
    for v in np.asarray(data, dtype=object).reshape(-1).tolist():
        if mask is not None and v == mask:
            out.append(0)
        elif v in index and index[v] >= oov_start + num_oov:
            out.append(index[v])
        elif num_oov == 1:
            out.append(oov_start)
        elif int_keys:
            out.append(oov_start + v % num_oov)
        else:
            out.append(oov_start + farmhash.fingerprint64(v) % num_oov)
    return np.array(out).reshape(np.shape(data))


def random_words(rng, shape, alphabet="abcdef", max_len=3):
    flat = [
        "".join(rng.choice(list(alphabet), rng.integers(1, max_len + 1)))
        for _ in range(int(np.prod(shape)))
    ]
    return np.array(flat).reshape(shape)


# ------------------------------------------------------------------ Keras's docstrings
def test_string_lookup_docstring_examples():
    vocab = ["a", "b", "c", "d"]
    data = [["a", "c", "d"], ["d", "z", "b"]]
    out = layers.StringLookup(vocabulary=vocab)(data)
    assert out.dtype == torch.int64
    np.testing.assert_array_equal(out.numpy(), [[1, 3, 4], [4, 0, 2]])
    layer = layers.StringLookup()
    layer.adapt(data)
    assert layer.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]
    np.testing.assert_array_equal(layer(data).numpy(), [[5, 3, 1], [1, 2, 4]])
    two = layers.StringLookup(vocabulary=vocab, num_oov_indices=2)
    np.testing.assert_array_equal(
        two([["a", "c", "d"], ["m", "z", "b"]]).numpy(), [[2, 4, 5], [0, 1, 3]]
    )
    one_hot = layers.StringLookup(vocabulary=vocab, output_mode="one_hot")(
        ["a", "b", "c", "d", "z"]
    )
    np.testing.assert_array_equal(one_hot.numpy(), np.eye(5)[[1, 2, 3, 4, 0]])
    data2 = [["a", "c", "d", "d"], ["d", "z", "b", "z"]]
    multi = layers.StringLookup(vocabulary=vocab, output_mode="multi_hot")(data2)
    np.testing.assert_array_equal(multi.numpy(), [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]])
    count = layers.StringLookup(vocabulary=vocab, output_mode="count")(data2)
    np.testing.assert_array_equal(count.numpy(), [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]])
    tfidf = layers.StringLookup(output_mode="tf_idf")
    tfidf.set_vocabulary(vocab, idf_weights=[0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(
        tfidf(data2).numpy(), [[0, 0.25, 0, 0.6, 0.8], [1.0, 0, 0.75, 0, 0.4]], rtol=1e-6
    )
    tfidf.set_vocabulary(["[UNK]", *vocab], idf_weights=[0.9, 0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(
        tfidf(data2).numpy(), [[0, 0.25, 0, 0.6, 0.8], [1.8, 0, 0.75, 0, 0.4]], rtol=1e-6
    )
    inverse = layers.StringLookup(vocabulary=vocab, invert=True)([[1, 3, 4], [4, 0, 2]])
    np.testing.assert_array_equal(inverse, [["a", "c", "d"], ["d", "[UNK]", "b"]])


def test_integer_lookup_docstring_examples():
    vocab = [12, 36, 1138, 42]
    data = torch.tensor([[12, 1138, 42], [42, 1000, 36]])
    np.testing.assert_array_equal(
        layers.IntegerLookup(vocabulary=vocab)(data).numpy(), [[1, 3, 4], [4, 0, 2]]
    )
    layer = layers.IntegerLookup()
    layer.adapt(data)
    assert layer.get_vocabulary() == [-1, 42, 1138, 1000, 36, 12]
    two = layers.IntegerLookup(vocabulary=vocab, num_oov_indices=2)
    np.testing.assert_array_equal(
        two(torch.tensor([[12, 1138, 42], [37, 1000, 36]])).numpy(), [[2, 4, 5], [1, 0, 3]]
    )
    inverse = layers.IntegerLookup(vocabulary=vocab, invert=True)(
        torch.tensor([[1, 3, 4], [4, 0, 2]])
    )
    np.testing.assert_array_equal(inverse.numpy(), [[12, 1138, 42], [42, -1, 36]])


# -------------------------------------------------------------------------- sweeps
@pytest.mark.parametrize("num_oov", [0, 1, 2, 5])
@pytest.mark.parametrize("mask", [None, ""])
def test_string_lookup_adapt_and_lookup_sweep(num_oov, mask):
    rng = np.random.default_rng(num_oov)
    train = random_words(rng, (40, 3))
    if mask is not None:
        train[::7, 0] = mask
    layer = layers.StringLookup(num_oov_indices=num_oov, mask_token=mask, max_tokens=12)
    layer.adapt(train)
    oov_start = 0 if mask is None else 1
    specials = oov_start + num_oov
    tokens = reference_vocabulary(train.tolist(), 12, specials, drop=(mask, "[UNK]"))
    expected_vocab = [mask] * oov_start + ["[UNK]"] * num_oov + tokens
    assert layer.get_vocabulary() == expected_vocab
    assert layer.get_vocabulary(include_special_tokens=False) == tokens
    assert layer.vocabulary_size() == len(expected_vocab)
    test = train if num_oov == 0 else random_words(rng, (10, 4), alphabet="abcdefgh")
    if num_oov == 0:
        test = np.where(np.isin(test, tokens + [mask]), test, tokens[0])
    expected = reference_ids(test, expected_vocab, oov_start, num_oov, mask)
    np.testing.assert_array_equal(layer(test).numpy(), expected)
    np.testing.assert_array_equal(layer(test.tolist()).numpy(), expected)
    np.testing.assert_array_equal(layer(test.astype(object)).numpy(), expected)
    np.testing.assert_array_equal(layer(np.char.encode(test)).numpy(), expected)


def test_num_oov_indices_zero_rejects_unknown_tokens():
    layer = layers.StringLookup(vocabulary=["a"], num_oov_indices=0)
    np.testing.assert_array_equal(layer(["a"]).numpy(), [0])
    with pytest.raises(ValueError, match=r"found OOV values \['zz'\]"):
        layer(["a", "zz"])


@pytest.mark.parametrize("oov_method", ["floormod", "farmhash"])
@pytest.mark.parametrize("mask", [None, 0])
def test_integer_lookup_sweep(oov_method, mask):
    rng = np.random.default_rng(3)
    train = rng.integers(1, 30, size=(50, 2))
    layer = layers.IntegerLookup(num_oov_indices=3, mask_token=mask, oov_method=oov_method)
    layer.adapt(torch.as_tensor(train))
    oov_start = 0 if mask is None else 1
    tokens = reference_vocabulary(train.tolist())
    vocab = [mask] * oov_start + [-1] * 3 + tokens
    assert layer.get_vocabulary() == vocab
    test = rng.integers(-5, 40, size=(6, 5))
    test[0, 0] = 0
    out = layer(torch.as_tensor(test))
    assert out.dtype == torch.int64
    if oov_method == "floormod":
        expected = reference_ids(test, vocab, oov_start, 3, mask, int_keys=True)
    else:  # integers hashed as their decimal text
        index = {t: i for i, t in enumerate(vocab) if i >= oov_start + 3}
        expected = np.array(
            [
                0 if v == mask else index.get(v, oov_start + farmhash.fingerprint64(str(v)) % 3)
                for v in test.reshape(-1).tolist()
            ]
        ).reshape(test.shape)
    np.testing.assert_array_equal(out.numpy(), expected)
    np.testing.assert_array_equal(layer(test.tolist()).numpy(), expected)


@pytest.mark.parametrize("mode", ["one_hot", "multi_hot", "count", "tf_idf"])
@pytest.mark.parametrize("pad", [False, True])
def test_encodings_against_formulas(mode, pad):
    rng = np.random.default_rng(5)
    train = random_words(rng, (30, 4))
    layer = layers.StringLookup(
        output_mode=mode, max_tokens=20, pad_to_max_tokens=pad, mask_token=""
    )
    layer.adapt(train)
    vocab = layer.get_vocabulary()
    assert vocab[0] == "[UNK]" and "" not in vocab  # the mask takes no slot in encodings
    depth = 20 if pad else len(vocab)
    test = random_words(rng, (5, 6), alphabet="abcdefg")
    test[0, :2] = ""
    ids = reference_ids(test, vocab, 0, 1)
    ids = np.where(test == "", -1, ids)
    counts = np.zeros((5, depth))
    for r, row in enumerate(ids):
        for i in row[row >= 0]:
            counts[r, i] += 1
    if mode == "one_hot":
        test, counts = test[:, :1], None
        expected = np.zeros((5, depth))
        for r, i in enumerate(ids[:, 0]):
            if i >= 0:
                expected[r, i] = 1
    elif mode == "multi_hot":
        expected = (counts > 0).astype(float)
    elif mode == "count":
        expected = counts
    else:
        docs = collections.Counter(t for row in train.tolist() for t in set(row))
        idf = np.array([np.log(1 + 30 / (1 + docs[t])) for t in vocab[1:]])
        weights = np.concatenate([[idf.mean()], idf, np.zeros(depth - len(vocab))])
        expected = counts * weights
    out = layer(test)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_adapt_on_an_iterable_of_batches_equals_one_array():
    rng = np.random.default_rng(7)
    data = random_words(rng, (24, 2))
    whole = layers.StringLookup()
    whole.adapt(data)
    batched = layers.StringLookup()
    batched.adapt(iter([data[i : i + 5] for i in range(0, 24, 5)]))
    assert batched.get_vocabulary() == whole.get_vocabulary()
    partial = layers.StringLookup()
    partial.adapt(iter([data[:5], data[5:]]), steps=1)
    assert partial.get_vocabulary()[1:] == reference_vocabulary(data[:5].tolist())


def test_vocabulary_file_specials_and_errors(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("a\nb\nc\n")
    layer = layers.StringLookup(vocabulary=str(path), mask_token="")
    assert layer.get_vocabulary() == ["", "[UNK]", "a", "b", "c"]
    assert layer.get_config()["vocabulary"] is None  # a file path is not a config value
    np.testing.assert_array_equal(layer(["", "b", "q"]).numpy(), [0, 3, 1])
    given = layers.StringLookup(vocabulary=["[UNK]", "x", "y"])  # specials given up front
    assert given.get_vocabulary() == ["[UNK]", "x", "y"]
    with pytest.raises(ValueError, match="repeated"):
        layers.StringLookup(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="reserved mask token"):
        layers.StringLookup(vocabulary=["a", ""], mask_token="")
    with pytest.raises(ValueError, match="maximum vocab size"):
        layers.StringLookup(vocabulary=["a", "b", "c"], max_tokens=3)
    with pytest.raises(ValueError, match="does not exist"):
        layers.StringLookup(vocabulary=str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="after setting a static vocabulary"):
        layers.StringLookup(vocabulary=["a"]).adapt(np.array(["a"]))
    with pytest.raises(ValueError, match="must be `'int'` when `invert`"):
        layers.StringLookup(invert=True, output_mode="count")
    with pytest.raises(ValueError, match="TensorFlow backend"):
        layers.StringLookup(output_mode="count", sparse=True)
    with pytest.raises(ValueError, match="oov_method='farmhash'"):
        layers.IntegerLookup(salt=3)
    with pytest.raises(ValueError, match="idf_weights"):
        layers.StringLookup(vocabulary=["a"], output_mode="tf_idf")
    with pytest.raises(RuntimeError, match="must set the layer's vocabulary"):
        layers.StringLookup(output_mode="multi_hot")(["a"])
    with pytest.raises(TypeError, match="takes strings"):
        layers.StringLookup(vocabulary=["a"])(np.array([1.5]))


def test_salted_oov_buckets_use_siphash():
    from distkeras.layers.string_hashing import siphash24

    layer = layers.StringLookup(vocabulary=["a"], num_oov_indices=4, salt=[7, 9])
    words = ["q", "rr", "sss", "tttt", "u"]
    expected = [siphash24((7, 9), w.encode()) % 4 for w in words]
    np.testing.assert_array_equal(layer(words).numpy(), expected)
    assert layer.get_config()["salt"] == [7, 9]


def test_invert_round_trips_and_mask():
    vocab = ["x", "y", "z"]
    forward = layers.StringLookup(vocabulary=vocab, mask_token="")
    inverse = layers.StringLookup(vocabulary=vocab, mask_token="", invert=True)
    data = np.array([["x", "", "z"], ["q", "y", "x"]])
    back = inverse(forward(data))
    np.testing.assert_array_equal(back, [["x", "", "z"], ["[UNK]", "y", "x"]])
    ints = layers.IntegerLookup(vocabulary=[5, 6], mask_token=0, invert=True)
    np.testing.assert_array_equal(ints(torch.tensor([0, 1, 2, 3, 9])).numpy(), [0, -1, 5, 6, -1])


def test_config_keys_and_round_trip():
    layer = layers.StringLookup(vocabulary=["a", "b"], num_oov_indices=2, mask_token="")
    config = layer.get_config()
    assert set(config) == _BASE_KEYS | _LOOKUP_KEYS | {"encoding"}
    clone = layers.StringLookup.from_config(config)
    data = [["a", "b", "", "zz"]]
    np.testing.assert_array_equal(clone(data).numpy(), layer(data).numpy())
    ints = layers.IntegerLookup(vocabulary=[3, 4], mask_token=0)
    config = ints.get_config()
    assert set(config) == _BASE_KEYS | _LOOKUP_KEYS | {"vocabulary_dtype"}
    assert config["vocabulary"] == [3, 4] and config["vocabulary_dtype"] == "int64"
    clone = distkeras.layers.deserialize(distkeras.layers.serialize(ints))
    np.testing.assert_array_equal(clone(torch.tensor([0, 3, 9])).numpy(), [0, 2, 1])


def test_symbolic_shapes_and_dtypes():
    inputs = layers.Input(shape=(3,), dtype="string")
    assert layers.StringLookup(vocabulary=["a"])(inputs).dtype == "int64"
    encoded = layers.StringLookup(vocabulary=["a", "b"], output_mode="multi_hot")(inputs)
    assert encoded.shape == (None, 3) and encoded.dtype == "float32"
    one = layers.StringLookup(vocabulary=["a", "b"], output_mode="one_hot")(
        layers.Input((1,), dtype="string")
    )
    assert one.shape == (None, 3)
    ints = layers.IntegerLookup(
        vocabulary=[1, 2], max_tokens=8, pad_to_max_tokens=True, output_mode="count"
    )
    assert ints(layers.Input((4,), dtype="int64")).shape == (None, 8)


def test_model_with_adapted_lookup_saves_its_vocabulary(tmp_path):
    rng = np.random.default_rng(11)
    words = random_words(rng, (64, 1))
    lookup = layers.StringLookup(output_mode="one_hot")
    lookup.adapt(words)
    inputs = layers.Input(shape=(1,), dtype="string")
    outputs = layers.Dense(1)(lookup(inputs))
    model = distkeras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    model.fit(words, rng.normal(size=(64, 1)).astype("float32"), epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "lookup.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        saved = archive.read("assets/layers/string_lookup/vocabulary.txt").decode()
    assert saved == "\n".join(lookup.get_vocabulary())  # Keras's layout and format
    restored = distkeras.models.load_model(path)
    assert restored.layers[1].get_vocabulary() == lookup.get_vocabulary()
    np.testing.assert_allclose(restored.predict(words, verbose=0), model.predict(words, verbose=0))


def test_integer_lookup_in_sequential_model_round_trip(tmp_path):
    lookup = layers.IntegerLookup(output_mode="multi_hot", num_oov_indices=2)
    data = np.random.default_rng(2).integers(0, 9, size=(32, 3))
    lookup.adapt(data)
    model = distkeras.Sequential([layers.Input((3,), dtype="int64"), lookup, layers.Dense(2)])
    expected = model.predict(data, verbose=0)
    model.save(tmp_path / "ints.keras")
    restored = distkeras.models.load_model(tmp_path / "ints.keras")
    assert restored.layers[0].get_vocabulary() == lookup.get_vocabulary()
    np.testing.assert_allclose(restored.predict(data, verbose=0), expected, rtol=1e-6)


@pytest.mark.parametrize("mode", ["int", "multi_hot", "count"])
def test_integer_lookup_through_the_layer_harness(mode):
    from tests.harness import run_layer_test

    vocab = [3, 7, 1, 9]

    def reference(x, _weights):
        ids = np.vectorize(lambda v: vocab.index(v) + 1 if v in vocab else 0)(x)
        if mode == "int":
            return ids
        counts = np.stack([np.bincount(row, minlength=5) for row in ids]).astype("float32")
        return counts if mode == "count" else np.minimum(counts, 1)

    run_layer_test(
        layers.IntegerLookup,
        {"vocabulary": vocab, "output_mode": mode},
        (4, 6),
        input_dtype="int64",
        expected_output_shape=(4, 6) if mode == "int" else (4, 5),
        expected_weight_shapes=[],
        reference=reference,
    )


def test_num_oov_indices_zero_with_a_mask_in_every_mode():
    for mode in ("int", "multi_hot"):
        layer = layers.StringLookup(
            vocabulary=["a", "b"], num_oov_indices=0, mask_token="", output_mode=mode
        )
        out = layer([["a", "", "b"]]).numpy()  # the mask is known, not OOV
        expected = [[1, 0, 2]] if mode == "int" else [[1, 1]]
        np.testing.assert_array_equal(out, expected)
        with pytest.raises(ValueError, match="found OOV values"):
            layer([["a", "c"]])
    ints = layers.IntegerLookup(
        vocabulary=[4], num_oov_indices=0, mask_token=0, output_mode="count"
    )
    np.testing.assert_array_equal(ints(torch.tensor([[4, 0, 4]])).numpy(), [[2]])


def test_empty_and_scalar_inputs():
    strings = layers.StringLookup(vocabulary=["a"])
    assert strings("a").item() == 1 and strings("a").ndim == 0
    assert tuple(strings(np.array([], dtype=str)).shape) == (0,)
    assert tuple(strings([[]]).shape) == (1, 0)
    ints = layers.IntegerLookup(vocabulary=[1])
    assert ints(5).item() == 0
    assert tuple(ints(np.zeros((0, 3), "int64")).shape) == (0, 3)
    text = layers.TextVectorization(vocabulary=["a", "b"], output_sequence_length=3)
    assert tuple(text(np.array([], dtype=str)).shape) == (0, 3)
    np.testing.assert_array_equal(text("b").numpy(), [3, 0, 0])  # one string: one sequence
    np.testing.assert_array_equal(text(["", "  "]).numpy(), [[0, 0, 0], [0, 0, 0]])
