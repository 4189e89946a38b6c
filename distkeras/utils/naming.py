"""Unique default names (``dense``, ``dense_1``, ...) as Keras gives them."""

from __future__ import annotations

import re
from collections import defaultdict

_COUNTS: defaultdict[str, int] = defaultdict(int)


def to_snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    return name.replace("2_d", "2d").replace("1_d", "1d").replace("3_d", "3d")


def uniquify(base: str) -> str:
    count = _COUNTS[base]
    _COUNTS[base] += 1
    return base if count == 0 else f"{base}_{count}"


def reset_names() -> None:
    """Restarts default numbering (``clear_session`` calls this)."""
    _COUNTS.clear()
