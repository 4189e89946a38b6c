"""``distkeras.random``: Keras 3's random functions and ``SeedGenerator``, on torch."""
