"""``distkeras.ops.numpy``: Keras's numpy-like ops on torch tensors (``keras.ops.numpy``)."""

from distkeras.ops.numpy_create import *  # noqa: F403
from distkeras.ops.numpy_linear import *  # noqa: F403
from distkeras.ops.numpy_math import *  # noqa: F403
from distkeras.ops.numpy_reduce import *  # noqa: F403
from distkeras.ops.numpy_shape import *  # noqa: F403
from distkeras.ops.numpy_stats import *  # noqa: F403
