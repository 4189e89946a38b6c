"""Loads `distkeras/distributed/env.py` by file path.

Importing `distkeras.distributed.env` the normal way would run `distkeras/__init__.py`, which
imports torch (about a second). The launcher only needs the environment-variable names and
the SLURM hostlist helpers, so it executes the standalone env.py file directly.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_MODULE_NAME = f"{__package__}._distkeras_env"


def _candidates() -> list[Path]:
    paths = [Path(__file__).resolve().parent.parent / "distkeras" / "distributed" / "env.py"]
    # find_spec on a top-level name locates the package without executing its __init__.
    spec = importlib.util.find_spec("distkeras")
    if spec is not None and spec.submodule_search_locations:
        paths += [Path(p) / "distributed" / "env.py" for p in spec.submodule_search_locations]
    return paths


def load() -> ModuleType:
    """Returns the env module, loading it once."""
    for name in ("distkeras.distributed.env", _MODULE_NAME):
        if name in sys.modules:
            return sys.modules[name]
    for path in _candidates():
        if path.is_file():
            spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
            module = importlib.util.module_from_spec(spec)
            # dataclasses look the module up in sys.modules while the class is created.
            sys.modules[_MODULE_NAME] = module
            spec.loader.exec_module(module)
            return module
    raise ImportError(
        "distkeras-launch cannot find distkeras/distributed/env.py next to the launcher "
        "package; reinstall distkeras (pip install distkeras)."
    )


env = load()
