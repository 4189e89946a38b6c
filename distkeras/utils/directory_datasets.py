"""``image_dataset_from_directory`` and ``text_dataset_from_directory`` without tf.data.

Both index the files as Keras does (one sub-folder per class, sorted; files sorted within each
folder; a seeded global shuffle; the validation split taken from the end) and return a
:class:`PyDataset` of batches that fit/evaluate/predict read directly, each rank keeping its
part of every batch. The datasets carry ``class_names`` and ``file_paths``.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from distkeras.utils.dataset_utils import _shared_seed
from distkeras.utils.py_dataset import PyDataset

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_LABEL_MODES = ("int", "categorical", "binary", None)


def _valid_files(folder: str, formats, follow_links: bool):
    walk = os.walk(folder, followlinks=follow_links)
    for root, _, files in sorted(walk, key=lambda entry: entry[0]):
        for name in sorted(files):
            if name.lower().endswith(formats):
                yield os.path.join(root, name)


def index_directory(directory, labels, formats, class_names, shuffle, seed, follow_links):
    """(file paths, labels or None, class names) in Keras's order."""
    if not os.path.isdir(directory):
        raise ValueError(f"Could not find directory {directory}")
    if labels == "inferred":
        subdirs = [
            d
            for d in sorted(os.listdir(directory))
            if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")
        ]
        if class_names is not None:
            if not set(class_names).issubset(subdirs):
                raise ValueError(
                    "The `class_names` passed did not match the names of the subdirectories "
                    f"of the target directory. Expected: {subdirs} (or a subset of it), but "
                    f"received: class_names={class_names}"
                )
            subdirs = list(class_names)
    else:
        if class_names is not None:
            raise ValueError(
                "When `labels` is None or a list of labels, `class_names` cannot be given "
                "(the class names are the sorted labels)."
            )
        subdirs = [""]
    paths: list[str] = []
    inferred: list[int] = []
    for index, subdir in enumerate(subdirs):
        found = list(_valid_files(os.path.join(directory, subdir), formats, follow_links))
        paths += found
        inferred += [index] * len(found)
    if labels == "inferred":
        label_array = np.asarray(inferred, dtype="int32")
        names = subdirs
    elif labels is None:
        label_array, names = None, None
    else:
        if len(labels) != len(paths):
            raise ValueError(
                f"Expected the lengths of `labels` to match the number of files in the target "
                f"directory. len(labels) is {len(labels)} while we found {len(paths)} files "
                f"in directory {directory}."
            )
        label_array = np.asarray(labels)
        names = [str(label) for label in sorted(set(labels))]
    if shuffle:
        order = np.arange(len(paths))
        np.random.RandomState(seed).shuffle(order)
        paths = [paths[i] for i in order]
        label_array = None if label_array is None else label_array[order]
    return paths, label_array, names


def _check_split(validation_split, subset, shuffle, seed) -> None:
    if subset not in (None, "training", "validation", "both"):
        raise ValueError(
            f'`subset` must be "training", "validation", "both" or None. Received: {subset}'
        )
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(
            f"`validation_split` must be between 0 and 1, received: {validation_split}"
        )
    if (validation_split is None) != (subset is None):
        raise ValueError(
            "`validation_split` and `subset` go together: pass both or neither. Received: "
            f"validation_split={validation_split}, subset={subset}"
        )
    if validation_split and shuffle and seed is None:
        raise ValueError(
            "If using `validation_split` and shuffling the data, you must provide a `seed` "
            "argument, so that the training and validation subsets do not overlap."
        )


def _split(paths, labels, validation_split, subset):
    if not validation_split:
        return paths, labels
    count = int(validation_split * len(paths))
    if subset == "training":
        return paths[: len(paths) - count], None if labels is None else labels[: len(paths) - count]
    return paths[len(paths) - count :], None if labels is None else labels[len(paths) - count :]


def _encode_labels(labels, label_mode, num_classes: int):
    if label_mode == "int":
        return labels.astype("int32")
    if label_mode == "binary":
        return labels.astype("float32")[:, None]
    return np.eye(num_classes, dtype="float32")[labels]


