"""The seed tutorial's MNIST CNN, with ``keras`` replaced by ``distkeras``.

One process:    python examples/mnist_cnn.py
Four workers:   distkeras-launch -n 4 examples/mnist_cnn.py
Uses ``mnist.npz`` when present (see distkeras.datasets.mnist), else scikit-learn's real digit
scans upscaled to 28x28, and says which.
"""

import argparse

from distkeras.datasets import load_mnist_or_digits
from distkeras.distributed import is_chief
from distkeras.layers import Conv2D, Dense, Flatten, MaxPooling2D
from distkeras.models import Sequential
from distkeras.utils import set_random_seed, to_categorical

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=32)
args = parser.parse_args()

set_random_seed(42)
(x_train, y_train), (x_test, y_test) = load_mnist_or_digits(verbose=is_chief())
x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255.0
x_test = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255.0
y_train, y_test = to_categorical(y_train, 10), to_categorical(y_test, 10)

# Build the model (the tutorial's code from here on)
model = Sequential()
model.add(Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)))
model.add(MaxPooling2D((2, 2)))
model.add(Conv2D(64, (3, 3), activation="relu"))
model.add(MaxPooling2D((2, 2)))
model.add(Flatten())
model.add(Dense(10, activation="softmax"))

model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size)
loss_and_metrics = model.evaluate(x_test, y_test, batch_size=128)
classes = model.predict(x_test, batch_size=128)

if is_chief():
    print(f"test loss {loss_and_metrics[0]:.4f} - test accuracy {loss_and_metrics[1]:.4f}")
    print(f"predictions: {classes.shape}")
