"""Fits a model that reads raw text (TextVectorization inside) and returns what it learned.

Run as ``python -m launcher -n 2 text_fit.py OUT.npz``: rank 0 writes the weights, history,
evaluate() and predict() results, which must equal ``train()`` in one process.
"""

import sys

import numpy as np

import distkeras
from distkeras import layers
from distkeras.distributed import is_chief


def train() -> dict:
    distkeras.utils.set_random_seed(3)
    rng = np.random.default_rng(0)
    words = np.array(["good", "bad", "fine", "awful", "the", "film", "plot", "great", "poor"])
    texts = np.array([" ".join(rng.choice(words, rng.integers(1, 7))) for _ in range(47)])
    labels = np.array([[float(("good" in t) or ("great" in t))] for t in texts], dtype="float32")
    vectorizer = layers.TextVectorization(max_tokens=12, output_sequence_length=5)
    vectorizer.adapt(texts)
    inputs = layers.Input(shape=(1,), dtype="string")
    x = layers.Embedding(12, 4)(vectorizer(inputs))
    outputs = layers.Dense(1, activation="sigmoid")(layers.GlobalAveragePooling1D()(x))
    model = distkeras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(
        texts, labels, epochs=2, batch_size=10, shuffle=True, validation_split=0.2, verbose=0
    )
    loss, accuracy = model.evaluate(texts, labels, batch_size=7, verbose=0)
    results = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    results["history"] = np.array([history.history[k] for k in sorted(history.history)])
    results["evaluate"] = np.array([loss, accuracy])
    results["predictions"] = model.predict(texts, batch_size=9, verbose=0)
    return results


if __name__ == "__main__":
    results = train()
    if is_chief():
        np.savez(sys.argv[1], **results)
