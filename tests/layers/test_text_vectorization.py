"""TextVectorization against Keras's documented behaviour and an independent text pipeline.

Keras's TextVectorization needs TensorFlow (not installed here). The reference below redoes
its TensorFlow ops from their definitions: ``tf.strings.lower`` changes ASCII letters only,
punctuation is Keras's regex, ``tf.strings.split`` splits on ASCII whitespace runs,
``tf.strings.ngrams`` lists every width's n-grams in order; ids come from the vocabulary
``["", "[UNK]", *tokens]`` with tokens by count, ties by the larger token.
"""

from __future__ import annotations

import collections
import re
import zipfile

import numpy as np
import pytest
import torch

import distkeras
from distkeras import layers

_PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'  # Keras's regex, verbatim


def reference_tokens(text, standardize="lower_and_strip_punctuation", ngrams=None):
    if standardize in ("lower", "lower_and_strip_punctuation"):
        text = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)
    if standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = re.sub(_PUNCTUATION, "", text)
    tokens = re.findall(r"[^ \t\n\v\f\r]+", text)
    if ngrams is None:
        return tokens
    widths = range(1, ngrams + 1) if isinstance(ngrams, int) else ngrams
    return [" ".join(tokens[i : i + n]) for n in widths for i in range(len(tokens) - n + 1)]


def reference_vocabulary(rows, max_tokens=None):
    counts = collections.Counter(t for row in rows for t in row)
    items = sorted(counts.items(), key=lambda kv: kv[0], reverse=True)
    items.sort(key=lambda kv: -kv[1])
    tokens = [t for t, _ in items]
    return ["", "[UNK]", *(tokens if max_tokens is None else tokens[: max_tokens - 2])]


def random_texts(rng, n):
    words = ["The", "cat", "SAT", "on", "mat.", "dog,", "é", "Été", "a-b", "x's", "(hi)"]
    spaces = [" ", "  ", "\t", "\n", " \r\n ", "\xa0", "\x1c"]  # \xa0, \x1c: no TF spaces
    out = []
    for _ in range(n):
        k = int(rng.integers(0, 9))
        parts = [str(rng.choice(words)) + str(rng.choice(spaces)) for _ in range(k)]
        out.append(" " * int(rng.integers(0, 2)) + "".join(parts))
    return np.array(out)


# ------------------------------------------------------------------ Keras's own cases
def test_keras_docstring_and_test_expectations():
    layer = layers.TextVectorization(max_tokens=5000, output_mode="int", output_sequence_length=4)
    layer.adapt(["foo bar", "bar baz", "baz bada boom"])
    out = layer([["foo qux bar"], ["qux baz"]])
    assert out.dtype == torch.int64
    np.testing.assert_array_equal(out.numpy(), [[4, 1, 3, 0], [1, 2, 0, 0]])
    given = layers.TextVectorization(vocabulary=["earth", "wind", "and", "fire"])
    assert given.get_vocabulary() == ["", "[UNK]", "earth", "wind", "and", "fire"]
    vocab = ["foo", "bar", "baz"]
    multi = layers.TextVectorization(output_mode="multi_hot", vocabulary=vocab)
    np.testing.assert_array_equal(
        multi([["foo bar"], ["baz foo foo"]]).numpy(), [[0, 1, 1, 0], [0, 1, 0, 1]]
    )
    count = layers.TextVectorization(output_mode="count", vocabulary=vocab)
    np.testing.assert_array_equal(
        count(["foo bar", "baz foo foo"]).numpy(), [[0, 1, 1, 0], [0, 2, 0, 1]]
    )
    tfidf = layers.TextVectorization(
        output_mode="tf_idf", vocabulary=vocab, idf_weights=[0.3, 0.5, 0.2]
    )
    np.testing.assert_allclose(
        tfidf(["foo bar", "baz foo foo"]).numpy(), [[0, 0.3, 0.5, 0], [0, 0.6, 0, 0.2]]
    )
    text = ["Hello, World!. This is just a nice test!"]
    strip = layers.TextVectorization(vocabulary=["hello", "world", "this", "is", "nice", "test"])
    np.testing.assert_array_equal(strip(text).numpy(), [[2, 3, 4, 5, 1, 1, 6, 7]])
    lower = layers.TextVectorization(
        standardize="lower", vocabulary=["hello,", "hello", "world", "this", "is", "nice", "test"]
    )
    np.testing.assert_array_equal(lower(text).numpy(), [[2, 1, 5, 6, 1, 1, 7, 1]])
    chars = layers.TextVectorization(split="character", vocabulary=list("abcde"))
    np.testing.assert_array_equal(chars(["abcf"]).numpy(), [[2, 3, 4, 1]])
    punct = layers.TextVectorization(
        standardize="strip_punctuation", vocabulary=["Hello", "World", "Test"]
    )
    np.testing.assert_array_equal(punct(["Hello, World! Test."]).numpy(), [[2, 3, 4]])
    raw = layers.TextVectorization(standardize=None, vocabulary=["Hello", "world"])
    np.testing.assert_array_equal(raw(["Hello hello"]).numpy(), [[2, 1]])
    whole = layers.TextVectorization(split=None, vocabulary=vocab)
    np.testing.assert_array_equal(whole([["foo"], ["bar"], ["unknown"]]).numpy(), [[2], [3], [1]])
    capped = layers.TextVectorization(max_tokens=5)
    capped.adapt(["a b c d e f g h i j"])
    assert len(capped.get_vocabulary()) == 5
    trigrams = layers.TextVectorization(ngrams=(1, 3))
    trigrams.adapt(["foo bar baz"])
    assert "foo bar baz" in trigrams.get_vocabulary()
    assert "foo bar" not in trigrams.get_vocabulary()


