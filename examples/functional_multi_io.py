"""A functional model with two inputs and two outputs: house price and quick sale, jointly.

One process:    python examples/functional_multi_io.py
Two workers:    distkeras-launch -n 2 examples/functional_multi_io.py
Quick check:    python examples/functional_multi_io.py --epochs 1 --samples 256

Each synthetic listing has numeric features (area, rooms, age, distance to the centre, garden)
and a neighbourhood id. The neighbourhood matters (some are pricier, some sell faster) but the
model is never told how: an ``Embedding`` learns it. A trunk of Dense layers shared by both
heads feeds a regression head (price, in units of 100k) and a classification head (sold within
30 days). ``compile`` takes per-output losses, ``loss_weights`` and metrics, keyed by the
output layers' names; ``fit`` takes dicts keyed by the input and output names.
"""

import argparse

import numpy as np

from distkeras import layers, metrics
from distkeras.distributed import is_chief
from distkeras.models import Model
from distkeras.utils import set_random_seed

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--samples", type=int, default=20000, help="listings (80%% for training)")
parser.add_argument("--neighbourhoods", type=int, default=40)
parser.add_argument("--batch-size", type=int, default=128)
args = parser.parse_args()

set_random_seed(42)


def make_listings(n: int, n_neighbourhoods: int, seed: int = 0):
    """Inputs and targets of ``n`` listings as dicts keyed by the model's names."""
    rng = np.random.default_rng(seed)  # the same data on every worker
    # Hidden neighbourhood traits the embedding has to discover from the data.
    price_level = rng.normal(0.0, 0.35, n_neighbourhoods)
    demand = rng.normal(0.0, 1.0, n_neighbourhoods)
    hood = rng.integers(0, n_neighbourhoods, n)
    area = rng.gamma(9.0, 10.0, n)  # square metres, mean 90
    rooms = np.clip(np.rint(area / 25 + rng.normal(0, 0.7, n)), 1, 8)
    age = rng.uniform(0, 80, n)
    distance = rng.gamma(2.0, 3.0, n)  # km to the centre
    garden = (rng.random(n) < 0.3).astype("float64")
    log_price = (
        np.log(area)
        + 0.05 * rooms
        - 0.004 * age
        - 0.04 * distance
        + 0.1 * garden
        + price_level[hood]
        - 3.2
        + rng.normal(0, 0.08, n)
    )
    price = np.exp(log_price)  # units of 100k: about 1 to 5
    # A listing sells fast in a popular area, when new, and when cheap for its area.
    value_for_money = price_level[hood] + np.log(area) - 3.2 - log_price
    logit = 1.2 * demand[hood] - 0.02 * (age - 40) + 4.0 * value_for_money + 0.5 * garden
    sold_fast = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("float32")

    numeric = np.stack([area, rooms, age, distance, garden], axis=1)
    inputs = {"features": numeric.astype("float32"), "neighbourhood": hood[:, None]}
    targets = {"price": price[:, None].astype("float32"), "sold_fast": sold_fast[:, None]}
    return inputs, targets


inputs, targets = make_listings(args.samples, args.neighbourhoods)
n_train = int(0.8 * args.samples)
x_train = {k: v[:n_train] for k, v in inputs.items()}
y_train = {k: v[:n_train] for k, v in targets.items()}
x_test = {k: v[n_train:] for k, v in inputs.items()}
y_test = {k: v[n_train:] for k, v in targets.items()}

# Standardise the numeric features with training statistics; Normalization.adapt() would do
# the same inside the model.
mean, std = x_train["features"].mean(axis=0), x_train["features"].std(axis=0)
x_train["features"] = (x_train["features"] - mean) / std
x_test["features"] = (x_test["features"] - mean) / std

features = layers.Input(shape=(5,), name="features")
neighbourhood = layers.Input(shape=(1,), dtype="int32", name="neighbourhood")
hood_vector = layers.Flatten()(layers.Embedding(args.neighbourhoods, 8)(neighbourhood))
x = layers.Concatenate()([features, hood_vector])
x = layers.Dense(64, activation="relu")(x)  # the trunk both heads share
x = layers.Dense(32, activation="relu")(x)
price = layers.Dense(1, name="price")(x)
sold_fast = layers.Dense(1, activation="sigmoid", name="sold_fast")(x)
model = Model(
    inputs={"features": features, "neighbourhood": neighbourhood},
    outputs={"price": price, "sold_fast": sold_fast},
)

model.compile(
    optimizer="adam",
    loss={"price": "mean_squared_error", "sold_fast": "binary_crossentropy"},
    loss_weights={"price": 1.0, "sold_fast": 0.5},
    metrics={"price": ["mae"], "sold_fast": ["accuracy", metrics.AUC(name="auc")]},
)
if is_chief():
    model.summary()

model.fit(
    x_train,
    y_train,
    epochs=args.epochs,
    batch_size=args.batch_size,
    validation_split=0.1,
    verbose=2,
)
results = model.evaluate(x_test, y_test, batch_size=512, verbose=0, return_dict=True)
predictions = model.predict(x_test, batch_size=512, verbose=0)  # {"price": ..., "sold_fast": ...}

if is_chief():
    print("predictions: " + ", ".join(f"{k} {v.shape}" for k, v in predictions.items()))
    print(
        f"test price MAE {results['price_mae'] * 100:.1f}k - "
        f"sold_fast accuracy {results['sold_fast_accuracy']:.4f} - "
        f"sold_fast AUC {results['sold_fast_auc']:.4f}"
    )
