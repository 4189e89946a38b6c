"""Every op of ``keras.ops.image`` against Keras 3 (torch backend) on the same inputs."""

import copy
import inspect

import numpy as np
import pytest
import torch

from tests.ops.cases_image import CASES, IMGS, f32
from tests.ops.keras_reference import assert_same, import_keras, keras_op, our_op


def _call(op, case):
    # Fresh copies: Keras's affine_transform writes into its (numpy-shared) transform.
    if case.name == "elastic_transform":
        torch.manual_seed(2024)  # both draw their displacement fields from the global RNG
    return op(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_keras(case):
    theirs = _call(keras_op(case), case)
    ours = _call(our_op(case), case)
    assert_same(ours, theirs, atol=case.atol)


def _keras_image_names():
    keras = import_keras()
    return sorted(n for n in dir(keras.ops.image) if not n.startswith("_"))


def test_every_name_has_a_case_and_is_exported():
    import distkeras.ops
    import distkeras.ops.image

    names = _keras_image_names()
    assert len(names) == 16
    assert set(names) <= {case.name for case in CASES}
    for name in names:
        op = getattr(distkeras.ops.image, name)
        assert (op.op_module, op.op_name) == ("image", name)
        assert not hasattr(distkeras.ops, name) or getattr(distkeras.ops, name) is op
        theirs = inspect.signature(getattr(import_keras().ops.image, name))
        assert str(inspect.signature(op)) == str(theirs), name


def test_elastic_transform_seed_is_reproducible():
    import distkeras.ops

    first = distkeras.ops.image.elastic_transform(IMGS, seed=3)
    again = distkeras.ops.image.elastic_transform(IMGS, seed=3)
    other = distkeras.ops.image.elastic_transform(IMGS, seed=4)
    assert_same(first, again, atol=0)
    assert not torch.allclose(first, other)
    # A SeedGenerator advances between calls, and replays from the same seed.
    import distkeras

    gen = distkeras.random.SeedGenerator(7)
    first, second = (distkeras.ops.image.elastic_transform(IMGS, seed=gen) for _ in range(2))
    replay = distkeras.ops.image.elastic_transform(IMGS, seed=distkeras.random.SeedGenerator(7))
    assert_same(replay, first, atol=0)
    assert not torch.allclose(first, second)
    # alpha=0 displaces nothing: the image comes back unchanged.
    assert_same(distkeras.ops.image.elastic_transform(IMGS, alpha=0.0, seed=3), IMGS)


def test_gaussian_blur_default_data_format_is_channels_last():
    # Keras's torch backend reads data_format=None as channels_first here (it skips the
    # standardization); like every other image op we read it as the global channels_last.
    import distkeras.ops

    ours = distkeras.ops.image.gaussian_blur(IMGS)
    assert_same(ours, distkeras.ops.image.gaussian_blur(IMGS, data_format="channels_last"))


def test_affine_transform_projective_terms():
    # Keras's torch backend drops the projective terms c0, c1 of a transform; we divide by
    # k = c0 x + c1 y + 1 as the transform's definition (and TensorFlow) does.
    import distkeras.ops

    x = f32(1, 6, 7, 1)
    transform = np.array([1, 0, 0.5, 0, 1, 0.25, 0.02, 0.01], "float32")
    ours = distkeras.ops.image.affine_transform(x, transform, interpolation="nearest")
    ys, xs = np.mgrid[0:6, 0:7].astype("float32")
    k = 0.02 * xs + 0.01 * ys + 1
    src_x, src_y = np.round((xs + 0.5) / k), np.round((ys + 0.25) / k)
    inside = (src_x < 7) & (src_y < 6)
    want = np.where(
        inside, x[0, np.clip(src_y, 0, 5).astype(int), np.clip(src_x, 0, 6).astype(int), 0], 0
    )
    assert_same(ours[0, ..., 0], want)


def test_unsupported_arguments_raise():
    import distkeras.ops

    with pytest.raises(NotImplementedError, match="lanczos3"):
        distkeras.ops.image.resize(IMGS, (4, 4), interpolation="lanczos3")
    with pytest.raises(NotImplementedError, match="order"):
        distkeras.ops.image.map_coordinates(f32(3, 3), np.zeros((2, 4)), 3)
    with pytest.raises(ValueError, match="fill_mode"):
        distkeras.ops.image.affine_transform(IMGS, np.zeros(8, "float32"), fill_mode="edge")


def test_affine_transform_broadcasts_one_transform():
    # Keras's torch backend fails on one transform for a batch; we apply it to every image.
    import distkeras.ops
    from tests.ops.cases_image import ROTATE

    keras = import_keras()
    ours = distkeras.ops.image.affine_transform(IMGS, ROTATE)
    theirs = keras.ops.image.affine_transform(IMGS.copy(), np.stack([ROTATE, ROTATE]))
    assert_same(ours, theirs)


def _blur_reference(images, size_x, size_y, sigma_x, sigma_y):
    """Zero-padded "same" correlation of NHWC images with the separable Gaussian, by loops."""

    def taps(size, sigma):
        t = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
        return t / t.sum()

    kernel = np.outer(taps(size_y, sigma_y), taps(size_x, sigma_x))
    n, h, w, c = images.shape
    top, left = (size_y - 1) // 2, (size_x - 1) // 2
    padded = np.zeros((n, h + size_y - 1, w + size_x - 1, c), images.dtype)
    padded[:, top : top + h, left : left + w] = images
    out = np.zeros_like(images)
    for i in range(h):
        for j in range(w):
            window = padded[:, i : i + size_y, j : j + size_x]
            out[:, i, j] = np.einsum("nyxc,yx->nc", window, kernel)
    return out


@pytest.mark.parametrize("kernel_size,sigma", [((5, 3), (2.0, 0.7)), ((4, 4), (1.0, 1.0))])
def test_gaussian_blur_rectangular_and_even_kernels(kernel_size, sigma):
    # Keras's torch backend mis-shapes non-square kernels and grows the image by one for even
    # ones; we follow its JAX backend: (x, y) pairs and "same" zero padding.
    import distkeras.ops

    ours = distkeras.ops.image.gaussian_blur(IMGS, kernel_size, sigma, "channels_last")
    assert_same(ours, _blur_reference(IMGS, *kernel_size, *sigma))