class FileDataset(PyDataset):
    """Batches read from files on demand: ``(x, labels)`` or ``x`` when unlabelled."""

    def __init__(self, paths, labels, class_names, batch_size, read, label_mode, num_classes):
        super().__init__()
        self.file_paths = list(paths)
        self.labels = labels
        self.class_names = class_names
        self.batch_size = batch_size
        self._read = read
        self._label_mode = label_mode
        self._num_classes = num_classes

    def __len__(self) -> int:
        if self.batch_size is None:
            return len(self.file_paths)
        return math.ceil(len(self.file_paths) / self.batch_size)

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        size = self.batch_size or 1
        rows = slice(index * size, (index + 1) * size)
        x = self._read(self.file_paths[rows])
        if self.batch_size is None:
            x = x[0]
        if self.labels is None or self._label_mode is None:
            return x
        y = _encode_labels(self.labels[rows], self._label_mode, self._num_classes)
        return x, (y[0] if self.batch_size is None else y)


def _datasets(paths, labels, names, *, validation_split, subset, batch_size, read, label_mode):
    if label_mode not in _LABEL_MODES:
        raise ValueError(
            f'`label_mode` argument must be one of "int", "categorical", "binary", or None. '
            f"Received: label_mode={label_mode}"
        )
    num_classes = len(names) if names else 0
    if label_mode == "binary" and num_classes != 2:
        raise ValueError(
            f'When passing `label_mode="binary"`, there must be exactly 2 class_names. '
            f"Received: class_names={names}"
        )
    subsets = ("training", "validation") if subset == "both" else (subset,)
    made = [
        FileDataset(
            *_split(paths, labels, validation_split, part),
            names,
            batch_size,
            read,
            label_mode,
            num_classes,
        )
        for part in subsets
    ]
    return tuple(made) if subset == "both" else made[0]


# The arguments every *_dataset_from_directory takes and hands to _from_directory unchanged.
_SHARED_OPTIONS = (
    "labels",
    "label_mode",
    "class_names",
    "batch_size",
    "shuffle",
    "seed",
    "validation_split",
    "subset",
    "follow_links",
    "verbose",
)


def _shared_options(arguments: dict) -> dict:
    return {name: arguments[name] for name in _SHARED_OPTIONS}


def _from_directory(directory, formats, read, *, labels, label_mode, class_names, batch_size,
                    shuffle, seed, validation_split, subset, follow_links, verbose):  # fmt: skip
    """Indexes ``directory`` (Keras's order, shared seed), then makes the dataset(s)."""
    _check_split(validation_split, subset, shuffle, seed)
    seed = _shared_seed(seed) if shuffle else seed
    paths, label_array, names = index_directory(
        directory, labels, formats, class_names, shuffle, seed, follow_links
    )
    if verbose:
        classes = "" if names is None else f" belonging to {len(names)} classes"
        print(f"Found {len(paths)} files{classes}.")
    return _datasets(
        paths,
        label_array,
        names,
        validation_split=validation_split,
        subset=subset,
        batch_size=batch_size,
        read=read,
        label_mode=label_mode if labels is not None else None,
    )


def image_dataset_from_directory(
    directory,
    labels="inferred",
    label_mode="int",
    class_names=None,
    color_mode="rgb",
    batch_size=32,
    image_size=(256, 256),
    shuffle=True,
    seed=None,
    validation_split=None,
    subset=None,
    interpolation="bilinear",
    follow_links=False,
    crop_to_aspect_ratio=False,
    pad_to_aspect_ratio=False,
    data_format=None,
    format="tf",
    verbose=True,
):
    """Image files in class folders as a dataset of ``(images, labels)`` batches, as
    ``keras.utils.image_dataset_from_directory``: float32 images in [0, 255] resized to
    ``image_size``; labels per ``label_mode``. ``subset="both"`` returns (training, validation).
    """
    options = _shared_options(locals())
    from distkeras.layers.conv_base import standardize_data_format
    from distkeras.ops import image as image_ops
    from distkeras.utils.image_utils import img_to_array, load_img

    channels = {"grayscale": 1, "rgb": 3, "rgba": 4}.get(color_mode)
    if channels is None:
        raise ValueError(
            f'`color_mode` must be one of "rgb", "rgba", or "grayscale". Received: {color_mode}'
        )
    if format not in ("tf", "grain"):
        raise ValueError(f'`format` should be either "tf" or "grain". Received: format={format}')
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("Only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be True.")
    data_format = standardize_data_format("image_dataset_from_directory", data_format)
    height, width = image_size

    def read(batch_paths):
        images = []
        for path in batch_paths:
            array = img_to_array(load_img(path, color_mode=color_mode), data_format="channels_last")
            resized = image_ops.resize(
                torch.as_tensor(array),
                (height, width),
                interpolation=interpolation,
                crop_to_aspect_ratio=crop_to_aspect_ratio,
                pad_to_aspect_ratio=pad_to_aspect_ratio,
                data_format="channels_last",
            )
            images.append(resized.numpy())
        stacked = np.stack(images).astype("float32")
        return stacked.transpose(0, 3, 1, 2) if data_format == "channels_first" else stacked

    return _from_directory(directory, IMAGE_FORMATS, read, **options)


