"""Sentiment classification of short reviews with Embedding(mask_zero=True) and a BiLSTM.

One process:    python examples/text_classification.py
Two workers:    distkeras-launch -n 2 examples/text_classification.py
Quick check:    python examples/text_classification.py --epochs 1 --samples 256

The reviews are generated here (no download), with the structure that makes word order matter:
clauses about a product's parts, negation ("the battery is not very reliable"), and contrast
("the screen is superb but the battery is awful"), where the clause after "but" decides the
verdict. Irrelevant sentences are mixed in, and 4% of the labels contradict the text, as real
ratings sometimes do. A bag of words cannot tell which clause comes last or what "not"
applies to; the recurrent model can, and the script trains both to show it. Texts become
integer sequences (0 is padding, 1 an unknown word), padded to one length; the mask makes the
LSTM skip the padding.
"""

import argparse
from collections import Counter

import numpy as np

from distkeras import layers
from distkeras.distributed import is_chief
from distkeras.models import Sequential
from distkeras.utils import pad_sequences, set_random_seed

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


def make_vocabulary(texts: list[str]) -> dict[str, int]:
    """Word -> index by frequency; 0 is reserved for padding and 1 for unknown words."""
    counts = Counter(word for text in texts for word in text.split())
    return {word: i + 2 for i, (word, _) in enumerate(counts.most_common())}


def vectorize(texts: list[str], vocabulary: dict[str, int], maxlen: int) -> np.ndarray:
    """Integer sequences, truncated and zero-padded at the end to ``maxlen``."""
    ids = [[vocabulary.get(word, 1) for word in text.split()] for text in texts]
    return pad_sequences(ids, maxlen=maxlen, dtype="int64", padding="post", truncating="post")


rng = np.random.default_rng(0)  # the same corpus on every worker
texts, labels = zip(*(review(rng) for _ in range(args.samples)))
n_train = int(0.8 * args.samples)
vocabulary = make_vocabulary(texts[:n_train])  # built from training text only
x = vectorize(texts, vocabulary, args.maxlen)
y = np.asarray(labels, dtype="float32")[:, None]
x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]


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
            layers.Embedding(len(vocabulary) + 2, 32, mask_zero=True),
            encoder,
            layers.Dense(32, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


if is_chief():
    print(f"{len(texts)} reviews, vocabulary {len(vocabulary)} words, e.g.:")
    for text, label in zip(texts[:3], labels[:3]):
        print(f"  [{'positive' if label else 'negative'}] {text}")

accuracies = {}
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
    loss, accuracies[name] = model.evaluate(x_test, y_test, batch_size=256, verbose=0)

if is_chief():
    print(
        f"test accuracy {accuracies['BiLSTM']:.4f} - "
        f"bag-of-words test accuracy {accuracies['bag of words']:.4f}"
    )
