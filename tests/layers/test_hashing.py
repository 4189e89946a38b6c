"""Hashing and HashedCrossing: bucket ids equal Keras's (TensorFlow's hashes), no TensorFlow.

References: the ``pyfarmhash`` package (Google's C++ FarmHash) for ``Fingerprint64``; the
SipHash-2-4 paper's test vector; and the bucket ids that Keras's own test suite and docs
assert (computed there by TensorFlow). Keras's Hashing needs TensorFlow, which is not here.
"""

from __future__ import annotations

import random

import farmhash
import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers
from distkeras.layers.string_hashing import fingerprint64, siphash24

_M = (1 << 64) - 1


def _random_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n))


def test_fingerprint64_equals_farmhash_for_every_length_path():
    rng = random.Random(0)
    # 0-16, 17-32, 33-64 and the 64-byte block loop with every tail length.
    for n in [*range(0, 200), 255, 256, 257, 511, 1000]:
        data = _random_bytes(rng, n)
        assert fingerprint64(data) == farmhash.fingerprint64(data), n


def test_siphash24_paper_vectors():
    key = (0x0706050403020100, 0x0F0E0D0C0B0A0908)  # bytes 00..0f, little endian
    assert siphash24(key, bytes(range(15))) == 0xA129CA6149BE45E5
    assert siphash24(key, b"") == 0x726FDB47DD0E0E31


def _cat64(fp1: int, fp2: int) -> int:
    """tf's FingerprintCat64, written out from its definition."""
    mul = 0xC6A4A7935BD1E995

    def mix(v):
        return v ^ (v >> 47)

    r = fp1 ^ mul
    r ^= (mix((fp2 * mul) & _M) * mul) & _M
    r = (r * mul) & _M
    r = (mix(r) * mul) & _M
    return mix(r)


# Expectations from Keras 3.15's hashing_test.py and docstrings (TensorFlow's bucket ids).
KERAS_CASES = [
    (dict(num_bins=3), [["A"], ["B"], ["C"], ["D"], ["E"]], [[1], [0], [1], [1], [2]]),
    (
        dict(num_bins=3, mask_value=""),
        [["A"], ["B"], [""], ["C"], ["D"]],
        [[1], [1], [0], [2], [2]],
    ),
    (
        dict(num_bins=3, salt=[133, 137]),
        [["A"], ["B"], ["C"], ["D"], ["E"]],
        [[1], [2], [1], [0], [2]],
    ),
    (dict(num_bins=3, salt=133), [["A"], ["B"], ["C"], ["D"], ["E"]], [[0], [0], [2], [1], [0]]),
    (dict(num_bins=3), [0, 1, 2, 3, 4], [1, 0, 1, 0, 2]),
    (dict(num_bins=1), [["A"], ["B"], ["C"]], [[0], [0], [0]]),
    (dict(num_bins=2), ["omar", "stringer", "marlo", "wire", "skywalker"], [0, 0, 1, 0, 0]),
    (
        dict(num_bins=3, mask_value="omar"),
        [["omar"], ["stringer"], ["marlo"], ["wire"], ["skywalker"]],
        [[0], [1], [2], [1], [1]],
    ),
    (
        dict(num_bins=2, salt=[211, 137]),
        [["omar"], ["stringer"], ["marlo"], ["wire"], ["skywalker"]],
        [[1], [0], [1], [0], [1]],
    ),
    (dict(num_bins=3, salt=[133, 137]), [[0], [1], [2], [3], [4]], [[1], [1], [2], [0], [1]]),
]


@pytest.mark.parametrize("kwargs, inputs, expected", KERAS_CASES)
@pytest.mark.parametrize("kind", ["list", "numpy"])
def test_hashing_matches_keras_expectations(kwargs, inputs, expected, kind):
    data = np.array(inputs) if kind == "numpy" else inputs
    out = layers.Hashing(**kwargs)(data)
    assert out.dtype == torch.int64
    np.testing.assert_array_equal(out.cpu().numpy(), expected)


def _reference_bins(values, num_bins, mask_value=None):
    """to_hash_bucket_fast of each value's text (ints as decimal), with Keras's mask offset."""
    out = []
    for v in np.asarray(values).reshape(-1).tolist():
        text = v if isinstance(v, str) else str(int(v))
        if mask_value is not None and num_bins > 1:
            out.append(0 if v == mask_value else farmhash.fingerprint64(text) % (num_bins - 1) + 1)
        else:
            out.append(farmhash.fingerprint64(text) % num_bins)
    return np.array(out).reshape(np.shape(values))


