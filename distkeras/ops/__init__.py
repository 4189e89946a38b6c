"""``distkeras.ops``: Keras 3's backend-agnostic ops, on torch tensors.

As in Keras, the numpy-like, nn, math, linalg and core ops are also exported flat here, and
``ops.numpy``, ``ops.nn``, ``ops.linalg`` and ``ops.image`` are submodules. The public names
are exactly Keras's: the implementation modules (``numpy_math``, ``dtypes``, ...) stay
importable but are not part of ``dir(distkeras.ops)`` or ``from distkeras.ops import *``.
"""

import types as _types

from distkeras.ops import image, linalg, nn, numpy  # noqa: F401  (submodules, as in Keras)
from distkeras.ops.core import *  # noqa: F403
from distkeras.ops.linalg import *  # noqa: F403
from distkeras.ops.math import *  # noqa: F403
from distkeras.ops.nn import *  # noqa: F403
from distkeras.ops.numpy import *  # noqa: F403

_SUBMODULES = ("image", "linalg", "nn", "numpy")
__all__ = sorted(
    name
    for name, value in globals().items()
    if not name.startswith("_")
    and (name in _SUBMODULES or not isinstance(value, _types.ModuleType))
)


def __dir__() -> list[str]:
    return list(__all__)