def text_dataset_from_directory(
    directory,
    labels="inferred",
    label_mode="int",
    class_names=None,
    batch_size=32,
    max_length=None,
    shuffle=True,
    seed=None,
    validation_split=None,
    subset=None,
    follow_links=False,
    format="tf",
    verbose=True,
):
    """``.txt`` files in class folders as a dataset of ``(texts, labels)`` batches: texts are
    numpy string arrays (truncated to ``max_length`` characters when given)."""
    options = _shared_options(locals())
    if format not in ("tf", "grain"):
        raise ValueError(f'`format` should be either "tf" or "grain". Received: format={format}')

    def read(batch_paths):
        texts = []
        for path in batch_paths:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            texts.append(text[:max_length] if max_length is not None else text)
        return np.asarray(texts, dtype=object)

    return _from_directory(directory, (".txt",), read, **options)


def _read_wav(path: str, sampling_rate, output_sequence_length) -> np.ndarray:
    """A .wav file as float32 samples in [-1, 1], shape (samples, channels)."""
    import wave

    with wave.open(path, "rb") as handle:
        rate, width, channels = handle.getframerate(), handle.getsampwidth(), handle.getnchannels()
        frames = handle.readframes(handle.getnframes())
    if sampling_rate is not None and rate != sampling_rate:
        raise NotImplementedError(
            f"audio_dataset_from_directory: {path} is sampled at {rate} Hz, not "
            f"sampling_rate={sampling_rate}; resampling is not supported (Keras needs "
            "tensorflow-io for it). Resample the files, or pass sampling_rate=None."
        )
    kinds = {1: ("uint8", 128.0, 128.0), 2: ("<i2", 0.0, 32768.0), 4: ("<i4", 0.0, 2.0**31)}
    if width not in kinds:
        raise ValueError(
            f"audio_dataset_from_directory: {path} has unsupported {width * 8}-bit samples."
        )
    dtype, offset, scale = kinds[width]
    samples = (np.frombuffer(frames, dtype=dtype).astype("float32") - offset) / scale
    samples = samples.reshape(-1, channels)
    if output_sequence_length is not None:
        samples = samples[:output_sequence_length]
    return samples


def audio_dataset_from_directory(
    directory,
    labels="inferred",
    label_mode="int",
    class_names=None,
    batch_size=32,
    sampling_rate=None,
    output_sequence_length=None,
    ragged=False,
    shuffle=True,
    seed=None,
    validation_split=None,
    subset=None,
    follow_links=False,
    verbose=True,
):
    """``.wav`` files in class folders as a dataset of ``(audio, labels)`` batches: float32
    ``(batch, samples, channels)`` in [-1, 1], each batch zero-padded to its longest clip (or
    cut/padded to ``output_sequence_length``)."""
    options = _shared_options(locals())
    if ragged:
        raise ValueError(
            "audio_dataset_from_directory: ragged=True is not supported (no ragged tensors)."
        )
    if sampling_rate is not None and (not isinstance(sampling_rate, int) or sampling_rate <= 0):
        raise ValueError(f"`sampling_rate` should be a positive integer. Received: {sampling_rate}")

    def read(batch_paths):
        clips = [_read_wav(p, sampling_rate, output_sequence_length) for p in batch_paths]
        length = output_sequence_length or max(len(c) for c in clips)
        batch = np.zeros((len(clips), length, clips[0].shape[1]), dtype="float32")
        for row, clip in enumerate(clips):
            batch[row, : len(clip)] = clip
        return batch

    return _from_directory(directory, (".wav",), read, **options)
