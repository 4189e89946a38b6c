"""VGG19: VGG16's layout with four convolutions in each of the last three blocks."""

from __future__ import annotations

from distkeras.applications.vgg16 import decode_predictions, preprocess_input, variant

__all__ = ["VGG19", "preprocess_input", "decode_predictions"]


VGG19 = variant((2, 2, 4, 4, 4), "VGG19", """VGG19, as ``keras.applications.VGG19``.""", __name__)
