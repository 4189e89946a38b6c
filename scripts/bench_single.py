"""Single-process training speed: distkeras ``fit`` against a hand-written torch loop.

    python scripts/bench_single.py            # MLP and CNN, 5 interleaved rounds each
    python scripts/bench_single.py --models mlp --rounds 9
    python scripts/bench_single.py --models dropout --rounds 3   # MLP with Dropout(0.2)

Both sides train the seed's models (MLP 784-32-10; CNN Conv32-Pool-Conv64-Pool-Dense10) with
batch 32 and Adam on the same data (scikit-learn's digit scans upscaled to 28x28, tiled to
``--samples``), on one thread. The ``dropout`` row is the MLP with ``Dropout(0.2)`` after the
hidden layer, against ``torch.nn.functional.dropout`` in the loop (``nn.Dropout``). The
hand-written loop is what a good engineer writes: tensors converted once, a permutation per
epoch, F.cross_entropy on logits, torch.optim.Adam (foreach),
zero_grad(set_to_none=True), and on-device loss/accuracy sums for the epoch log (fit reports
both too). Rounds alternate between the two so drift in machine speed hits both alike; the
printed ratio is median(distkeras epoch time) / median(torch epoch time): below 1.00 means
distkeras is faster. With Keras 3 installed (KERAS_BACKEND=torch), its ratio is printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

os.environ.setdefault("DISTKERAS_DEVICE", "cpu")


def load_data(samples: int):
    from distkeras.datasets import digits

    (x, y), _ = digits.load_data(upscale=True)
    reps = -(-samples // len(x))
    x = np.tile(x, (reps, 1, 1))[:samples].astype("float32")[..., None] / 255.0
    y = np.tile(y, reps)[:samples]
    return x, y


# ------------------------------------------------------------------------- distkeras
def distkeras_model(kind: str):
    from distkeras.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
    from distkeras.models import Sequential

    model = Sequential()
    if kind in ("mlp", "dropout"):
        model.add(Dense(32, activation="relu", input_dim=784))
        if kind == "dropout":
            model.add(Dropout(0.2))
    else:
        model.add(Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)))
        model.add(MaxPooling2D((2, 2)))
        model.add(Conv2D(64, (3, 3), activation="relu"))
        model.add(MaxPooling2D((2, 2)))
        model.add(Flatten())
    model.add(Dense(10, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def custom_step_model(kind: str):
    """The same model as a Sequential subclass whose train_step does the built-in step's
    work, written as the keras.io guide "Customizing what happens in fit() with PyTorch"."""
    from distkeras.models import Sequential

    class CustomStep(Sequential):
        def train_step(self, data):
            x, y = data
            self.zero_grad()
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            loss.backward()
            trainable_weights = self.trainable_weights
            gradients = [v.value.grad for v in trainable_weights]
            with torch.no_grad():
                self.optimizer.apply(gradients, trainable_weights)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    reference = distkeras_model(kind)
    model = CustomStep(list(reference.layers))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def time_distkeras(model, x, y_onehot) -> float:
    start = time.perf_counter()
    model.fit(x, y_onehot, epochs=1, batch_size=32, verbose=0)
    return time.perf_counter() - start


# -------------------------------------------------------------------- hand-written torch
def torch_model(kind: str) -> torch.nn.Module:
    nn = torch.nn
    if kind == "mlp":
        return nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    if kind == "dropout":  # nn.Dropout is F.dropout; the module stays in train mode
        return nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1600, 10),
    )


def time_torch(model, optimizer, x, y, epoch: int) -> float:
    start = time.perf_counter()
    n = x.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))
    xs, ys = x[perm], y[perm]
    loss_sum = torch.zeros(())
    correct = torch.zeros((), dtype=torch.long)
    for i in range(0, n, 32):
        xb, yb = xs[i : i + 32], ys[i : i + 32]
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            loss_sum += loss.detach() * yb.shape[0]
            correct += (logits.argmax(1) == yb).sum()
    float(loss_sum), int(correct)  # the epoch log reads them once
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- keras
def keras_timer(kind: str, x, y_onehot):
    try:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras
    except Exception:
        return None
    layers = keras.layers
    model = keras.Sequential()
    if kind in ("mlp", "dropout"):
        model.add(keras.Input((784,)))
        model.add(layers.Dense(32, activation="relu"))
        if kind == "dropout":
            model.add(layers.Dropout(0.2))
    else:
        model.add(keras.Input((28, 28, 1)))
        model.add(layers.Conv2D(32, (3, 3), activation="relu"))
        model.add(layers.MaxPooling2D((2, 2)))
        model.add(layers.Conv2D(64, (3, 3), activation="relu"))
        model.add(layers.MaxPooling2D((2, 2)))
        model.add(layers.Flatten())
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    def run() -> float:
        start = time.perf_counter()
        model.fit(x, y_onehot, epochs=1, batch_size=32, verbose=0)
        return time.perf_counter() - start

    return run


def bench(kind: str, rounds: int, samples: int) -> None:
    from distkeras.utils import set_random_seed, to_categorical

    set_random_seed(0)
    x, y = load_data(samples)
    if kind in ("mlp", "dropout"):
        x = x.reshape(len(x), 784)
    y_onehot = to_categorical(y, 10)
    dk = distkeras_model(kind)
    dk_custom = custom_step_model(kind)
    tm = torch_model(kind)
    opt = torch.optim.Adam(tm.parameters(), lr=1e-3, eps=1e-7)
    x_t = torch.from_numpy(x if kind != "cnn" else np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    y_t = torch.from_numpy(y.astype("int64"))
    keras_run = keras_timer(kind, x, y_onehot)

    # One warm-up epoch each (allocator, kernels, lazy builds), then timed interleaved rounds.
    time_distkeras(dk, x, y_onehot)
    time_distkeras(dk_custom, x, y_onehot)
    time_torch(tm, opt, x_t, y_t, 0)
    if keras_run:
        keras_run()
    dk_times, custom_times, torch_times, keras_times = [], [], [], []
    for r in range(rounds):
        dk_times.append(time_distkeras(dk, x, y_onehot))
        custom_times.append(time_distkeras(dk_custom, x, y_onehot))
        torch_times.append(time_torch(tm, opt, x_t, y_t, r + 1))
        if keras_run:
            keras_times.append(keras_run())
    base = statistics.median(torch_times)
    steps = -(-samples // 32)
    print(
        f"{kind.upper()}: {samples} samples, {steps} steps/epoch, batch 32, Adam, 1 thread, "
        f"{rounds} rounds"
    )
    print(f"  hand-written torch  {base * 1e3:8.1f} ms/epoch  {base / steps * 1e6:7.1f} us/step")
    dk_med = statistics.median(dk_times)
    print(f"  distkeras fit       {dk_med * 1e3:8.1f} ms/epoch  ratio {dk_med / base:.2f}")
    c_med = statistics.median(custom_times)
    print(f"  custom train_step   {c_med * 1e3:8.1f} ms/epoch  ratio {c_med / base:.2f}")
    if keras_times:
        k_med = statistics.median(keras_times)
        print(f"  keras 3 (torch)     {k_med * 1e3:8.1f} ms/epoch  ratio {k_med / base:.2f}")
    else:
        print("  keras 3             not installed (pip install keras) - skipped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn", "dropout"]
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=8000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for kind in args.models:
        bench(kind, args.rounds, args.samples if kind != "cnn" else args.samples // 4)


if __name__ == "__main__":
    main()
