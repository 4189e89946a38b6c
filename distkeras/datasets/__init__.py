"""Datasets, mirroring ``keras.datasets``: MNIST from a local file, and digit scans offline."""

from distkeras.datasets import digits, mnist


def load_mnist_or_digits(verbose: bool = True):
    """MNIST when ``mnist.npz`` is available, else the upscaled digits (and says so)."""
    try:
        return mnist.load_data()
    except FileNotFoundError:
        if verbose:
            print("mnist.npz not found; using scikit-learn's digit scans upscaled to 28x28.")
        return digits.load_data(upscale=True)


__all__ = ["mnist", "digits", "load_mnist_or_digits"]