def test_callables_for_standardize_and_split():
    seen = []

    def np_standardize(texts):
        seen.append((type(texts).__name__, texts.dtype.kind))
        return np.char.replace(np.char.lower(texts), ",", "")

    layer = layers.TextVectorization(standardize=np_standardize)
    layer.adapt(["Hello, world."])
    assert seen and all(s == ("ndarray", "U") for s in seen)
    assert "hello" in layer.get_vocabulary() and "world." in layer.get_vocabulary()
    split = layers.TextVectorization(
        standardize=None,  # (the default would strip "|" first, as in Keras)
        split=lambda texts: [t.split("|") for t in texts],
        vocabulary=["foo", "bar", "foobar"],
    )
    np.testing.assert_array_equal(split(["foo|bar", "foobar"]).numpy(), [[2, 3], [4, 0]])


# -------------------------------------------------------------------------- sweeps
@pytest.mark.parametrize(
    "standardize", ["lower_and_strip_punctuation", "lower", "strip_punctuation", None]
)
@pytest.mark.parametrize("ngrams", [None, 2, (1, 3)])
def test_int_output_sweep_against_reference(standardize, ngrams):
    rng = np.random.default_rng(0)
    train, test = random_texts(rng, 40), random_texts(rng, 12)
    layer = layers.TextVectorization(max_tokens=30, standardize=standardize, ngrams=ngrams)
    layer.adapt(train)
    rows = [reference_tokens(t, standardize or "none", ngrams) for t in train]
    vocab = reference_vocabulary(rows, 30)
    assert layer.get_vocabulary() == vocab
    index = {t: i for i, t in enumerate(vocab)}
    ids = [
        [index.get(t, 1) for t in reference_tokens(t, standardize or "none", ngrams)] for t in test
    ]
    width = max(len(r) for r in ids)
    expected = np.array([r + [0] * (width - len(r)) for r in ids])
    np.testing.assert_array_equal(layer(test).numpy(), expected)
    np.testing.assert_array_equal(layer(test[:, None]).numpy(), expected)
    for length in (3, width + 2):
        fixed = layers.TextVectorization(
            vocabulary=vocab[2:],
            standardize=standardize,
            ngrams=ngrams,
            output_sequence_length=length,
        )
        padded = np.zeros((len(test), length), dtype=np.int64)
        for r, row in enumerate(ids):
            padded[r, : min(len(row), length)] = row[:length]
        np.testing.assert_array_equal(fixed(list(test)).numpy(), padded)


