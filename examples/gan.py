"""A GAN with two optimizers: overriding train_step to alternate discriminator and generator.

One process:    python examples/gan.py
Two workers:    distkeras-launch -n 2 examples/gan.py
Quick check:    python examples/gan.py --epochs 1 --samples 256

The keras.io guide's GAN (its torch version), on scikit-learn's 8x8 digit scans. ``compile``
takes two optimizers and a loss function; ``train_step`` draws latent points with
``distkeras.random.normal`` and a ``SeedGenerator``, trains the discriminator on real and
generated images, then the generator through the discriminator, each with its own optimizer,
and reports both losses through ``Mean`` trackers listed by the ``metrics`` property. On two
workers every sample gets the same latent point and label noise whichever worker holds it,
and the summed gradients make the run match the one-process run.
"""

import argparse

import torch

import distkeras as keras
from distkeras import layers
from distkeras.datasets import digits
from distkeras.distributed import is_chief

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--samples", type=int, default=0, help="training images (0: all 1438)")
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--latent-dim", type=int, default=16)
args = parser.parse_args()

keras.utils.set_random_seed(3)

discriminator = keras.Sequential(
    [
        keras.Input(shape=(64,)),
        layers.Dense(64),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Dense(1),
    ],
    name="discriminator",
)
generator = keras.Sequential(
    [
        keras.Input(shape=(args.latent_dim,)),
        layers.Dense(64),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Dense(64, activation="sigmoid"),
    ],
    name="generator",
)


class GAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.seed_generator = keras.random.SeedGenerator(1337)
        self.built = True

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        # The generator's optimizer is also the model's: fit counts steps on it.
        super().compile(optimizer=g_optimizer)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    def train_step(self, real_images):
        batch_size = real_images.shape[0]
        latent = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        generated_images = self.generator(latent)
        combined_images = torch.concat([generated_images, real_images], dim=0)
        # Fake images are labelled 1, real ones 0, with a little noise on the labels.
        noise_fake = keras.random.uniform((batch_size, 1), seed=self.seed_generator)
        noise_real = keras.random.uniform((batch_size, 1), seed=self.seed_generator)
        labels = torch.concat([1.0 + 0.05 * noise_fake, 0.05 * noise_real], dim=0)

        # Train the discriminator.
        self.zero_grad()
        predictions = self.discriminator(combined_images)
        d_loss = self.loss_fn(labels, predictions)
        d_loss.backward()
        grads = [v.value.grad for v in self.discriminator.trainable_weights]
        with torch.no_grad():
            self.d_optimizer.apply(grads, self.discriminator.trainable_weights)

        # Train the generator (the discriminator's weights are not updated here).
        latent = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        misleading_labels = torch.zeros((batch_size, 1), device=real_images.device)
        self.zero_grad()
        predictions = self.discriminator(self.generator(latent))
        g_loss = self.loss_fn(misleading_labels, predictions)
        g_loss.backward()
        grads = [v.value.grad for v in self.generator.trainable_weights]
        with torch.no_grad():
            self.g_optimizer.apply(grads, self.generator.trainable_weights)

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}


(x_train, _), _ = digits.load_data(upscale=False)
x_train = x_train.reshape(len(x_train), 64).astype("float32") / 16.0
if args.samples:
    x_train = x_train[: args.samples]

gan = GAN(discriminator, generator, args.latent_dim)
gan.compile(
    d_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
    g_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
    loss_fn=keras.losses.BinaryCrossentropy(from_logits=True),
)
history = gan.fit(x_train, batch_size=args.batch_size, epochs=args.epochs, shuffle=False,
                  verbose=2 if is_chief() else 0)  # fmt: skip
samples = generator.predict(keras.random.normal((4, args.latent_dim), seed=5), verbose=0)
d_loss, g_loss = history.history["d_loss"][-1], history.history["g_loss"][-1]
if is_chief():
    print(f"generated images: {samples.shape}, pixels {samples.min():.3f}..{samples.max():.3f}")
    print(f"d_loss {d_loss:.5f} - g_loss {g_loss:.5f}")