def test_hashing_sweep_against_farmhash():
    rng = np.random.default_rng(0)
    words = np.array(
        ["".join(rng.choice(list("abcxyzé "), rng.integers(0, 12))) for _ in range(60)]
    )
    ints = rng.integers(-(10**12), 10**12, size=(20, 3))
    for num_bins in (1, 2, 7, 1000):
        got = layers.Hashing(num_bins=num_bins)(words.reshape(20, 3)).numpy()
        np.testing.assert_array_equal(got, _reference_bins(words.reshape(20, 3), num_bins))
        got = layers.Hashing(num_bins=num_bins)(torch.as_tensor(ints)).numpy()
        np.testing.assert_array_equal(got, _reference_bins(ints, num_bins))
        masked = layers.Hashing(num_bins=num_bins, mask_value=words[0])(words).numpy()
        np.testing.assert_array_equal(masked, _reference_bins(words, num_bins, words[0]))
    # Floats are truncated to int64 first, as Keras casts them.
    floats = np.array([1.7, -2.2, 3.0])
    got = layers.Hashing(num_bins=11)(floats).numpy()
    np.testing.assert_array_equal(got, _reference_bins(np.array([1, -2, 3]), 11))


def test_hashing_output_modes_and_dtypes():
    x = np.array([[0, 1, 2, 3, 4]])
    bins = _reference_bins(x, 3)
    multi = layers.Hashing(num_bins=3, output_mode="multi_hot")(x)
    count = layers.Hashing(num_bins=3, output_mode="count")(x)
    one = layers.Hashing(num_bins=3, output_mode="one_hot")(np.array([[0], [1], [4]]))
    expected_count = np.bincount(bins[0], minlength=3)[None]
    assert multi.dtype == count.dtype == one.dtype == torch.float32
    np.testing.assert_array_equal(count.numpy(), expected_count)
    np.testing.assert_array_equal(multi.numpy(), (expected_count > 0).astype("float32"))
    np.testing.assert_array_equal(one.numpy(), np.eye(3)[_reference_bins(np.array([0, 1, 4]), 3)])
    # Keras's documented counts: [0..4] into 3 bins -> [2, 2, 1]; a rank-1 input is one sample.
    np.testing.assert_array_equal(
        layers.Hashing(num_bins=3, output_mode="count")(np.array([0, 1, 2, 3, 4])).numpy(),
        [2.0, 2.0, 1.0],
    )
    assert layers.Hashing(num_bins=3, dtype="int32")(["a"]).dtype == torch.int32


@pytest.mark.parametrize("mode", ["int", "one_hot", "multi_hot", "count"])
@pytest.mark.parametrize("shape", [(4,), (4, 1), (3, 4)])
def test_hashing_symbolic_shapes_match_eager(mode, shape):
    layer = layers.Hashing(num_bins=5, output_mode=mode)
    symbolic = layer(layers.Input(shape=shape, dtype="int32"))
    assert symbolic.shape == layer.compute_output_shape((None, *shape))
    eager = layer(np.zeros((2, *shape), dtype="int32"))
    assert tuple(eager.shape) == (2, *symbolic.shape[1:])


def test_hashing_in_a_functional_model_on_strings():
    inputs = layers.Input(shape=(1,), dtype="string")
    outputs = layers.Hashing(num_bins=3, output_mode="one_hot")(inputs)
    model = distkeras.Model(inputs, outputs)
    out = model.predict(np.array([["A"], ["B"], ["E"]]), verbose=0)
    np.testing.assert_array_equal(out, np.eye(3)[[1, 0, 2]])


def test_hashing_config_and_errors():
    layer = layers.Hashing(num_bins=8, mask_value="", salt=[1, 2], output_mode="count")
    config = layer.get_config()
    for key in ("num_bins", "salt", "mask_value", "output_mode", "sparse", "name", "dtype"):
        assert key in config
    clone = layers.Hashing.from_config(config)
    data = np.array([["a", "", "b"]])
    np.testing.assert_array_equal(clone(data).numpy(), layer(data).numpy())
    with pytest.raises(ValueError, match="cannot be `None`"):
        layers.Hashing(num_bins=None)
    with pytest.raises(ValueError, match="cannot be `None`"):
        layers.Hashing(num_bins=-1)
    with pytest.raises(ValueError, match="can only be a tuple of size 2"):
        layers.Hashing(num_bins=2, salt="string")
    with pytest.raises(ValueError, match="can only be a tuple of size 2"):
        layers.Hashing(num_bins=2, salt=[1])
    with pytest.raises(ValueError, match="output_mode"):
        layers.Hashing(num_bins=2, output_mode="tf_idf")
    with pytest.raises(ValueError, match="dtype"):
        layers.Hashing(num_bins=2, dtype="float32")
    with pytest.raises(ValueError, match="TensorFlow backend"):
        layers.Hashing(num_bins=2, output_mode="one_hot", sparse=True)


