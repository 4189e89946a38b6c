"""One MLP trained three ways (plain, Dropout, L2) to show overfitting and its remedies.

One process:    python examples/regularization.py
Two workers:    distkeras-launch -n 2 examples/regularization.py
Quick check:    python examples/regularization.py --epochs 1 --samples 256
Curves:         tensorboard --logdir logs/regularization

The data are scikit-learn's digit scans upscaled to 28x28 (distkeras.datasets.digits), and
only ``--samples`` of them are used for training, so a 784-512-512-10 network can memorise
them. Each variant logs to ``logs/regularization/<variant>/{train,validation}``: in
TensorBoard, the gap between the train and validation curves of ``epoch_crossentropy`` is the
overfitting. (``epoch_loss`` of the L2 variant includes the weight penalty, and the train
curves of the Dropout variant are measured with dropout on, as in Keras.) At the end the
script evaluates each model on its training and validation data and prints the gaps: Dropout
and L2 narrow the crossentropy gap; on data this small and this easy, accuracy barely moves.
"""

import argparse
import os
import shutil

from distkeras import layers, optimizers, regularizers
from distkeras.callbacks import TensorBoard
from distkeras.datasets import digits
from distkeras.distributed import is_chief
from distkeras.models import Sequential
from distkeras.utils import set_random_seed

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=100)
parser.add_argument("--samples", type=int, default=200, help="training images (of 1438)")
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--log-dir", default=os.path.join("logs", "regularization"))
args = parser.parse_args()

(x_train, y_train), (x_val, y_val) = digits.load_data(upscale=True)
x_train = x_train[: args.samples].reshape(-1, 784).astype("float32") / 255.0
y_train = y_train[: args.samples]
x_val = x_val.reshape(-1, 784).astype("float32") / 255.0


def build(variant: str, total_steps: int) -> Sequential:
    """The same 784-512-512-10 MLP, plain or with Dropout or with an L2 weight penalty."""
    penalty = regularizers.l2(3e-3) if variant == "l2" else None
    model = Sequential([layers.Input(shape=(784,))])
    for _ in range(2):
        model.add(layers.Dense(512, activation="relu", kernel_regularizer=penalty))
        if variant == "dropout":
            model.add(layers.Dropout(0.5))
    model.add(layers.Dense(10, activation="softmax"))
    # SGD with momentum: with it an L2 penalty acts as weight decay (Adam's per-weight scaling
    # would blunt it). The cosine decay lets every variant settle, so that the final numbers
    # are not those of one noisy step.
    schedule = optimizers.schedules.CosineDecay(0.02, decay_steps=total_steps)
    model.compile(
        optimizer=optimizers.SGD(learning_rate=schedule, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        # The loss without the L2 penalty, comparable across variants.
        metrics=["accuracy", "crossentropy"],
    )
    return model


steps_per_epoch = -(-len(x_train) // args.batch_size)
gaps = {}
for variant in ("plain", "dropout", "l2"):
    set_random_seed(42)  # the same initial weights and batch order for every variant
    log_dir = os.path.join(args.log_dir, variant)
    if is_chief():
        shutil.rmtree(log_dir, ignore_errors=True)  # fresh curves on every run
        print(f"--- {variant}")
    model = build(variant, args.epochs * steps_per_epoch)
    model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(x_val, y_val),
        callbacks=[TensorBoard(log_dir=log_dir)],
        verbose=2 if args.epochs <= 10 else 0,
    )
    # Evaluate both sets in inference mode (no dropout), without the penalty in the metric.
    train = model.evaluate(x_train, y_train, batch_size=256, verbose=0, return_dict=True)
    val = model.evaluate(x_val, y_val, batch_size=256, verbose=0, return_dict=True)
    gaps[variant] = (train, val)

if is_chief():
    print(
        f"{'variant':<8} {'train acc':>9} {'val acc':>8} {'acc gap':>8} "
        f"{'train xent':>10} {'val xent':>9} {'xent gap':>9}"
    )
    for variant, (train, val) in gaps.items():
        print(
            f"{variant:<8} {train['accuracy']:>9.4f} {val['accuracy']:>8.4f} "
            f"{train['accuracy'] - val['accuracy']:>8.4f} {train['crossentropy']:>10.4f} "
            f"{val['crossentropy']:>9.4f} {val['crossentropy'] - train['crossentropy']:>9.4f}"
        )
    print(f"curves: tensorboard --logdir {args.log_dir}")
