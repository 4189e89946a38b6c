"""Transfer learning and fine-tuning with an application (ResNet50V2), as in keras.io's guide.

One process:    python examples/transfer_learning.py
Two workers:    distkeras-launch -n 2 examples/transfer_learning.py
Quick check:    python examples/transfer_learning.py --epochs 1 --samples 256

The guide's recipe, on scikit-learn's digits (8x8 scans upsampled to 32x32, the model's
minimum input size, and scaled to [-1, 1] with ``resnet_v2.preprocess_input``):

1. Build the base without its classifier (``include_top=False``) and freeze it
   (``base.trainable = False``). In real use the base comes with ``weights="imagenet"`` (read
   from Keras's cache folder) or a weights file; nothing is downloaded here, so it is
   ``weights=None``: random, but ResNet's identity shortcuts carry the image through, so the
   frozen base still gives features a classifier can use.
2. Put a new head on it: global average pooling, dropout, a 10-way Dense. Call the base with
   ``training=False``, so its BatchNormalization layers keep their statistics, even later,
   when the base is unfrozen (updating them on a small dataset would wreck what was learnt).
3. Train the head only; then unfreeze the top of the base (its last residual block) and
   fine-tune with a low learning rate. Recompile after changing ``trainable``: compile fixes
   which weights train.
"""

import argparse

import numpy as np

from distkeras import Input, Model, layers, optimizers
from distkeras.applications import ResNet50V2, resnet_v2
from distkeras.datasets import digits
from distkeras.distributed import is_chief
from distkeras.utils import set_random_seed

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=3, help="epochs of each phase")
parser.add_argument("--samples", type=int, default=600, help="digits used (of 1,797)")
parser.add_argument("--batch-size", type=int, default=32)
args = parser.parse_args()

set_random_seed(42)
SIZE = 32  # ResNet's minimum input size
(x_train, y_train), (x_test, y_test) = digits.load_data(upscale=False)
n_train = int(0.8 * args.samples)
x_train, y_train = x_train[:n_train], y_train[:n_train]
x_test, y_test = x_test[: args.samples - n_train], y_test[: args.samples - n_train]


def to_images(x: np.ndarray) -> np.ndarray:
    """8x8 scans (0-16) as 32x32 RGB pixels (0-255), scaled as ResNet50V2 expects."""
    x = np.kron(x.astype("float32") * (255.0 / 16.0), np.ones((SIZE // 8, SIZE // 8), "float32"))
    return resnet_v2.preprocess_input(np.repeat(x[..., None], 3, axis=-1))


x_train, x_test = to_images(x_train), to_images(x_test)

# 1. The base, without its classifier, frozen.
base = ResNet50V2(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
base.trainable = False

# 2. A new head.
inputs = Input((SIZE, SIZE, 3))
x = base(inputs, training=False)  # BatchNormalization stays in inference mode
x = layers.GlobalAveragePooling2D()(x)
x = layers.Dropout(0.2)(x)
outputs = layers.Dense(10, activation="softmax")(x)
model = Model(inputs, outputs)


def train(learning_rate: float) -> float:
    """Compiles (which fixes the trainable weights), fits, returns the test accuracy."""
    model.compile(
        optimizer=optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        verbose=2 if is_chief() else 0,
    )
    return model.evaluate(x_test, y_test, verbose=0)[1]


# 3a. Train the head on the frozen base's features.
frozen_accuracy = train(1e-3)
head_weights = len(model.trainable_weights)

# 3b. Fine-tune: unfreeze the base's last block and train it slowly, with the head.
base.trainable = True
for layer in base.layers:
    if not layer.name.startswith(("conv5_block3", "post_")):
        layer.trainable = False
tuned_accuracy = train(1e-4)
if is_chief():
    print(f"trainable weights: {head_weights} (head), {len(model.trainable_weights)} (fine-tuning)")
    print(f"test accuracy {frozen_accuracy:.4f} (frozen base) - {tuned_accuracy:.4f} (fine-tuned)")