def test_hashed_crossing_matches_keras_doc_and_formula():
    layer = layers.HashedCrossing(num_bins=5)
    feat1 = np.array(["A", "B", "A", "B", "A"])
    feat2 = np.array([101, 101, 101, 102, 102])
    out = layer((feat1, feat2))
    assert out.dtype == torch.int64
    np.testing.assert_array_equal(out.numpy(), [1, 4, 1, 1, 3])  # Keras's docstring
    one_hot = layers.HashedCrossing(num_bins=5, output_mode="one_hot")((feat1, feat2))
    np.testing.assert_array_equal(one_hot.numpy(), np.eye(5)[[1, 4, 1, 1, 3]])
    # Sweep: strings fingerprinted, ints as their 64-bit value, chained from 0xDECAFCAFFE.
    rng = np.random.default_rng(1)
    a = np.array([str(v) for v in rng.integers(0, 50, 30)])
    b = rng.integers(-(2**40), 2**40, 30)
    c = np.array(["x" * int(k) for k in rng.integers(0, 70, 30)])
    for num_bins in (2, 17, 10**6):
        got = layers.HashedCrossing(num_bins=num_bins)(
            (a[:, None], torch.as_tensor(b)[:, None], c[:, None])
        )
        expected = []
        for u, v, w in zip(a, b, c):
            h = 0xDECAFCAFFE
            for fp in (farmhash.fingerprint64(u), int(v) & _M, farmhash.fingerprint64(w)):
                h = _cat64(h, fp)
            expected.append(h % num_bins)
        assert tuple(got.shape) == (30, 1)
        np.testing.assert_array_equal(got.numpy()[:, 0], expected)


def test_hashed_crossing_shapes_config_and_errors():
    layer = layers.HashedCrossing(num_bins=4, output_mode="one_hot")
    a, b = layers.Input(shape=(1,), dtype="string"), layers.Input(shape=(1,), dtype="int64")
    assert layer((a, b)).shape == (None, 4)
    assert layer.compute_output_shape([(None, 1), (None, 1)]) == (None, 4)
    config = layer.get_config()
    assert set(config) == {"num_bins", "output_mode", "sparse", "name", "dtype"}
    assert layers.HashedCrossing.from_config(config).num_bins == 4
    with pytest.raises(ValueError, match="list or tuple"):
        layers.HashedCrossing(num_bins=4)(np.array(["a"]))
    with pytest.raises(ValueError, match="at least two"):
        layers.HashedCrossing(num_bins=4)([np.array(["a"])])
    with pytest.raises(ValueError, match="equal shape"):
        layers.HashedCrossing(num_bins=4)([np.array(["a"]), np.array([1, 2])])
    with pytest.raises(ValueError, match="integer or string"):
        layers.HashedCrossing(num_bins=4)([np.array([1.0]), np.array([1])])
    with pytest.raises(ValueError, match="output_mode"):
        layers.HashedCrossing(num_bins=4, output_mode="count")


@pytest.mark.parametrize("layer_cls", ["Hashing", "HashedCrossing"])
def test_hashing_layers_through_the_layer_harness(layer_cls):
    from tests.harness import run_layer_test

    if layer_cls == "Hashing":
        run_layer_test(
            layers.Hashing,
            {"num_bins": 6, "output_mode": "count"},
            (3, 5),
            input_dtype="int64",
            expected_output_shape=(3, 6),
            reference=lambda x, _: np.stack(
                [np.bincount(r, minlength=6) for r in _reference_bins(x, 6)]
            ).astype("float32"),
        )
        return
    data = [np.arange(4)[:, None], np.arange(10, 14)[:, None]]

    def reference(arrays, _):
        out = []
        for u, v in zip(arrays[0][:, 0], arrays[1][:, 0]):
            out.append(_cat64(_cat64(0xDECAFCAFFE, int(u)), int(v)) % 7)
        return np.eye(7, dtype="float32")[out]

    run_layer_test(
        layers.HashedCrossing,
        {"num_bins": 7, "output_mode": "one_hot"},
        input_data=data,
        expected_output_shape=(4, 7),
        reference=reference,
    )


def test_model_with_text_crossed_and_numeric_dict_inputs_fits_and_predicts():
    text = layers.Input(shape=(1,), dtype="string", name="text")
    num = layers.Input(shape=(2,), name="num")
    city = layers.Input(shape=(1,), dtype="string", name="city")
    day = layers.Input(shape=(1,), dtype="int64", name="day")
    words = layers.TextVectorization(output_mode="multi_hot", vocabulary=["a", "b", "c"])
    cross = layers.HashedCrossing(num_bins=8, output_mode="one_hot")
    features = layers.Concatenate()([words(text), num, cross((city, day))])
    model = distkeras.Model(
        {"text": text, "num": num, "city": city, "day": day}, layers.Dense(1)(features)
    )
    model.compile(optimizer="adam", loss="mse")
    data = {
        "text": np.array(["a b", "c", "a"] * 4),  # (n,) text for a (None, 1) input
        "num": np.ones((12, 2), "float32"),
        "city": np.array([["x"], ["y"], ["z"]] * 4),
        "day": np.arange(12)[:, None],
    }
    history = model.fit(data, np.zeros((12, 1), "float32"), epochs=2, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    predictions = model.predict(data, verbose=0)
    kernel, bias = model.layers[-1].get_weights()
    crossed = cross((data["city"], data["day"])).numpy()
    expected = np.concatenate([words(data["text"]).numpy(), data["num"], crossed], axis=1)
    np.testing.assert_allclose(predictions, expected @ kernel + bias, rtol=1e-5, atol=1e-6)
