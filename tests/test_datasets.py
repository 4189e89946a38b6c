"""datasets: mnist.npz lookup and errors, the offline digits, and the fallback between them."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distkeras import datasets
from distkeras.datasets import digits, mnist


@pytest.fixture
def no_home_data(tmp_path, monkeypatch):
    """A HOME with no cached datasets and no DISTKERAS_DATASETS."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DISTKERAS_DATASETS", raising=False)
    return home


def _write_mnist(path, n_train=5, n_test=3, **drop):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key in drop:
        arrays.pop(key)
    np.savez_compressed(path, **arrays)
    return arrays


def _check_same(loaded, arrays):
    (x_train, y_train), (x_test, y_test) = loaded
    for got, key in ((x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test")):
        np.testing.assert_array_equal(got, arrays[key])
        assert got.dtype == np.uint8
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_mnist_from_path(tmp_path, no_home_data):
    arrays = _write_mnist(tmp_path / "my_mnist.npz")
    _check_same(mnist.load_data(path=tmp_path / "my_mnist.npz"), arrays)
    _check_same(mnist.load_data(str(tmp_path / "my_mnist.npz")), arrays)


def test_mnist_from_environment_and_keras_cache(tmp_path, no_home_data, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    arrays = _write_mnist(folder / "mnist.npz")
    monkeypatch.setenv("DISTKERAS_DATASETS", str(folder))
    _check_same(mnist.load_data(), arrays)

    # Without the variable, Keras's cache ~/.keras/datasets/mnist.npz is used.
    monkeypatch.delenv("DISTKERAS_DATASETS")
    cache = no_home_data / ".keras" / "datasets"
    cache.mkdir(parents=True)
    cached = _write_mnist(cache / "mnist.npz", n_train=4)
    _check_same(mnist.load_data(), cached)
    # A relative name is looked up in that cache too, as Keras's path= is.
    _check_same(mnist.load_data("mnist.npz"), cached)


def test_mnist_missing_lists_paths(tmp_path, no_home_data, monkeypatch):
    monkeypatch.setenv("DISTKERAS_DATASETS", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as info:
        mnist.load_data()
    message = str(info.value)
    for where in mnist.candidate_paths():
        assert str(where) in message
    assert str(tmp_path / "nowhere" / "mnist.npz") in message
    assert str(no_home_data / ".keras" / "datasets" / "mnist.npz") in message
    assert "digits" in message  # says what to use offline
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        mnist.load_data(path=tmp_path / "absent.npz")


def test_mnist_bad_files(tmp_path, no_home_data):
    _write_mnist(tmp_path / "partial.npz", y_test=True)
    with pytest.raises(ValueError, match="y_test") as info:
        mnist.load_data(path=tmp_path / "partial.npz")
    assert "partial.npz" in str(info.value)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="junk.npz"):
        mnist.load_data(path=tmp_path / "junk.npz")


def test_digits_shapes_dtypes_and_split():
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    assert x_train.shape == (1438, 28, 28) and x_test.shape == (359, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert y_train.shape == (1438,) and y_test.shape == (359,)
    assert x_train.max() == 255 and x_train.min() == 0
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))
    # The one-pixel padding keeps strokes off the border, as MNIST's centred digits.
    assert x_train[:, 0, :].max() == 0 and x_train[:, :, -1].max() == 0

    (s_train, sy_train), (s_test, _) = digits.load_data(upscale=False)
    assert s_train.shape == (1438, 8, 8) and s_test.shape == (359, 8, 8)
    assert s_train.dtype == np.uint8 and s_train.max() == 16
    np.testing.assert_array_equal(sy_train, y_train)  # same seeded order either way

    # Deterministic: the same seed gives the same split, another seed another one.
    (again, _), _ = digits.load_data(upscale=False)
    np.testing.assert_array_equal(again, s_train)
    (other, _), (other_test, _) = digits.load_data(upscale=False, seed=1)
    assert not np.array_equal(other, s_train)
    # A split is a partition of all 1,797 scans.
    assert len(other) + len(other_test) == 1797
    (_, _), (small_test, _) = digits.load_data(upscale=False, test_split=0.1)
    assert len(small_test) == 180

    # The upscaling is align-corners bilinear of the padded scan, scaled to 0..255.
    padded = np.pad(s_train[:20].astype("float64"), ((0, 0), (1, 1), (1, 1)))
    ref = F.interpolate(
        torch.tensor(padded)[:, None], size=(28, 28), mode="bilinear", align_corners=True
    )[:, 0].numpy()
    ref = np.clip(ref * 255 / 16, 0, 255)
    assert np.abs(x_train[:20].astype("float64") - ref).max() <= 0.5 + 1e-6


def test_digits_errors():
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match=f"test_split={bad}"):
            digits.load_data(test_split=bad)


def test_load_mnist_or_digits(tmp_path, no_home_data, monkeypatch, capsys):
    (x_train, _), _ = datasets.load_mnist_or_digits()
    assert x_train.shape == (1438, 28, 28)
    assert "digit" in capsys.readouterr().out
    datasets.load_mnist_or_digits(verbose=False)
    assert capsys.readouterr().out == ""

    arrays = _write_mnist(tmp_path / "mnist.npz")
    monkeypatch.setenv("DISTKERAS_DATASETS", str(tmp_path))
    _check_same(datasets.load_mnist_or_digits(), arrays)
