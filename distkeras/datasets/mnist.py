"""MNIST from the standard ``mnist.npz`` (x_train, y_train, x_test, y_test).

Nothing is downloaded: the file is looked up at the given path, then ``$DISTKERAS_DATASETS``,
then ``~/.keras/datasets/mnist.npz`` (where Keras caches it) and ``~/.distkeras/datasets``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


def candidate_paths(path: str | os.PathLike | None = None) -> list[Path]:
    """Where ``load_data`` looks, in order."""
    candidates = []
    if path is not None:
        candidates.append(Path(path).expanduser())
        if not Path(path).is_absolute():
            candidates.append(Path.home() / ".keras" / "datasets" / path)
    else:
        env = os.environ.get("DISTKERAS_DATASETS")
        if env:
            candidates.append(Path(env) / "mnist.npz")
        candidates.append(Path.home() / ".keras" / "datasets" / "mnist.npz")
        candidates.append(Path.home() / ".distkeras" / "datasets" / "mnist.npz")
    return candidates


def load_data(path: str | os.PathLike | None = None):
    """Returns ``(x_train, y_train), (x_test, y_test)`` as uint8 images and labels.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = distkeras.datasets.mnist.load_data()
    """
    tried = candidate_paths(path)
    for candidate in tried:
        if candidate.is_file():
            return _read(candidate)
    where = "\n  ".join(str(p) for p in tried)
    raise FileNotFoundError(
        "mnist.npz was not found. Looked in:\n  "
        f"{where}\n"
        f"Download it once from {_URL} and place it at one of these paths (or pass "
        "path=...); distkeras never downloads at run time. "
        "distkeras.datasets.digits.load_data(upscale=True) gives real digit scans offline."
    )


def _read(path: Path):
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = [data[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    except KeyError as err:
        raise ValueError(
            f"{path} is not a standard mnist.npz: missing array {err}. Expected "
            "x_train, y_train, x_test, y_test."
        ) from err
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} could not be read as an .npz file: {err}") from err
    x_train, y_train, x_test, y_test = arrays
    return (x_train, y_train), (x_test, y_test)
