"""Models, mirroring ``keras.models``."""

from distkeras.layers import LAYER_REGISTRY
from distkeras.models.cloning import clone_model
from distkeras.models.functional import Functional
from distkeras.models.model import Model
from distkeras.models.saving import load_model, model_from_json, save_model
from distkeras.models.sequential import Sequential

LAYER_REGISTRY.update(Sequential=Sequential, Functional=Functional, Model=Functional)

__all__ = [
    "Model",
    "Sequential",
    "Functional",
    "clone_model",
    "load_model",
    "model_from_json",
    "save_model",
]
