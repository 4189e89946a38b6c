"""``distkeras.ops``: Keras 3's backend-agnostic ops, on torch tensors.

As in Keras, the numpy-like, nn, math, linalg and core ops are also exported flat here, and
``ops.numpy``, ``ops.nn``, ``ops.linalg`` and ``ops.image`` are submodules.
"""

from distkeras.ops import image, linalg, nn, numpy  # noqa: F401  (submodules, as in Keras)
from distkeras.ops.core import *  # noqa: F403
from distkeras.ops.linalg import *  # noqa: F403
from distkeras.ops.math import *  # noqa: F403
from distkeras.ops.nn import *  # noqa: F403
from distkeras.ops.numpy import *  # noqa: F403
