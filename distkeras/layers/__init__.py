"""Layers, mirroring ``keras.layers``: each family lives in its own module."""

from distkeras.layers import (
    activation_layers,
    adaptive_pooling,
    attention,
    audio_preprocessing,
    augmentation_color,
    augmentation_geometric,
    augmentation_mix,
    augmentation_tone,
    augmentation_warp,
    conv,
    conv_lstm,
    core,
    einsum_dense,
    group_query_attention,
    image_preprocessing,
    merging,
    normalization,
    op_layer,  # noqa: F401  (registers the handler: ops on KerasTensors become nodes)
    pipeline,
    pooling,
    preprocessing_hashing,
    preprocessing_lookup,
    preprocessing_numeric,
    preprocessing_text,
    recurrent,
    regularization,
    reshaping,
    reversible_embedding,
    spectral_normalization,
    torch_module_wrapper,
    wrappers,
)
from distkeras.layers.activation_layers import *  # noqa: F403
from distkeras.layers.adaptive_pooling import *  # noqa: F403
from distkeras.layers.attention import *  # noqa: F403
from distkeras.layers.audio_preprocessing import *  # noqa: F403
from distkeras.layers.augmentation_color import *  # noqa: F403
from distkeras.layers.augmentation_geometric import *  # noqa: F403
from distkeras.layers.augmentation_mix import *  # noqa: F403
from distkeras.layers.augmentation_tone import *  # noqa: F403
from distkeras.layers.augmentation_warp import *  # noqa: F403
from distkeras.layers.base import Layer  # noqa: F401
from distkeras.layers.conv import *  # noqa: F403
from distkeras.layers.conv_lstm import *  # noqa: F403
from distkeras.layers.core import *  # noqa: F403
from distkeras.layers.einsum_dense import *  # noqa: F403
from distkeras.layers.group_query_attention import *  # noqa: F403
from distkeras.layers.image_preprocessing import *  # noqa: F403
from distkeras.layers.input import Input, InputLayer, KerasTensor  # noqa: F401
from distkeras.layers.input_spec import InputSpec  # noqa: F401
from distkeras.layers.merging import *  # noqa: F403
from distkeras.layers.merging import (  # noqa: F401  (keras.layers.add, ...)
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from distkeras.layers.normalization import *  # noqa: F403
from distkeras.layers.pipeline import *  # noqa: F403
from distkeras.layers.pooling import *  # noqa: F403
from distkeras.layers.preprocessing_hashing import *  # noqa: F403
from distkeras.layers.preprocessing_lookup import *  # noqa: F403
from distkeras.layers.preprocessing_numeric import *  # noqa: F403
from distkeras.layers.preprocessing_text import *  # noqa: F403
from distkeras.layers.recurrent import *  # noqa: F403
from distkeras.layers.regularization import *  # noqa: F403
from distkeras.layers.reshaping import *  # noqa: F403
from distkeras.layers.reversible_embedding import *  # noqa: F403
from distkeras.layers.spectral_normalization import *  # noqa: F403
from distkeras.layers.torch_module_wrapper import *  # noqa: F403
from distkeras.layers.wrappers import *  # noqa: F403

_FAMILIES = (
    activation_layers,
    adaptive_pooling,
    attention,
    audio_preprocessing,
    augmentation_color,
    augmentation_geometric,
    augmentation_mix,
    augmentation_tone,
    augmentation_warp,
    conv,
    conv_lstm,
    core,
    einsum_dense,
    group_query_attention,
    image_preprocessing,
    merging,
    normalization,
    pipeline,
    pooling,
    preprocessing_hashing,
    preprocessing_lookup,
    preprocessing_numeric,
    preprocessing_text,
    recurrent,
    regularization,
    reshaping,
    reversible_embedding,
    spectral_normalization,
    torch_module_wrapper,
    wrappers,
)

# Class name -> class, for rebuilding layers from configs. Models are added by distkeras.models.
LAYER_REGISTRY: dict[str, type] = {"InputLayer": InputLayer}
for _module in _FAMILIES:
    for _name in _module.__all__:
        LAYER_REGISTRY[_name] = getattr(_module, _name)


def serialize(layer) -> dict:
    """A layer as the ``{"module", "class_name", "config", ...}`` dict Keras 3 writes."""
    from distkeras.models.serialization import serialize_layer

    return serialize_layer(layer)


def deserialize(config: dict, custom_objects: dict | None = None):
    """Rebuilds a layer (or model) from :func:`serialize`'s dict or Keras 3's."""
    from distkeras.models.serialization import deserialize_layer

    return deserialize_layer(config, custom_objects)
