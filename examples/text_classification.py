"""Sentiment classification of short reviews: TextVectorization, Embedding and a BiLSTM.

One process:    python examples/text_classification.py
Two workers:    distkeras-launch -n 2 examples/text_classification.py
Quick check:    python examples/text_classification.py --epochs 1 --samples 256

The reviews are generated here (no download), with the structure that makes word order matter:
clauses about a product's parts, negation ("the battery is not very reliable"), and contrast
("the screen is superb but the battery is awful"), where the clause after "but" decides the
verdict. Irrelevant sentences are mixed in, and 4% of the labels contradict the text, as real
ratings sometimes do. A bag of words cannot tell which clause comes last or what "not"
applies to; the recurrent model can, and the script trains both to show it.

As in keras.io's "text classification from scratch": a TextVectorization layer learns the
vocabulary from the training text (adapt), turns reviews into integer sequences (0 is
padding, 1 an unknown word) padded to one length, and the mask makes the LSTM skip the
padding. The models train on those sequences; the final model takes raw strings, with the
vectorizer as its first layer, and is evaluated on the test reviews as text.
"""

import argparse

import numpy as np

import distkeras
from distkeras import layers
from distkeras.distributed import is_chief
from distkeras.models import Sequential
from distkeras.utils import set_random_seed

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=6)
parser.add_argument("--samples", type=int, default=8000, help="reviews (80%% for training)")
parser.add_argument("--maxlen", type=int, default=40, help="tokens kept per review")
parser.add_argument("--batch-size", type=int, default=64)
args = parser.parse_args()

set_random_seed(42)

POSITIVE = str.split(
    "great excellent good superb lovely fantastic reliable sturdy comfortable impressive solid "
    "brilliant"
)
NEGATIVE = str.split(
    "bad terrible awful poor disappointing flimsy useless noisy fragile mediocre annoying "
    "unreliable"
)
PARTS = str.split("battery screen sound price design delivery quality service camera keyboard")
INTENSIFIERS = str.split("very really extremely quite rather so")
FILLERS = [
    "i bought it last week",
    "it arrived on tuesday",
    "i got it for my son",
    "i use it every day",
    "it came in a blue box",
    "my friend recommended it",
    "i have had it for a month",
    "i compared a few models first",
]


def clause(rng: np.random.Generator, positive: bool) -> str:
    """'the <part> is [not] [very] <adjective>', meaning ``positive``."""
    negated = rng.random() < 0.3
    pool = POSITIVE if positive != negated else NEGATIVE
    words = ["the", str(rng.choice(PARTS)), "is"]
    if negated:
        words.append("not")
    if rng.random() < 0.4:
        words.append(str(rng.choice(INTENSIFIERS)))
    words.append(str(rng.choice(pool)))
    return " ".join(words)


def review(rng: np.random.Generator) -> tuple[str, int]:
    """One review and its label (1: positive). The last clause carries the verdict."""
    label = int(rng.random() < 0.5)
    kind = rng.choice(["single", "and", "but"], p=[0.3, 0.3, 0.4])
    if kind == "single":
        text = clause(rng, bool(label))
    elif kind == "and":
        text = f"{clause(rng, bool(label))} and {clause(rng, bool(label))}"
    else:
        text = f"{clause(rng, not label)} but {clause(rng, bool(label))}"
    sentences = [text] + [str(s) for s in rng.choice(FILLERS, rng.integers(0, 3), replace=False)]
    rng.shuffle(sentences)
    if rng.random() < 0.04:  # some reviewers' ratings contradict their own words
        label = 1 - label
    return " . ".join(sentences), label


rng = np.random.default_rng(0)  # the same corpus on every worker
texts, labels = zip(*(review(rng) for _ in range(args.samples)))
texts = np.array(texts)  # a numpy array of strings, as fit and the string layers take them
n_train = int(0.8 * args.samples)
# Lowercases, strips punctuation, splits on whitespace; vocabulary from training text only.
vectorizer = layers.TextVectorization(max_tokens=2000, output_sequence_length=args.maxlen)
vectorizer.adapt(texts[:n_train])
x = vectorizer(texts).numpy()  # vectorized once, so every epoch trains on integer ids
y = np.asarray(labels, dtype="float32")[:, None]
x_train, y_train, y_test = x[:n_train], y[:n_train], y[n_train:]
text_test = texts[n_train:]
vocabulary_size = vectorizer.vocabulary_size()


def build(sequence_model: bool) -> Sequential:
    """The BiLSTM classifier, or a bag-of-words one (averaged embeddings) for comparison."""
    encoder = (
        layers.Bidirectional(layers.LSTM(32))
        if sequence_model
        else layers.GlobalAveragePooling1D()  # averages the unmasked steps only
    )
    model = Sequential(
        [
            layers.Input(shape=(args.maxlen,), dtype="int64"),
            layers.Embedding(vocabulary_size, 32, mask_zero=True),
            encoder,
            layers.Dense(32, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


if is_chief():
    print(f"{len(texts)} reviews, vocabulary {vocabulary_size} tokens, e.g.:")
    for text, label in zip(texts[:3], labels[:3]):
        print(f"  [{'positive' if label else 'negative'}] {text}")

accuracies, models = {}, {}
for name, sequence_model in (("bag of words", False), ("BiLSTM", True)):
    model = build(sequence_model)
    if is_chief():
        print(f"--- {name}")
        model.summary()
    model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=0.1,
        verbose=2,
    )
    models[name] = model

# The end-to-end model reads raw strings: the vectorizer runs inside it, in fit's and
# predict's batches (sharded by rank like any array), and it saves with its vocabulary.
inputs = layers.Input(shape=(1,), dtype="string")
for name, model in models.items():
    end_to_end = distkeras.Model(inputs, model(vectorizer(inputs)))
    end_to_end.compile(loss="binary_crossentropy", metrics=["accuracy"])
    loss, accuracies[name] = end_to_end.evaluate(text_test, y_test, batch_size=256, verbose=0)
new = np.array(["the screen is not great but the price is superb", "the sound is awful"])
probabilities = end_to_end.predict(new, verbose=0)  # on every worker: predict is collective
if is_chief():
    for text, p in zip(new, probabilities[:, 0]):
        print(f"P(positive) = {p:.3f} for {str(text)!r}")

if is_chief():
    print(
        f"test accuracy {accuracies['BiLSTM']:.4f} - "
        f"bag-of-words test accuracy {accuracies['bag of words']:.4f}"
    )
