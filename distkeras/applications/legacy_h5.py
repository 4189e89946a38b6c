"""Reading Keras's legacy HDF5 weights files (the format of its ImageNet downloads).

In that format the root lists ``layer_names``; each layer's group lists its ``weight_names``
(trainable first, then the rest), and each name is a dataset. Keras loads such a file by
order: the file's layers that have weights, in turn, into the model's layers that have weights.
We do the same, so names given automatically ("conv2d_7") never have to agree.
"""

from __future__ import annotations

import h5py
import numpy as np


def _names(attrs, key: str) -> list[str]:
    return [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in attrs.get(key, [])]


def load_legacy_weights(model, path: str) -> None:
    """Loads a legacy (Keras 2 / ``save_weights_to_hdf5_group``) ``.h5`` file into ``model``."""
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"Cannot read {path} as an HDF5 weights file ({err}).") from err
    with f:
        root = f
        if "layer_names" not in root.attrs and "model_weights" in root:
            root = root["model_weights"]
        if "layer_names" not in root.attrs:
            raise ValueError(
                f"{path} is an HDF5 file but not a Keras weights file: it has no "
                "`layer_names` attribute."
            )
        stored = []
        for name in _names(root.attrs, "layer_names"):
            group = root[name]
            weight_names = _names(group.attrs, "weight_names")
            if weight_names:
                stored.append((name, [np.asarray(group[w]) for w in weight_names]))
    targets = [layer for layer in model.layers if layer.weights]
    if len(stored) != len(targets):
        raise ValueError(
            f"Cannot load {path} into model '{model.name}': the file has weights for "
            f"{len(stored)} layers, the model has {len(targets)} layers with weights. It was "
            "saved from a different architecture (or with include_top set differently)."
        )
    assignments = []
    for layer, (stored_name, values) in zip(targets, stored):
        # The file's order (trainable first) is ``layer.weights``'s for every layer here, and
        # its values are in Keras's layouts, which get_weights/set_weights speak.
        expected = [tuple(w.shape) for w in layer.get_weights()]
        received = [tuple(v.shape) for v in values]
        if expected != received:
            raise ValueError(
                f"Cannot load {path} into model '{model.name}': layer '{layer.name}' "
                f"({type(layer).__name__}) expects weights of shapes {expected}; the file's "
                f"layer '{stored_name}' has {received}."
            )
        assignments.append((layer, values))
    for layer, values in assignments:
        layer.set_weights(values)
