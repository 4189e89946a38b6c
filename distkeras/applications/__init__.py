"""Ready-made image models, mirroring ``keras.applications``.

Each family has its module (``resnet50``, ``mobilenet_v2``, ``efficientnet``...) with the
models, ``preprocess_input`` and ``decode_predictions``; the models are also here, flat.
Layer names and weight order are Keras's, so Keras's weight files load: ``weights=None``,
a local weights file, or ``"imagenet"``, read from the Keras cache folder (nothing is
downloaded).

Example:
    >>> from distkeras.applications import ResNet50
    >>> base = ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg")
"""

from distkeras.applications import (
    convnext,
    densenet,
    efficientnet,
    efficientnet_v2,
    imagenet_utils,
    inception_resnet_v2,
    inception_v3,
    mobilenet,
    mobilenet_v2,
    mobilenet_v3,
    resnet,
    resnet50,
    resnet_v2,
    vgg16,
    vgg19,
    xception,
)
from distkeras.applications.convnext import (
    ConvNeXtBase,
    ConvNeXtLarge,
    ConvNeXtSmall,
    ConvNeXtTiny,
    ConvNeXtXLarge,
)
from distkeras.applications.densenet import DenseNet121, DenseNet169, DenseNet201
from distkeras.applications.efficientnet import (
    EfficientNetB0,
    EfficientNetB1,
    EfficientNetB2,
    EfficientNetB3,
    EfficientNetB4,
    EfficientNetB5,
    EfficientNetB6,
    EfficientNetB7,
)
from distkeras.applications.efficientnet_v2 import (
    EfficientNetV2B0,
    EfficientNetV2B1,
    EfficientNetV2B2,
    EfficientNetV2B3,
    EfficientNetV2L,
    EfficientNetV2M,
    EfficientNetV2S,
)
from distkeras.applications.inception_resnet_v2 import InceptionResNetV2
from distkeras.applications.inception_v3 import InceptionV3
from distkeras.applications.mobilenet import MobileNet
from distkeras.applications.mobilenet_v2 import MobileNetV2
from distkeras.applications.mobilenet_v3 import MobileNetV3Large, MobileNetV3Small
from distkeras.applications.resnet import ResNet50, ResNet101, ResNet152
from distkeras.applications.resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2
from distkeras.applications.vgg16 import VGG16
from distkeras.applications.vgg19 import VGG19
from distkeras.applications.xception import Xception

__all__ = [
    "ConvNeXtBase",
    "ConvNeXtLarge",
    "ConvNeXtSmall",
    "ConvNeXtTiny",
    "ConvNeXtXLarge",
    "DenseNet121",
    "DenseNet169",
    "DenseNet201",
    "EfficientNetB0",
    "EfficientNetB1",
    "EfficientNetB2",
    "EfficientNetB3",
    "EfficientNetB4",
    "EfficientNetB5",
    "EfficientNetB6",
    "EfficientNetB7",
    "EfficientNetV2B0",
    "EfficientNetV2B1",
    "EfficientNetV2B2",
    "EfficientNetV2B3",
    "EfficientNetV2L",
    "EfficientNetV2M",
    "EfficientNetV2S",
    "InceptionResNetV2",
    "InceptionV3",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Large",
    "MobileNetV3Small",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "ResNet50V2",
    "ResNet101V2",
    "ResNet152V2",
    "VGG16",
    "VGG19",
    "Xception",
    "convnext",
    "densenet",
    "efficientnet",
    "efficientnet_v2",
    "imagenet_utils",
    "inception_resnet_v2",
    "inception_v3",
    "mobilenet",
    "mobilenet_v2",
    "mobilenet_v3",
    "resnet",
    "resnet50",
    "resnet_v2",
    "vgg16",
    "vgg19",
    "xception",
]