@pytest.mark.parametrize("mode", ["multi_hot", "count", "tf_idf"])
@pytest.mark.parametrize("pad", [False, True])
def test_encoded_outputs_against_reference(mode, pad):
    rng = np.random.default_rng(1)
    train, test = random_texts(rng, 30), random_texts(rng, 8)
    layer = layers.TextVectorization(max_tokens=16, output_mode=mode, pad_to_max_tokens=pad)
    layer.adapt(train)
    rows = [reference_tokens(t) for t in train]
    tokens = reference_vocabulary(rows)[2:]  # uncapped: 15 learned tokens fit beside [UNK]
    vocab = ["[UNK]", *tokens[:15]]  # no mask slot outside "int": the OOV comes first
    assert layer.get_vocabulary() == vocab
    depth = 16 if pad else len(vocab)
    index = {t: i for i, t in enumerate(vocab)}
    counts = np.zeros((len(test), depth))
    for r, text in enumerate(test):
        for t in reference_tokens(text):
            counts[r, index.get(t, 0)] += 1
    if mode == "multi_hot":
        expected = (counts > 0).astype(float)
    elif mode == "count":
        expected = counts
    else:
        docs = collections.Counter(t for row in rows for t in set(row))
        idf = np.array([np.log(1 + 30 / (1 + docs[t])) for t in vocab[1:]])
        expected = counts * np.concatenate([[idf.mean()], idf, np.zeros(depth - len(vocab))])
    out = layer(test)
    assert out.dtype == torch.float32 and tuple(out.shape) == (len(test), depth)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_adapt_from_batches_bytes_and_objects():
    rng = np.random.default_rng(2)
    texts = random_texts(rng, 25)
    whole = layers.TextVectorization()
    whole.adapt(texts)
    batched = layers.TextVectorization()
    batched.adapt(iter([texts[i : i + 4] for i in range(0, 25, 4)]))
    assert batched.get_vocabulary() == whole.get_vocabulary()
    encoded = np.array([t.encode("utf-8") for t in texts], dtype=object)
    np.testing.assert_array_equal(whole(encoded).numpy(), whole(texts).numpy())
    np.testing.assert_array_equal(whole(texts.astype(object)).numpy(), whole(texts).numpy())


def test_symbolic_shapes_config_and_errors():
    inputs = layers.Input(shape=(1,), dtype="string")
    assert layers.TextVectorization(output_sequence_length=7)(inputs).shape == (None, 7)
    assert layers.TextVectorization()(inputs).shape == (None, None)
    bag = layers.TextVectorization(max_tokens=9, output_mode="count", pad_to_max_tokens=True)
    assert bag(inputs).shape == (None, 9) and bag(inputs).dtype == "float32"
    layer = layers.TextVectorization(vocabulary=["a", "b"], ngrams=(1, 2), output_sequence_length=3)
    config = layer.get_config()
    keras_keys = {
        "max_tokens", "standardize", "split", "ngrams", "output_mode", "output_sequence_length",
        "pad_to_max_tokens", "sparse", "ragged", "vocabulary", "idf_weights", "encoding",
        "vocabulary_size", "name", "trainable", "dtype",
    }  # fmt: skip
    assert set(config) == keras_keys
    clone = layers.TextVectorization.from_config({**config, "ngrams": [1, 2]})
    np.testing.assert_array_equal(clone(["a b c"]).numpy(), layer(["a b c"]).numpy())
    with pytest.raises(ValueError, match="ngrams"):
        layers.TextVectorization(ngrams=[1, 2])
    with pytest.raises(ValueError, match="must not be set"):
        layers.TextVectorization(output_mode="count", output_sequence_length=3)
    with pytest.raises(ValueError, match="standardize"):
        layers.TextVectorization(standardize="upper")
    with pytest.raises(ValueError, match="TensorFlow backend"):
        layers.TextVectorization(ragged=True)
    with pytest.raises(ValueError, match="last shape dimension must be 1"):
        layers.TextVectorization(vocabulary=["a"])(np.array([["a", "b"]]))


