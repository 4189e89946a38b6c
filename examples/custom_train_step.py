"""Customizing what happens in fit(): a model with its own train_step and test_step.

One process:    python examples/custom_train_step.py
Two workers:    distkeras-launch -n 2 examples/custom_train_step.py
Quick check:    python examples/custom_train_step.py --epochs 1 --samples 256

The keras.io guide "Customizing what happens in fit() with PyTorch", on scikit-learn's digit
scans: ``CustomModel(inputs, outputs)`` is a functional model whose ``train_step`` runs the
forward pass, ``compute_loss``, ``loss.backward()`` and ``optimizer.apply`` itself, and whose
``test_step`` reports what it likes. ``fit``, ``evaluate``, callbacks and the progress bar all
work as usual. On several workers the same code trains the global-batch model: the gradients
``backward()`` produces are summed over workers before ``optimizer.apply`` reads them, and the
logged metrics are global.
"""

import argparse

import numpy as np
import torch

import distkeras as keras
from distkeras import layers
from distkeras.datasets import digits
from distkeras.distributed import is_chief

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--samples", type=int, default=0, help="training images (0: all 1438)")
parser.add_argument("--batch-size", type=int, default=64)
args = parser.parse_args()

keras.utils.set_random_seed(7)


class CustomModel(keras.Model):
    def train_step(self, data):
        x, y = data
        # Clear the gradients the previous step left (torch.nn.Module.zero_grad).
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        trainable_weights = [v for v in self.trainable_weights]
        gradients = [v.value.grad for v in trainable_weights]
        with torch.no_grad():
            self.optimizer.apply(gradients, trainable_weights)
        # The loss tracker and the compiled metrics are both in self.metrics.
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        for metric in self.metrics:
            if metric.name == "loss":
                # Weighted by the batch size, as the built-in test_step: the mean over all
                # samples, also when the last batch splits unevenly between workers.
                metric.update_state(loss, sample_weight=x.shape[0])
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


(x_train, y_train), (x_test, y_test) = digits.load_data(upscale=False)
x_train = x_train.reshape(len(x_train), 64).astype("float32") / 16.0
x_test = x_test.reshape(len(x_test), 64).astype("float32") / 16.0
if args.samples:
    x_train, y_train = x_train[: args.samples], y_train[: args.samples]

inputs = keras.Input(shape=(64,))
hidden = layers.Dense(64, activation="relu")(inputs)
outputs = layers.Dense(10, activation="softmax")(hidden)
model = CustomModel(inputs, outputs)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, shuffle=False,
          verbose=2 if is_chief() else 0)  # fmt: skip
loss, accuracy = model.evaluate(x_test, y_test, batch_size=128, verbose=0)
first = model.predict(x_test[:1], verbose=0)
if is_chief():
    print(f"first test image: predicted {int(np.argmax(first))}, label {int(y_test[0])}")
    print(f"test loss {loss:.5f} - test accuracy {accuracy:.5f}")
