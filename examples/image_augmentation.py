"""Image classification with data augmentation, in the style of keras.io's "Image
classification from scratch": augmentation layers and a Normalization layer inside the model.

One process:    python examples/image_augmentation.py
Two workers:    distkeras-launch -n 2 examples/image_augmentation.py
Quick check:    python examples/image_augmentation.py --epochs 1 --samples 256

The data are scikit-learn's 8x8 digit scans (distkeras.datasets.digits), upscaled to 16x16.
``data_augmentation`` (RandomRotation, RandomZoom, RandomTranslation, RandomContrast) runs
only while training: ``evaluate`` and ``predict`` see the images as they are. Each training
image's rotation, zoom, shift and contrast are a function of (seed, layer, step, image index)
alone, so two workers augment every image as one process does and print the same numbers.
``Normalization().adapt(x_train)`` learns the pixel mean and variance before training.
"""

import argparse

import numpy as np

from distkeras import Input, Model, layers
from distkeras.datasets import digits
from distkeras.distributed import is_chief
from distkeras.utils import set_random_seed

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--samples", type=int, default=0, help="training samples (0: all)")
parser.add_argument("--batch-size", type=int, default=64)
args = parser.parse_args()
set_random_seed(1337)

(x_train, y_train), (x_test, y_test) = digits.load_data(upscale=False)
x_train = x_train.astype("float32")[..., None]  # (n, 8, 8, 1), pixel values 0..16
x_test = x_test.astype("float32")[..., None]
if args.samples:
    x_train, y_train = x_train[: args.samples], y_train[: args.samples]

# Digits must not be flipped (a mirrored 2 is no 2): small rotations, zooms and shifts only.
data_augmentation = [
    layers.RandomRotation(0.05, fill_mode="constant"),
    layers.RandomZoom(0.1, fill_mode="constant"),
    layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
    layers.RandomContrast(0.2, value_range=(0, 16)),
]

normalization = layers.Normalization()
normalization.adapt(x_train)


def make_model(input_shape, num_classes: int) -> Model:
    inputs = Input(shape=input_shape)
    x = layers.Resizing(16, 16)(inputs)
    for layer in data_augmentation:
        x = layer(x)
    x = normalization(x)
    for filters in (32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return Model(inputs, outputs)


model = make_model(input_shape=(8, 8, 1), num_classes=10)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
          verbose=2 if is_chief() else 0)  # fmt: skip
loss, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
first = model.predict(x_test[:1], verbose=0)
if is_chief():
    print(f"first test image: predicted {int(np.argmax(first))}, label {int(y_test[0])}")
    print(f"test loss {loss:.5f} - test accuracy {accuracy:.5f}")