# -------------------------------------------------------------------------- models
def _reviews(n, seed=0):
    rng = np.random.default_rng(seed)
    good, bad = ["great", "good", "fine"], ["bad", "awful", "poor"]
    labels = rng.integers(0, 2, n)
    texts = [
        " ".join(rng.choice(good if y else bad, 3)) + " " + str(rng.choice(["!", ".", "movie"]))
        for y in labels
    ]
    return np.array(texts), labels.astype("float32")[:, None]


def test_text_model_trains_predicts_and_round_trips(tmp_path):
    texts, labels = _reviews(96)
    vectorizer = layers.TextVectorization(max_tokens=20, output_sequence_length=6)
    vectorizer.adapt(texts)
    inputs = layers.Input(shape=(1,), dtype="string")
    x = layers.Embedding(20, 8)(vectorizer(inputs))
    outputs = layers.Dense(1, activation="sigmoid")(layers.GlobalAveragePooling1D()(x))
    model = distkeras.Model(inputs, outputs)
    model.compile(
        optimizer=distkeras.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["accuracy"]
    )
    history = model.fit(texts, labels, epochs=8, batch_size=16, validation_split=0.25, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    predictions = model.predict(texts, verbose=0)
    assert predictions.shape == (96, 1)
    np.testing.assert_allclose(
        model.predict(list(texts[:5]), verbose=0), predictions[:5], rtol=1e-6
    )
    model.save(tmp_path / "text.keras")
    with zipfile.ZipFile(tmp_path / "text.keras") as archive:
        saved = archive.read("assets/layers/text_vectorization/vocabulary.txt").decode()
    assert saved.split("\n") == vectorizer.get_vocabulary()
    restored = distkeras.models.load_model(tmp_path / "text.keras")
    assert restored.layers[1].get_vocabulary() == vectorizer.get_vocabulary()
    np.testing.assert_allclose(restored.predict(texts, verbose=0), predictions, rtol=1e-6)
    loss, accuracy = restored.evaluate(texts, labels, verbose=0)
    assert accuracy > 0.9


def test_sequential_bag_of_words_fits_on_text():
    texts, labels = _reviews(64, seed=1)
    vectorizer = layers.TextVectorization(output_mode="multi_hot")
    vectorizer.adapt(texts)
    model = distkeras.Sequential([vectorizer, layers.Dense(1, activation="sigmoid")])
    model.compile(
        optimizer=distkeras.optimizers.Adam(0.1), loss="binary_crossentropy", metrics=["accuracy"]
    )
    model.fit(texts, labels, epochs=6, batch_size=16, shuffle=True, verbose=0)
    assert model.evaluate(texts, labels, verbose=0)[1] > 0.9
    with pytest.raises(TypeError, match="must be numeric"):
        numeric = distkeras.Sequential([layers.Input((1,)), layers.Dense(1)])
        numeric.predict(texts[:, None], verbose=0)


def _start_text_fit(tmp_path, workers: int):
    """Starts scripts/text_fit.py (under the launcher for several workers); returns a waiter."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / f"text_fit_{workers}.npz"
    launch = ["-m", "launcher", "-n", str(workers)] if workers > 1 else []
    env = dict(os.environ, OMP_NUM_THREADS="1", DISTKERAS_DEVICE="cpu", PYTHONPATH=str(root))
    script = str(Path(__file__).parent / "scripts" / "text_fit.py")
    log = open(tmp_path / f"text_fit_{workers}.log", "w+")  # noqa: SIM115 (closed in wait)
    process = subprocess.Popen(
        [sys.executable, *launch, script, str(out)], cwd=root, env=env, stdout=log, stderr=log
    )

    def wait() -> dict:
        try:
            code = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
        log.seek(0)
        assert code == 0, log.read()[-3000:]
        log.close()
        with np.load(out) as data:
            return {key: data[key] for key in data.files}

    return wait


def test_fit_on_text_gives_the_same_model_on_two_workers(tmp_path):
    """Text is sharded by rank like any array: 2 workers train the 1-worker model."""
    import importlib.util
    from pathlib import Path

    wait = _start_text_fit(tmp_path, 2)
    path = Path(__file__).parent / "scripts" / "text_fit.py"
    spec = importlib.util.spec_from_file_location("text_fit", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    single = script.train()  # one process, here, while the two workers run
    double = wait()
    assert sorted(single) == sorted(double)
    for key in single:
        np.testing.assert_allclose(double[key], single[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_on_batch_methods_take_text():
    texts, labels = _reviews(16, seed=4)
    vectorizer = layers.TextVectorization(output_mode="count")
    vectorizer.adapt(texts)
    model = distkeras.Sequential([layers.Input((1,), dtype="string"), vectorizer, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.train_on_batch(texts, labels)
    assert np.isfinite(model.test_on_batch(texts, labels))
    np.testing.assert_allclose(
        model.predict_on_batch(texts), model.predict(texts, verbose=0), rtol=1e-6
    )


@pytest.mark.parametrize("adapted", [True, False])
def test_tf_idf_model_round_trips_weights_and_vocabulary(tmp_path, adapted):
    texts, _ = _reviews(40, seed=5)
    if adapted:
        vectorizer = layers.TextVectorization(
            output_mode="tf_idf", max_tokens=10, pad_to_max_tokens=True
        )
        vectorizer.adapt(texts)
    else:  # a given vocabulary lives in the config, not in assets/
        vectorizer = layers.TextVectorization(
            output_mode="tf_idf", vocabulary=["good", "bad", "movie"], idf_weights=[0.5, 1.5, 2.0]
        )
    model = distkeras.Sequential([layers.Input((1,), dtype="string"), vectorizer, layers.Dense(2)])
    expected = model.predict(texts, verbose=0)
    model.save(tmp_path / "tfidf.keras")
    with zipfile.ZipFile(tmp_path / "tfidf.keras") as archive:
        assets = [n for n in archive.namelist() if n.startswith("assets/")]
    assert bool(assets) == adapted
    restored = distkeras.models.load_model(tmp_path / "tfidf.keras")
    assert restored.layers[0].get_vocabulary() == vectorizer.get_vocabulary()
    np.testing.assert_allclose(
        restored.layers[0](texts).numpy(), vectorizer(texts).numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(restored.predict(texts, verbose=0), expected, rtol=1e-6)


def test_adapt_and_fit_on_text_dataset_from_directory(tmp_path):
    texts, labels = _reviews(24, seed=6)
    for i, (text, label) in enumerate(zip(texts, labels[:, 0])):
        folder = tmp_path / ("pos" if label else "neg")
        folder.mkdir(exist_ok=True)
        (folder / f"{i}.txt").write_text(text, encoding="utf-8")
    dataset = distkeras.utils.text_dataset_from_directory(
        tmp_path, batch_size=8, seed=1, label_mode="binary", verbose=False
    )
    vectorizer = layers.TextVectorization(output_mode="multi_hot")
    vectorizer.adapt(dataset)  # (texts, labels) batches: the texts are read
    expected = layers.TextVectorization(output_mode="multi_hot")
    expected.adapt(texts)
    assert vectorizer.get_vocabulary() == expected.get_vocabulary()
    model = distkeras.Sequential([layers.Input((1,), dtype="string"), vectorizer, layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(dataset, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(dataset, verbose=0).shape == (24, 1)


def test_registered_standardize_callable_round_trips_through_a_keras_file(tmp_path):
    @distkeras.saving.register_keras_serializable(package="test_text_vectorization")
    def lower_only(texts):
        return np.char.lower(texts)

    layer = layers.TextVectorization(
        standardize=lower_only, vocabulary=["a", "b"], output_mode="count"
    )
    model = distkeras.Sequential([layers.Input((1,), dtype="string"), layer, layers.Dense(1)])
    model.save(tmp_path / "std.keras")
    restored = distkeras.models.load_model(tmp_path / "std.keras")
    assert restored.layers[0]._standardize is lower_only
    np.testing.assert_array_equal(
        restored.layers[0](["A, b B"]).numpy(), [[1, 0, 2]]
    )  # "a," is OOV
