"""``keras.preprocessing``: the dataset builders and the image/sequence helpers under their
older names (keras.io's timeseries examples call ``keras.preprocessing.timeseries_dataset_
from_array``). Everything here is the object ``distkeras.utils`` exports."""

from distkeras.preprocessing import image, sequence
from distkeras.utils import (
    image_dataset_from_directory,
    text_dataset_from_directory,
    timeseries_dataset_from_array,
)

__all__ = [
    "image",
    "sequence",
    "image_dataset_from_directory",
    "text_dataset_from_directory",
    "timeseries_dataset_from_array",
]
