"""Small keras.utils helpers against Keras 3 itself: data tuples, source inputs, Config,
standardize_dtype, clear_session, the image array/file helpers and get_file."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest
import torch

import distkeras
from distkeras import utils
from tests.ops.keras_reference import import_keras


@pytest.fixture(scope="module")
def keras():
    return import_keras()


X, Y, W = np.ones(2), np.zeros(2), np.full(2, 0.5)


def _same(a, b) -> bool:
    """Equal structure, and the very same leaves (pack/unpack never copy)."""
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a is b


@pytest.mark.parametrize(
    "args",
    [(X,), ((X, Y),), ([X],), (X, Y), (X, Y, W), ({"a": X}, Y)],
    ids=["x", "tuple-x", "list-x", "x-y", "x-y-w", "dict-x-y"],
)
def test_pack_and_unpack_match_keras(keras, args):
    ours = utils.pack_x_y_sample_weight(*args)
    assert _same(ours, keras.utils.pack_x_y_sample_weight(*args))
    assert _same(utils.unpack_x_y_sample_weight(ours), keras.utils.unpack_x_y_sample_weight(ours))
    with pytest.raises(ValueError, match="sample_weight"):
        utils.unpack_x_y_sample_weight((X, Y, W, W))


def test_get_source_inputs_and_is_keras_tensor():
    a, b, unused = distkeras.Input((2,)), distkeras.Input((2,)), distkeras.Input((2,))
    merged = distkeras.layers.Add()([distkeras.layers.Dense(2)(a), b])
    out = distkeras.layers.Dense(1)(distkeras.layers.Concatenate()([merged, a]))
    sources = utils.get_source_inputs(out)
    assert len(sources) == 2 and sources[0] is a and sources[1] is b
    assert utils.get_source_inputs(a) == [a]
    assert utils.is_keras_tensor(out) and not utils.is_keras_tensor(torch.ones(1))
    assert unused is not None


@pytest.mark.parametrize(
    "dtype", ["float32", "int8", "bool", int, float, bool, np.float64, torch.int32, "uint8"]
)
def test_standardize_dtype_matches_keras(keras, dtype):
    assert utils.standardize_dtype(dtype) == keras.utils.standardize_dtype(dtype)


def test_config_behaves_like_keras(keras):
    for lib in (utils, keras.utils):
        config = lib.Config(learning_rate=0.1)
        config.seed = 123
        config["momentum"] = 0.9
        assert config.seed == 123 and config["learning_rate"] == 0.1 and "momentum" in config
        assert config.as_dict() == {"learning_rate": 0.1, "seed": 123, "momentum": 0.9}
        assert config.to_json() == '{"learning_rate": 0.1, "seed": 123, "momentum": 0.9}'
        config.freeze()
        with pytest.raises(ValueError, match="frozen"):
            config.foo = 1
        with pytest.raises(AttributeError):
            _ = config.missing


def test_clear_session_restarts_default_names():
    distkeras.layers.Dense(1)
    utils.clear_session()
    assert distkeras.layers.Dense(1).name == "dense"
    assert distkeras.layers.Dense(1).name == "dense_1"


@pytest.mark.parametrize("shape", [(5, 4, 3), (5, 4, 1), (5, 4, 4)])
def test_image_arrays_and_files_match_keras(keras, shape, tmp_path):
    x = np.random.default_rng(0).uniform(0, 300, size=shape).astype("float32")
    ours, theirs = utils.array_to_img(x), keras.utils.array_to_img(x)
    assert ours.mode == theirs.mode
    np.testing.assert_array_equal(utils.img_to_array(ours), keras.utils.img_to_array(theirs))
    np.testing.assert_array_equal(
        utils.img_to_array(ours, data_format="channels_first"),
        keras.utils.img_to_array(theirs, data_format="channels_first"),
    )
    path = tmp_path / "image.png"
    utils.save_img(path, x)
    crop = {"target_size": (2, 2), "keep_aspect_ratio": True, "interpolation": "bilinear"}
    for kwargs in ({}, {"target_size": (3, 2)}, {"color_mode": "grayscale"}, crop):
        np.testing.assert_array_equal(
            utils.img_to_array(utils.load_img(path, **kwargs)),
            keras.utils.img_to_array(keras.utils.load_img(path, **kwargs)),
        )


def test_get_file_fetches_once_checks_the_hash_and_extracts(tmp_path):
    archive = tmp_path / "source" / "data.zip"
    archive.parent.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        handle.writestr("data/values.txt", "1 2 3")
    archive.write_bytes(buffer.getvalue())
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    origin = archive.as_uri()
    path = utils.get_file(origin=origin, file_hash=digest, cache_dir=str(cache))
    assert path == str(cache / "datasets" / "data.zip")
    archive.unlink()  # served from the cache now
    assert utils.get_file(origin=origin, file_hash=digest, cache_dir=str(cache)) == path
    folder = utils.get_file(origin=origin, cache_dir=str(cache), extract=True)
    assert (tmp_path / "cache" / "datasets" / "data" / "data" / "values.txt").read_text() == "1 2 3"
    assert folder.endswith("data")
    with pytest.raises(OSError, match="could not download"):
        utils.get_file(
            "other.zip", origin=(tmp_path / "missing.zip").as_uri(), cache_dir=str(cache)
        )
    assert not (cache / "datasets" / "other.zip").exists()


def test_get_file_refuses_a_download_with_the_wrong_hash(tmp_path):
    source = tmp_path / "weights.bin"
    source.write_bytes(b"abc")
    with pytest.raises(ValueError, match="hash"):
        utils.get_file(origin=source.as_uri(), file_hash="0" * 64, cache_dir=str(tmp_path / "c"))
    assert not (tmp_path / "c" / "datasets" / "weights.bin").exists()


def test_saving_helpers_are_reachable_from_utils():
    assert utils.get_registered_name(distkeras.layers.Dense) == "Dense"
    assert utils.serialize_keras_object(distkeras.layers.Dense(2))["class_name"] == "Dense"
