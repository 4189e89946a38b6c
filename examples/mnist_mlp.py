"""The seed tutorial's MNIST MLP (784-32-10), with ``keras`` replaced by ``distkeras``.

One process:    python examples/mnist_mlp.py
Four workers:   distkeras-launch -n 4 examples/mnist_mlp.py
"""

import argparse

from distkeras.datasets import load_mnist_or_digits
from distkeras.distributed import is_chief
from distkeras.layers import Dense
from distkeras.models import Sequential
from distkeras.utils import set_random_seed, to_categorical

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=32)
args = parser.parse_args()

set_random_seed(42)
(x_train, y_train), (x_test, y_test) = load_mnist_or_digits(verbose=is_chief())
x_train = x_train.reshape(-1, 784).astype("float32") / 255.0
x_test = x_test.reshape(-1, 784).astype("float32") / 255.0
y_train, y_test = to_categorical(y_train, 10), to_categorical(y_test, 10)

model = Sequential()
model.add(Dense(32, activation="relu", input_dim=784))
model.add(Dense(10, activation="softmax"))

model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size)
loss_and_metrics = model.evaluate(x_test, y_test, batch_size=128)
classes = model.predict(x_test, batch_size=128)

if is_chief():
    print(f"test loss {loss_and_metrics[0]:.4f} - test accuracy {loss_and_metrics[1]:.4f}")
