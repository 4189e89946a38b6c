"""Custom layers written on ``distkeras.ops``, with residual connections written ``x + inputs``.

One process:    python examples/custom_layer_ops.py
Two workers:    distkeras-launch -n 2 examples/custom_layer_ops.py
Quick check:    python examples/custom_layer_ops.py --epochs 1 --samples 256

As in the keras.io guide "Making new layers and models via subclassing", the layers hold their
weights (``add_weight`` in ``build``) and compute with backend-agnostic ops only: ``RMSNorm``
(``ops.mean``, ``ops.rsqrt``) and ``GatedDense`` (``ops.matmul``, ``ops.sigmoid``). A functional
model stacks residual blocks ``x = x + block(x)``: the ``+`` on symbolic tensors is itself an op
node, as are ``ops.concatenate`` and the slice ``features[:, :2]``. The task is a regression on
synthetic data: the target mixes products and sines of the inputs, which a linear model cannot
fit. The model is saved to ``.keras`` and loaded back; the reloaded model predicts the same.
"""

import argparse
import os
import tempfile

import numpy as np

import distkeras
from distkeras import layers, ops
from distkeras.distributed import is_chief
from distkeras.utils import register_keras_serializable, set_random_seed

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--samples", type=int, default=8000, help="examples (80%% for training)")
parser.add_argument("--width", type=int, default=32)
parser.add_argument("--blocks", type=int, default=2)
parser.add_argument("--batch-size", type=int, default=64)
args = parser.parse_args()

set_random_seed(7)


@register_keras_serializable(package="examples")
class RMSNorm(layers.Layer):
    """Scales each feature vector to unit root-mean-square, then by a learned gain."""

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.gain = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gain")

    def call(self, inputs):
        mean_square = ops.mean(ops.square(inputs), axis=-1, keepdims=True)
        return inputs * ops.rsqrt(mean_square + self.epsilon) * self.gain

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@register_keras_serializable(package="examples")
class GatedDense(layers.Layer):
    """``(x W + b) * sigmoid(x V + c)``: a Dense layer whose output a second one gates."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        shape = (input_shape[-1], self.units)
        self.kernel = self.add_weight(shape=shape, initializer="glorot_uniform", name="kernel")
        self.gate = self.add_weight(shape=shape, initializer="glorot_uniform", name="gate")
        self.bias = self.add_weight(shape=(2 * self.units,), initializer="zeros", name="bias")

    def call(self, inputs):
        value_bias, gate_bias = ops.split(self.bias, 2)
        value = ops.matmul(inputs, self.kernel) + value_bias
        return value * ops.sigmoid(ops.matmul(inputs, self.gate) + gate_bias)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def make_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)  # the same data on every worker
    x = rng.uniform(-2, 2, (n, 4)).astype("float32")
    y = np.sin(2 * x[:, 0]) * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + rng.normal(0, 0.05, n)
    return x, y[:, None].astype("float32")


def build_model(width: int, blocks: int) -> distkeras.Model:
    inputs = distkeras.Input((4,), name="features")
    # Op nodes in the graph: a slice, an elementwise op and a concatenation.
    features = ops.concatenate([inputs, ops.sin(inputs[:, :2] * 2.0)], axis=-1)
    x = layers.Dense(width)(features)
    for _ in range(blocks):
        x = x + GatedDense(width)(RMSNorm()(x))  # the residual connection is an op node
    outputs = layers.Dense(1)(RMSNorm()(x))
    return distkeras.Model(inputs, outputs, name="gated_residual_mlp")


x, y = make_data(args.samples)
split = int(0.8 * len(x))
(x_train, y_train), (x_test, y_test) = (x[:split], y[:split]), (x[split:], y[split:])

model = build_model(args.width, args.blocks)
model.compile(optimizer=distkeras.optimizers.Adam(3e-3), loss="mse")
if is_chief():
    model.summary()
model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=2)
mse = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
baseline = float(np.mean((y_test - y_train.mean()) ** 2))  # predicting the mean

# Save and load back: the custom layers by their registered names, the op nodes as Keras does.
# Every worker saves its own copy and predicts (predict is a collective call on all ranks).
predictions = model.predict(x_test, batch_size=512, verbose=0)
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "model.keras")
    model.save(path)
    reloaded = distkeras.models.load_model(path)
    same = np.allclose(reloaded.predict(x_test, batch_size=512, verbose=0), predictions)
if is_chief():
    print(f"test MSE {mse:.4f} - mean-predictor MSE {baseline:.4f} - reloaded same: {same}")
