"""The ``assets/`` folder of ``.keras`` archives: files layers write with ``save_assets``.

Keras 3 gives every object with ``save_assets(dir_path)`` a folder named by its place in the
model (``assets/layers/string_lookup/``, the path its weights have in ``model.weights.h5``)
and hands the same folder back to ``load_assets(dir_path)`` when loading. StringLookup,
IntegerLookup and TextVectorization keep their adapted vocabulary there.
"""

from __future__ import annotations

import os
import tempfile
import zipfile

from distkeras.models.weights_io import _saveables

_ASSETS_DIRNAME = "assets"


def write_assets(model, archive: zipfile.ZipFile) -> None:
    """Adds every layer's assets to ``archive`` under ``assets/<layer path>/``."""
    for path, obj in _saveables(model, "skip"):
        hook = getattr(obj, "save_assets", None)
        if hook is None:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            hook(tmp)
            for root, _, files in os.walk(tmp):
                for name in sorted(files):
                    full = os.path.join(root, name)
                    relative = os.path.relpath(full, tmp).replace(os.sep, "/")
                    archive.write(full, "/".join(p for p in (_ASSETS_DIRNAME, path, relative) if p))


def read_assets(model, filepath: str) -> None:
    """Hands each layer with ``load_assets`` its folder of the archive's ``assets/``."""
    with zipfile.ZipFile(filepath, "r") as archive:
        names = [n for n in archive.namelist() if n.startswith(_ASSETS_DIRNAME + "/")]
        if not names:
            return
        for path, obj in _saveables(model, "skip"):
            hook = getattr(obj, "load_assets", None)
            if hook is None:
                continue
            prefix = "/".join(p for p in (_ASSETS_DIRNAME, path) if p) + "/"
            own = [n for n in names if n.startswith(prefix) and not n.endswith("/")]
            if not own:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                for name in own:
                    target = os.path.join(tmp, *name[len(prefix) :].split("/"))
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "wb") as f:
                        f.write(archive.read(name))
                hook(tmp)
