"""image_dataset_from_directory and text_dataset_from_directory on folders made here: Keras's
file order, labels, splits and batch layout (Keras's own need TensorFlow, so the reference is
the documented indexing: sorted class folders, sorted files, a seeded shuffle)."""

from __future__ import annotations

import numpy as np
import pytest

import distkeras
from distkeras import utils


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for label, name in enumerate(["cats", "dogs", "owls"]):
        (root / name / "sub").mkdir(parents=True)
        for i in range(4 + label):
            folder = root / name / ("sub" if i == 0 else "")
            value = 40 * label + i  # each image is one grey level that identifies it
            pixels = np.full((6 + i, 5, 3), value, dtype="float32") + rng.integers(0, 1, (1,))
            utils.save_img(folder / f"img{i}.png", pixels, scale=False)
    (root / "dogs" / "notes.txt").write_text("not an image")
    return root


def _expected_order(root):
    paths = []
    for name in ["cats", "dogs", "owls"]:
        found = sorted(
            (p for p in (root / name).rglob("*.png")), key=lambda p: (str(p.parent), p.name)
        )
        paths += [str(p) for p in found]
    return paths


def test_files_labels_and_class_names_in_keras_order(image_folder):
    dataset = utils.image_dataset_from_directory(
        image_folder, image_size=(4, 4), batch_size=5, shuffle=False, verbose=False
    )
    assert dataset.class_names == ["cats", "dogs", "owls"]
    assert dataset.file_paths == _expected_order(image_folder)
    batches = [dataset[i] for i in range(len(dataset))]
    assert [len(x) for x, _ in batches] == [5, 5, 5]
    images = np.concatenate([x for x, _ in batches])
    labels = np.concatenate([y for _, y in batches])
    assert images.shape == (15, 4, 4, 3) and images.dtype == np.float32
    assert labels.dtype == np.int32 and labels.tolist() == [0] * 4 + [1] * 5 + [2] * 6
    grey = images[:, 0, 0, 0]
    expected = [
        40 * int(label) + int(p.split("img")[1][0]) for label, p in zip(labels, dataset.file_paths)
    ]
    np.testing.assert_allclose(grey, expected)


def test_seeded_shuffle_and_validation_split_partition_the_files(image_folder):
    kwargs = dict(image_size=(4, 4), batch_size=4, seed=5, validation_split=0.2, verbose=False)
    train = utils.image_dataset_from_directory(image_folder, subset="training", **kwargs)
    val = utils.image_dataset_from_directory(image_folder, subset="validation", **kwargs)
    both = utils.image_dataset_from_directory(image_folder, subset="both", **kwargs)
    assert len(val.file_paths) == 3 and len(train.file_paths) == 12
    assert sorted(train.file_paths + val.file_paths) == sorted(_expected_order(image_folder))
    assert both[0].file_paths == train.file_paths and both[1].file_paths == val.file_paths
    order = np.arange(15)
    np.random.RandomState(5).shuffle(order)
    assert train.file_paths + val.file_paths == [_expected_order(image_folder)[i] for i in order]


@pytest.mark.parametrize(
    ("label_mode", "color_mode", "check"),
    [
        ("categorical", "rgb", lambda x, y: y.shape == (6, 3) and y.dtype == np.float32),
        (None, "grayscale", lambda x, y: y is None and x.shape[-1] == 1),
        ("int", "rgba", lambda x, y: x.shape[-1] == 4),
    ],
)
def test_label_and_color_modes(image_folder, label_mode, color_mode, check):
    dataset = utils.image_dataset_from_directory(
        image_folder, image_size=(3, 3), batch_size=6, shuffle=False,
        label_mode=label_mode, color_mode=color_mode, verbose=False,
    )  # fmt: skip
    item = dataset[0]
    x, y = item if label_mode else (item, None)
    assert check(x, y)


def test_a_model_trains_on_an_image_directory(image_folder):
    dataset = utils.image_dataset_from_directory(
        image_folder, image_size=(8, 8), batch_size=4, seed=1, verbose=False
    )
    model = distkeras.Sequential(
        [
            distkeras.Input((8, 8, 3)),
            distkeras.layers.Rescaling(1 / 255),
            distkeras.layers.Flatten(),
            distkeras.layers.Dense(3),
        ]
    )
    model.compile(
        optimizer="adam", loss=distkeras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    history = model.fit(dataset, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_text_directory(tmp_path):
    for name, texts in {
        "neg": ["bad", "awful film"],
        "pos": ["great", "good fun", "loved it"],
    }.items():
        (tmp_path / name).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / name / f"{i}.txt").write_text(text)
    dataset = utils.text_dataset_from_directory(
        tmp_path, batch_size=2, shuffle=False, max_length=5, verbose=False
    )
    assert dataset.class_names == ["neg", "pos"]
    texts, labels = zip(*(dataset[i] for i in range(len(dataset))))
    assert np.concatenate(texts).tolist() == ["bad", "awful", "great", "good ", "loved"]
    assert np.concatenate(labels).tolist() == [0, 0, 1, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"validation_split": 0.2}, "subset"),
        ({"validation_split": 0.2, "subset": "training"}, "seed"),
        ({"label_mode": "binary"}, "exactly 2"),
        ({"color_mode": "cmyk"}, "color_mode"),
        ({"class_names": ["cats", "bats"]}, "class_names"),
    ],
)
def test_errors_name_the_argument(image_folder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        utils.image_dataset_from_directory(image_folder, verbose=False, **kwargs)


def _write_wav(path, samples, rate=8000):
    import wave

    pcm = np.round(np.clip(samples, -1, 1 - 1 / 32768) * 32768).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())


def test_audio_directory_pads_each_batch_to_its_longest_clip(tmp_path):
    clips = {"hum": [np.linspace(-0.5, 0.5, 10), np.full(6, 0.25)], "tick": [np.full(8, -0.75)]}
    for name, items in clips.items():
        (tmp_path / name).mkdir()
        for i, samples in enumerate(items):
            _write_wav(tmp_path / name / f"{i}.wav", samples)
    dataset = utils.audio_dataset_from_directory(
        tmp_path, batch_size=2, shuffle=False, verbose=False
    )
    assert dataset.class_names == ["hum", "tick"]
    (audio, labels), (last, last_labels) = dataset[0], dataset[1]
    assert audio.shape == (2, 10, 1) and audio.dtype == np.float32 and labels.tolist() == [0, 0]
    np.testing.assert_allclose(audio[0, :, 0], np.linspace(-0.5, 0.5, 10), atol=1 / 32768)
    np.testing.assert_array_equal(audio[1, 6:, 0], 0.0)
    assert last.shape == (1, 8, 1) and last_labels.tolist() == [1]
    fixed = utils.audio_dataset_from_directory(
        tmp_path, batch_size=3, shuffle=False, output_sequence_length=7, verbose=False
    )
    assert fixed[0][0].shape == (3, 7, 1)
    with pytest.raises(NotImplementedError, match="sampling_rate=16000"):
        utils.audio_dataset_from_directory(
            tmp_path, sampling_rate=16000, shuffle=False, verbose=False
        )[0]
