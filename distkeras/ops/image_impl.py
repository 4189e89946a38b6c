"""``keras.ops.image``: resizing, color transforms, padding and cropping, patches, filters.

The resampling warps (``affine_transform``, ``map_coordinates``, ...) live in
``image_warp``. Images are channels_last unless ``data_format`` says otherwise; rank-3 inputs
are single images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distkeras.ops import image_warp
from distkeras.ops.dispatch import keras_op
from distkeras.ops.image_util import (
    batched,
    check_image_rank,
    gaussian_blur_nchw,
    gaussian_kernel1d,
)
from distkeras.ops.image_warp import *  # noqa: F403
from distkeras.ops.nn_conv import conv
from distkeras.ops.nn_util import standardize_data_format, standardize_tuple, to_tensor

__all__ = sorted(
    [
        "crop_images",
        "extract_patches",
        "extract_patches_3d",
        "gaussian_blur",
        "hsv_to_rgb",
        "pad_images",
        "resize",
        "rgb_to_grayscale",
        "rgb_to_hsv",
        "sobel_edges",
        "ssim",
    ]
    + image_warp.__all__
)


def _channel_axis(data_format) -> int:
    return -1 if standardize_data_format(data_format) == "channels_last" else -3


@keras_op("image")
def rgb_to_grayscale(images, data_format=None):
    images = to_tensor(images)
    check_image_rank(images)
    axis = _channel_axis(data_format)
    if images.shape[axis] not in (1, 3):
        raise ValueError(
            "Invalid channel size: expected 3 (RGB) or 1 (Grayscale). Received input with "
            f"shape: images.shape={tuple(images.shape)}"
        )
    if images.shape[axis] == 1:
        return images.clone()
    r, g, b = images.unbind(dim=axis)
    return (0.2989 * r + 0.587 * g + 0.114 * b).to(images.dtype).unsqueeze(axis)


def _float_images(images):
    images = to_tensor(images)
    check_image_rank(images)
    if not images.is_floating_point():
        raise ValueError(
            f"Invalid images dtype: expected float dtype. Received: images.dtype={images.dtype}"
        )
    return images


@keras_op("image")
def rgb_to_hsv(images, data_format=None):
    images = _float_images(images)
    axis = _channel_axis(data_format)
    images = torch.where(torch.abs(images) < torch.finfo(images.dtype).eps, 0.0, images)
    r, g, b = images.unbind(dim=axis)
    value = torch.maximum(torch.maximum(r, g), b)
    spread = value - torch.minimum(torch.minimum(r, g), b)
    saturation = torch.where(value > 0, spread / torch.where(value > 0, value, 1.0), 0.0)
    norm = 1.0 / (6.0 * torch.where(spread > 0, spread, 1.0))
    hue = torch.where(value == g, norm * (b - r) + 2.0 / 6.0, norm * (r - g) + 4.0 / 6.0)
    hue = torch.where(value == r, norm * (g - b), hue)
    hue = torch.where(spread > 0, hue, 0.0) + (hue < 0.0).to(hue.dtype)
    return torch.stack((hue, saturation, value), dim=axis)


@keras_op("image")
def hsv_to_rgb(images, data_format=None):
    images = _float_images(images)
    axis = _channel_axis(data_format)
    hue, saturation, value = images.unbind(dim=axis)
    dh = torch.remainder(hue, 1.0) * 6.0
    dr = torch.clip(torch.abs(dh - 3.0) - 1.0, 0.0, 1.0)
    dg = torch.clip(2.0 - torch.abs(dh - 2.0), 0.0, 1.0)
    db = torch.clip(2.0 - torch.abs(dh - 4.0), 0.0, 1.0)
    grey = 1.0 - saturation
    channels = [value * (grey + saturation * d) for d in (dr, dg, db)]
    return torch.stack(channels, dim=axis)


_RESIZE_MODES = {"bilinear": "bilinear", "nearest": "nearest-exact", "bicubic": "bicubic"}


def _aspect_crop_or_pad(x, size, crop, pad, fill_value):
    """NCHW ``x`` cropped or padded (centered) to the aspect ratio of ``size``."""
    height, width = x.shape[-2:]
    target_h, target_w = size
    if crop:
        crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
        crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
        top, left = int(float(height - crop_h) / 2), int(float(width - crop_w) / 2)
        return x[:, :, top : top + crop_h, left : left + crop_w]
    if pad:
        pad_h = max(height, int(float(width * target_h) / target_w))
        pad_w = max(width, int(float(height * target_w) / target_h))
        top, left = int(float(pad_h - height) / 2), int(float(pad_w - width) / 2)
        return F.pad(x, (left, left, top, top), value=float(fill_value))
    return x


@keras_op("image")
def resize(
    images,
    size,
    interpolation="bilinear",
    antialias=False,
    crop_to_aspect_ratio=False,
    pad_to_aspect_ratio=False,
    fill_mode="constant",
    fill_value=0.0,
    data_format=None,
):
    data_format = standardize_data_format(data_format)
    if interpolation in ("lanczos3", "lanczos5"):
        raise NotImplementedError(
            f"resize(interpolation={interpolation!r}): torch has no Lanczos resampling. "
            "Use 'bilinear', 'bicubic' or 'nearest'."
        )
    if interpolation not in _RESIZE_MODES:
        raise ValueError(
            f"Invalid value for argument `interpolation`. Expected one of "
            f"{set(_RESIZE_MODES)}. Received: interpolation={interpolation!r}"
        )
    if fill_mode != "constant":
        raise ValueError(
            "Invalid value for argument `fill_mode`. Only 'constant' is supported. "
            f"Received: fill_mode={fill_mode!r}"
        )
    if pad_to_aspect_ratio and crop_to_aspect_ratio:
        raise ValueError("Only one of `pad_to_aspect_ratio` & `crop_to_aspect_ratio` can be True.")
    if len(size) != 2 or size[0] <= 0 or size[1] <= 0:
        raise ValueError(
            "Argument `size` must be a tuple of two positive integers (height, width). "
            f"Received: size={size!r}"
        )
    images = to_tensor(images)
    check_image_rank(images)
    dtype = images.dtype
    x, restore = batched(images, data_format, "channels_first")
    if dtype not in (torch.float32, torch.float64):
        x = x.to(torch.float32)
    x = _aspect_crop_or_pad(x, size, crop_to_aspect_ratio, pad_to_aspect_ratio, fill_value)
    smooth = interpolation in ("bilinear", "bicubic")
    y = F.interpolate(
        x,
        size=tuple(size),
        mode=_RESIZE_MODES[interpolation],
        align_corners=False if smooth else None,
        antialias=bool(antialias) and smooth,
    )
    if interpolation == "bicubic" and dtype == torch.uint8:
        y = y.clamp(0, 255)
    if y.dtype != dtype:
        if not dtype.is_floating_point:
            y = torch.round(y)
            info = torch.iinfo(dtype) if dtype != torch.bool else None
            if info is not None:
                y = y.clamp(info.min, info.max)
        y = y.to(dtype)
    return restore(y)


def _spatial(images, data_format):
    images = to_tensor(images)
    if images.ndim not in (3, 4):
        raise ValueError(
            "Invalid images rank: expected rank 3 (single image) or rank 4 (batch of images). "
            f"Received: images.shape={tuple(images.shape)}"
        )
    data_format = standardize_data_format(data_format)
    hw = (-3, -2) if data_format == "channels_last" else (-2, -1)
    return images, data_format, images.shape[hw[0]], images.shape[hw[1]]


def _exactly_two(names, values):
    if values.count(None) != 1:
        given = ", ".join(f"{n}={v}" for n, v in zip(names, values))
        raise ValueError(f"Must specify exactly two of {', '.join(names)}. Received: {given}")
    _non_negative(zip(names, values))


def _two_per_axis(kind: str, top, bottom, target_height, left, right, target_width) -> None:
    """pad/crop_images take two of (top, bottom, target) rows and two of each for columns."""
    _exactly_two((f"top_{kind}", f"bottom_{kind}", "target_height"), [top, bottom, target_height])
    _exactly_two((f"left_{kind}", f"right_{kind}", "target_width"), [left, right, target_width])


def _non_negative(named_values) -> None:
    """Raises for the first (name, value) below zero; None values are not given ones."""
    for name, value in named_values:
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0. Received: {name}={value}")


@keras_op("image")
def pad_images(
    images,
    top_padding=None,
    left_padding=None,
    bottom_padding=None,
    right_padding=None,
    target_height=None,
    target_width=None,
    data_format=None,
):
    images, data_format, height, width = _spatial(images, data_format)
    _two_per_axis(
        "padding", top_padding, bottom_padding, target_height,
        left_padding, right_padding, target_width,
    )  # fmt: skip
    top = target_height - bottom_padding - height if top_padding is None else top_padding
    bottom = target_height - top - height if bottom_padding is None else bottom_padding
    left = target_width - right_padding - width if left_padding is None else left_padding
    right = target_width - left - width if right_padding is None else right_padding
    _non_negative(
        (("top_padding", top), ("left_padding", left), ("right_padding", right),
         ("bottom_padding", bottom))
    )  # fmt: skip
    pads = (
        (0, 0, left, right, top, bottom)
        if data_format == "channels_last"
        else (left, right, top, bottom)
    )
    return F.pad(images, pads)


@keras_op("image")
def crop_images(
    images,
    top_cropping=None,
    left_cropping=None,
    bottom_cropping=None,
    right_cropping=None,
    target_height=None,
    target_width=None,
    data_format=None,
):
    images, data_format, height, width = _spatial(images, data_format)
    _two_per_axis(
        "cropping", top_cropping, bottom_cropping, target_height,
        left_cropping, right_cropping, target_width,
    )  # fmt: skip
    top = height - target_height - bottom_cropping if top_cropping is None else top_cropping
    out_h = height - bottom_cropping - top if target_height is None else target_height
    left = width - target_width - right_cropping if left_cropping is None else left_cropping
    out_w = width - right_cropping - left if target_width is None else target_width
    _non_negative(
        (("top_cropping", top), ("target_height", out_h), ("left_cropping", left),
         ("target_width", out_w))
    )  # fmt: skip
    rows, cols = slice(top, top + out_h), slice(left, left + out_w)
    if data_format == "channels_last":
        return images[..., rows, cols, :]
    return images[..., rows, cols]


def _patches(images, size, strides, dilation_rate, padding, data_format, rank):
    """Patches as channels: a conv with an identity kernel, flattened (k..., C) per patch."""
    data_format = standardize_data_format(data_format)
    images = to_tensor(images)
    single = images.ndim == rank + 1
    x = images[None] if single else images
    channels = x.shape[-1] if data_format == "channels_last" else x.shape[1]
    size = standardize_tuple(size, rank, "size")
    strides = strides or size
    depth = channels
    for k in size:
        depth *= k
    kernel = torch.eye(depth, dtype=x.dtype, device=x.device).reshape(*size, channels, depth)
    y = conv.eager(x, kernel, strides, padding, data_format, dilation_rate)
    return y[0] if single else y


@keras_op("image")
def extract_patches(images, size, strides=None, dilation_rate=1, padding="valid", data_format=None):
    if not isinstance(size, int):
        if not isinstance(size, (tuple, list)):
            raise TypeError(
                "Invalid `size` argument. Expected an int or a tuple. "
                f"Received: size={size!r} of type {type(size).__name__}"
            )
        if len(size) not in (2, 3):
            raise ValueError(
                "Invalid `size` argument. Expected a tuple of length 2 or 3. "
                f"Received: size={size!r} with length {len(size)}"
            )
    rank = 3 if not isinstance(size, int) and len(size) == 3 else 2
    return _patches(images, size, strides, dilation_rate, padding, data_format, rank)


@keras_op("image")
def extract_patches_3d(
    volumes, size, strides=None, dilation_rate=1, padding="valid", data_format=None
):
    strides = size if strides is None else strides
    strides = standardize_tuple(strides, 3, "strides")
    return _patches(volumes, size, strides, dilation_rate, padding, data_format, 3)


@keras_op("image")
def gaussian_blur(images, kernel_size=(3, 3), sigma=(1.0, 1.0), data_format=None):
    images = to_tensor(images)
    check_image_rank(images)
    x, restore = batched(images, standardize_data_format(data_format), "channels_first")
    size_x, size_y = standardize_tuple(kernel_size, 2, "kernel_size")
    sigma_x, sigma_y = (sigma, sigma) if isinstance(sigma, (int, float)) else sigma
    # Keras orders both pairs (x, y), i.e. (width, height), as its JAX backend reads them.
    return restore(gaussian_blur_nchw(x, (size_y, size_x), (float(sigma_y), float(sigma_x))))


_SOBEL_Y = [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]
_SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]


@keras_op("image")
def sobel_edges(images, data_format=None):
    images = to_tensor(images)
    data_format = standardize_data_format(data_format)
    x = images.movedim(-1, 1) if data_format == "channels_last" else images
    channels = x.shape[1]
    kernel = torch.tensor([_SOBEL_Y, _SOBEL_X], dtype=x.dtype, device=x.device)
    # One grouped conv: for each channel, its y then x gradient.
    kernel = kernel.repeat(channels, 1, 1).unsqueeze(1)
    edges = F.conv2d(x, kernel, padding=1, groups=channels)
    edges = edges.reshape(x.shape[0], channels, 2, *edges.shape[2:]).movedim(2, -1)
    return edges.permute(0, 2, 3, 1, 4) if data_format == "channels_last" else edges


@keras_op("image")
def ssim(
    image1,
    image2,
    max_val=1.0,
    filter_size=11,
    filter_sigma=1.5,
    k1=0.01,
    k2=0.03,
    data_format=None,
):
    data_format = standardize_data_format(data_format)
    image1, image2 = to_tensor(image1), to_tensor(image2)
    check_image_rank(image1, "image1")
    check_image_rank(image2, "image2")
    original = image1.dtype
    compute = original if original.is_floating_point else torch.float32
    a, _ = batched(image1.to(compute), data_format, "channels_first")
    b, _ = batched(image2.to(compute), data_format, "channels_first")
    n, c, h, w = a.shape
    a, b = a.reshape(n * c, 1, h, w), b.reshape(n * c, 1, h, w)
    g = gaussian_kernel1d(filter_size, filter_sigma, compute, a.device)
    kernel = torch.outer(g, g)[None, None]

    def blur(v):
        return F.conv2d(v, kernel)

    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    mu1, mu2 = blur(a), blur(b)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1 = blur(a * a) - mu1_sq
    sigma2 = blur(b * b) - mu2_sq
    sigma12 = blur(a * b) - mu12
    ssim_map = ((2.0 * mu12 + c1) * (2.0 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1 + sigma2 + c2)
    )
    result = ssim_map.mean(dim=(1, 2, 3)).reshape(n, c).mean(dim=-1)
    if image1.ndim == 3:
        result = result[0]
    return result.to(original)
