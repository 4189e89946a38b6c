"""Knowledge distillation: overriding compute_loss to train a student on a teacher's outputs.

One process:    python examples/distillation.py
Two workers:    distkeras-launch -n 2 examples/distillation.py
Quick check:    python examples/distillation.py --epochs 1 --samples 256

The keras.io example "Knowledge Distillation", on scikit-learn's digit scans. A larger teacher
is trained first; a ``Distiller`` model then trains a small student with the built-in
``train_step`` and its own ``compute_loss``: the student's loss on the labels plus the KL
divergence between temperature-softened teacher and student predictions. ``compile`` takes
the extra arguments the override needs; metrics are the compiled ones.
"""

import argparse

import distkeras as keras
from distkeras import layers, ops
from distkeras.datasets import digits
from distkeras.distributed import is_chief

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--samples", type=int, default=0, help="training images (0: all 1438)")
parser.add_argument("--batch-size", type=int, default=64)
args = parser.parse_args()

keras.utils.set_random_seed(11)


class Distiller(keras.Model):
    def __init__(self, student, teacher):
        super().__init__()
        self.teacher = teacher
        self.student = student

    def compile(self, optimizer, metrics, student_loss_fn, distillation_loss_fn, alpha=0.1,
                temperature=3):  # fmt: skip
        super().compile(optimizer=optimizer, metrics=metrics)
        self.student_loss_fn = student_loss_fn
        self.distillation_loss_fn = distillation_loss_fn
        self.alpha = alpha
        self.temperature = temperature

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, allow_empty=False):
        teacher_pred = self.teacher(x, training=False)
        student_loss = self.student_loss_fn(y, y_pred)
        distillation_loss = self.distillation_loss_fn(
            ops.softmax(teacher_pred / self.temperature, axis=1),
            ops.softmax(y_pred / self.temperature, axis=1),
        ) * (self.temperature**2)
        return self.alpha * student_loss + (1 - self.alpha) * distillation_loss

    def call(self, x):
        return self.student(x)


def mlp(units, name):
    return keras.Sequential(
        [keras.Input((64,)), layers.Dense(units, activation="relu"), layers.Dense(10)], name=name
    )


(x_train, y_train), (x_test, y_test) = digits.load_data(upscale=False)
x_train = x_train.reshape(len(x_train), 64).astype("float32") / 16.0
x_test = x_test.reshape(len(x_test), 64).astype("float32") / 16.0
if args.samples:
    x_train, y_train = x_train[: args.samples], y_train[: args.samples]
verbose = 2 if is_chief() else 0

teacher = mlp(128, "teacher")
teacher.compile(optimizer="adam", metrics=["sparse_categorical_accuracy"],
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))  # fmt: skip
teacher.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0)

distiller = Distiller(student=mlp(16, "student"), teacher=teacher)
distiller.compile(
    optimizer=keras.optimizers.Adam(),
    metrics=[keras.metrics.SparseCategoricalAccuracy()],
    student_loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    distillation_loss_fn=keras.losses.KLDivergence(),
    alpha=0.1,
    temperature=10,
)
distiller.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=verbose)
teacher_acc = teacher.evaluate(x_test, y_test, verbose=0)[1]
student_acc = distiller.evaluate(x_test, y_test, verbose=0, return_dict=True)
if is_chief():
    print(f"teacher test accuracy {teacher_acc:.5f} - student test accuracy "
          f"{student_acc['sparse_categorical_accuracy']:.5f}")  # fmt: skip
