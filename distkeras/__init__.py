"""distkeras: Keras's API on torch tensors, with synchronous multi-process data parallelism.

Porting a Keras program means changing ``keras`` to ``distkeras`` in its imports; running it on
N processes means ``distkeras-launch -n N train.py``.
"""

from distkeras import (
    activations,
    applications,
    backend,
    callbacks,
    constraints,
    datasets,
    distributed,
    initializers,
    layers,
    losses,
    metrics,
    mixed_precision,
    models,
    ops,
    optimizers,
    preprocessing,
    random,
    regularizers,
    saving,
    utils,
)
from distkeras.layers import Input, InputSpec, Layer
from distkeras.models import Model, Sequential
from distkeras.variables import Variable

__version__ = "0.1.0"

__all__ = [
    "Sequential",
    "Model",
    "Input",
    "InputSpec",
    "Layer",
    "Variable",
    "layers",
    "models",
    "optimizers",
    "losses",
    "metrics",
    "callbacks",
    "regularizers",
    "initializers",
    "constraints",
    "activations",
    "applications",
    "utils",
    "datasets",
    "distributed",
    "backend",
    "mixed_precision",
    "ops",
    "preprocessing",
    "random",
    "saving",
]
