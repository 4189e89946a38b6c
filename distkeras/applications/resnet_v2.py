"""ResNet50V2/101V2/152V2: pre-activation residual networks.

He et al., "Identity Mappings in Deep Residual Networks" (ECCV 2016). Inputs are scaled to
[-1, 1] ("tf" mode) by :func:`preprocess_input`.
"""

from __future__ import annotations

from distkeras.applications import imagenet_utils
from distkeras.applications.resnet import stack_residual_blocks_v2, variant

__all__ = ["ResNet50V2", "ResNet101V2", "ResNet152V2", "preprocess_input", "decode_predictions"]


def _v2_stacks(blocks3: int, blocks4: int):
    # V2 puts each stage's stride on its last block, so the last stage has none.
    def stack_fn(x):
        x = stack_residual_blocks_v2(x, 64, 3, name="conv2")
        x = stack_residual_blocks_v2(x, 128, blocks3, name="conv3")
        x = stack_residual_blocks_v2(x, 256, blocks4, name="conv4")
        return stack_residual_blocks_v2(x, 512, 3, stride1=1, name="conv5")

    return stack_fn


ResNet50V2 = variant(
    _v2_stacks(4, 6), True, "ResNet50V2", "resnet50v2",
    """ResNet50V2, as ``keras.applications.ResNet50V2``.

    Example:
        >>> model = ResNet50V2(weights=None, input_shape=(32, 32, 3), classes=10)
    """, __name__,
)  # fmt: skip
ResNet101V2 = variant(
    _v2_stacks(4, 23), True, "ResNet101V2", "resnet101v2",
    """ResNet101V2, as ``keras.applications.ResNet101V2``.""", __name__,
)  # fmt: skip
ResNet152V2 = variant(
    _v2_stacks(8, 36), True, "ResNet152V2", "resnet152v2",
    """ResNet152V2, as ``keras.applications.ResNet152V2``.""", __name__,
)  # fmt: skip


preprocess_input, decode_predictions = imagenet_utils.family_functions("ResNetV2", "tf", __name__)
