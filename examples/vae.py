"""A variational autoencoder trained on add_loss alone, with a sampling layer on distkeras.random.

One process:    python examples/vae.py
Two workers:    distkeras-launch -n 2 examples/vae.py
Quick check:    python examples/vae.py --epochs 1 --samples 256

The keras.io VAE, on scikit-learn's 8x8 digit scans, written with losses the layers add: the
encoder's ``KLDivergenceLayer`` adds the KL term, the ``Reconstruction`` endpoint adds the
binary cross-entropy, and ``compile(optimizer=...)`` gets no loss at all. ``Sampling`` draws
``epsilon`` with ``distkeras.random.normal`` and a ``SeedGenerator``: in fit each sample gets
its own draw whichever worker holds it, so two workers train the same model as one process.
"""

import argparse

import distkeras as keras
from distkeras import layers, ops
from distkeras.datasets import digits
from distkeras.distributed import is_chief

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--samples", type=int, default=0, help="training images (0: all 1438)")
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--latent-dim", type=int, default=2)
args = parser.parse_args()

keras.utils.set_random_seed(5)


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class KLDivergenceLayer(layers.Layer):
    """Adds the KL divergence of N(z_mean, exp(z_log_var)) from N(0, 1) to the model's loss."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        kl = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
        self.add_loss(ops.mean(ops.sum(kl, axis=1)))
        return inputs


class Reconstruction(layers.Layer):
    """An endpoint: adds the reconstruction loss (summed over pixels) and passes it through."""

    def call(self, inputs):
        images, rebuilt = inputs
        per_pixel = keras.losses.binary_crossentropy(
            ops.expand_dims(images, -1), ops.expand_dims(rebuilt, -1)
        )
        self.add_loss(ops.mean(ops.sum(per_pixel, axis=1)))
        return rebuilt


images = keras.Input(shape=(64,))
hidden = layers.Dense(32, activation="relu")(images)
z_mean = layers.Dense(args.latent_dim, name="z_mean")(hidden)
z_log_var = layers.Dense(args.latent_dim, name="z_log_var")(hidden)
z_mean, z_log_var = KLDivergenceLayer()([z_mean, z_log_var])
z = Sampling()([z_mean, z_log_var])
encoder = keras.Model(images, [z_mean, z_log_var, z], name="encoder")

latent = keras.Input(shape=(args.latent_dim,))
decoded = layers.Dense(32, activation="relu")(latent)
decoded = layers.Dense(64, activation="sigmoid")(decoded)
decoder = keras.Model(latent, decoded, name="decoder")

outputs = Reconstruction()([images, decoder(encoder(images)[2])])
vae = keras.Model(images, outputs, name="vae")
vae.compile(optimizer=keras.optimizers.Adam(learning_rate=0.003))

(x_train, _), (x_test, _) = digits.load_data(upscale=False)
x_train = x_train.reshape(len(x_train), 64).astype("float32") / 16.0
x_test = x_test.reshape(len(x_test), 64).astype("float32") / 16.0
if args.samples:
    x_train = x_train[: args.samples]
history = vae.fit(x_train, epochs=args.epochs, batch_size=args.batch_size, shuffle=False,
                  verbose=2 if is_chief() else 0)  # fmt: skip
codes = encoder.predict(x_test, verbose=0)[0]
if is_chief():
    print(f"test codes: {codes.shape}")
    print(f"final loss {history.history['loss'][-1]:.5f}")
