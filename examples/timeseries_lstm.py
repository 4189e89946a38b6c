"""An LSTM forecaster on a multi-seasonal hourly series, compared with a naive baseline.

One process:    python examples/timeseries_lstm.py
Two workers:    distkeras-launch -n 2 examples/timeseries_lstm.py
Quick check:    python examples/timeseries_lstm.py --epochs 1 --samples 256

The series looks like hourly electricity demand: a daily cycle with morning and evening peaks,
a weekly cycle (quieter weekends), a slow trend, and persistent "weather" noise (AR(1)) on top
of measurement noise. The model sees the last ``--window`` hours (demand plus hour-of-day and
day-of-week encodings) and predicts the demand ``--horizon`` hours after the window. The split
is chronological (train, then validation, then test), as it must be for forecasting. The
baseline every forecaster has to beat repeats the last observed value.
"""

import argparse

import numpy as np

from distkeras import layers
from distkeras.callbacks import EarlyStopping
from distkeras.distributed import is_chief
from distkeras.models import Sequential
from distkeras.utils import set_random_seed

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=15)
parser.add_argument("--samples", type=int, default=6000, help="hours of data (series length)")
parser.add_argument("--window", type=int, default=48, help="hours the model sees")
parser.add_argument("--horizon", type=int, default=12, help="hours ahead to forecast")
parser.add_argument("--units", type=int, default=32)
parser.add_argument("--batch-size", type=int, default=64)
args = parser.parse_args()

set_random_seed(42)


def make_series(hours: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Demand (MW) and calendar features for ``hours`` consecutive hours."""
    rng = np.random.default_rng(seed)  # the same data on every worker
    t = np.arange(hours, dtype="float64")
    hour, day = t % 24, (t // 24) % 7
    daily = 8 * np.exp(-((hour - 8) ** 2) / 8) + 12 * np.exp(-((hour - 19) ** 2) / 6)
    weekend = day >= 5
    weekly = np.where(weekend, -10.0, 0.0) + np.where(weekend, -0.5, 1.0) * daily * 0.3
    trend = 0.002 * t + 3 * np.sin(2 * np.pi * t / (24 * 91))  # growth and a seasonal drift
    weather = np.zeros(hours)  # AR(1): a warm spell lasts for days
    shocks = rng.normal(0, 0.6, hours)
    for i in range(1, hours):
        weather[i] = 0.97 * weather[i - 1] + shocks[i]
    demand = 60 + daily + weekly + trend + weather + rng.normal(0, 1.0, hours)
    calendar = np.stack(
        [
            np.sin(2 * np.pi * hour / 24),
            np.cos(2 * np.pi * hour / 24),
            np.sin(2 * np.pi * day / 7),
            np.cos(2 * np.pi * day / 7),
        ],
        axis=1,
    )
    return demand.astype("float32"), calendar.astype("float32")


def make_windows(features: np.ndarray, target: np.ndarray, window: int, horizon: int):
    """(n, window, features) inputs and the target ``horizon`` steps after each window."""
    n = len(target) - window - horizon + 1
    index = np.arange(window)[None, :] + np.arange(n)[:, None]
    return features[index], target[window - 1 + horizon :][:n]


demand, calendar = make_series(args.samples + args.window + args.horizon - 1)
# Scale with statistics of the training period only (its first 70%).
train_hours = int(0.7 * len(demand))
mean, std = demand[:train_hours].mean(), demand[:train_hours].std()
scaled = (demand - mean) / std
x, y = make_windows(
    np.concatenate([scaled[:, None], calendar], axis=1), scaled, args.window, args.horizon
)
# Chronological split by the time of the forecast target: the model is validated and tested
# on a future it never saw (a window may look back into the previous period, as in real use).
n_train, n_val = int(0.7 * len(y)), int(0.15 * len(y))
x_train, y_train = x[:n_train], y[:n_train]
x_val, y_val = x[n_train : n_train + n_val], y[n_train : n_train + n_val]
x_test, y_test = x[n_train + n_val :], y[n_train + n_val :]

model = Sequential(
    [
        layers.Input(shape=x.shape[1:]),
        layers.LSTM(args.units),
        layers.Dense(args.units, activation="relu"),
        layers.Dense(1),
    ]
)
model.compile(optimizer="adam", loss="mse", metrics=["mae"])
if is_chief():
    model.summary()

model.fit(
    x_train,
    y_train,
    epochs=args.epochs,
    batch_size=args.batch_size,
    validation_data=(x_val, y_val),
    callbacks=[EarlyStopping(monitor="val_mae", patience=4, restore_best_weights=True)],
    verbose=2,
)
forecast = model.predict(x_test, batch_size=256, verbose=0)[:, 0]

# Both errors in megawatts, on the same test windows.
lstm_mae = np.abs(forecast - y_test).mean() * std
naive_mae = np.abs(x_test[:, -1, 0] - y_test).mean() * std
if is_chief():
    print(
        f"test MAE {lstm_mae:.3f} MW - naive last-value MAE {naive_mae:.3f} MW "
        f"({args.horizon} h ahead)"
    )
