"""Inputs for every op of ``keras.ops.image``, compared with Keras by ``test_image_sweep.py``."""

from __future__ import annotations

import numpy as np

from tests.ops.keras_reference import Case

rng = np.random.default_rng(7)


def f32(*shape, low=0.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype("float32")


def image(name, *args, label="", atol=1e-5, **kwargs):
    return Case(name, args, kwargs, module="image", atol=atol, label=label)


IMGS = f32(2, 8, 10, 3)
IMGS_CF = np.ascontiguousarray(IMGS.transpose(0, 3, 1, 2))
ONE = f32(9, 7, 3)
UINT8 = rng.integers(0, 256, size=(2, 6, 8, 3)).astype("uint8")
HSV = np.concatenate([f32(2, 5, 6, 1, low=-0.5, high=1.5), f32(2, 5, 6, 2)], axis=-1)
SHIFT = np.array([1, 0, -1.5, 0, 1, 2.25, 0, 0], dtype="float32")
ROTATE = np.array([0.9, -0.3, 2.0, 0.3, 0.9, -1.0, 0, 0], dtype="float32")
# Keras's torch backend needs one transform per image of a batch (ours also broadcasts one).
PAIR = np.stack([ROTATE, SHIFT])
CORNERS = np.array([[0, 0], [9, 0], [0, 7], [9, 7]], dtype="float32")
MOVED = CORNERS + rng.uniform(-1.5, 1.5, size=(4, 2)).astype("float32")

CASES: list[Case] = [
    image("rgb_to_grayscale", IMGS),
    image("rgb_to_grayscale", IMGS_CF, data_format="channels_first", label="cf"),
    image("rgb_to_grayscale", ONE, label="single"),
    image("rgb_to_grayscale", UINT8, label="uint8"),
    image("rgb_to_grayscale", IMGS[..., :1], label="grey"),
    image("rgb_to_hsv", IMGS),
    image("rgb_to_hsv", IMGS_CF, data_format="channels_first", label="cf"),
    image(
        "rgb_to_hsv",
        np.array([[[[0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1]]]], "float32"),
        label="grey_and_primaries",
    ),
    image("hsv_to_rgb", HSV),
    image(
        "hsv_to_rgb",
        np.ascontiguousarray(HSV.transpose(0, 3, 1, 2)),
        data_format="channels_first",
        label="cf",
    ),
    image("resize", IMGS, (5, 4)),
    image("resize", IMGS, (13, 17), label="upsample"),
    image("resize", IMGS, (4, 5), interpolation="nearest", label="nearest"),
    image("resize", IMGS, (11, 6), interpolation="bicubic", label="bicubic", atol=1e-4),
    image("resize", IMGS, (4, 3), antialias=True, label="antialias"),
    image("resize", IMGS, (6, 6), crop_to_aspect_ratio=True, label="crop"),
    image("resize", IMGS, (6, 6), pad_to_aspect_ratio=True, fill_value=0.5, label="pad"),
    image(
        "resize",
        np.ascontiguousarray(IMGS.transpose(0, 2, 1, 3)),
        (6, 6),
        pad_to_aspect_ratio=True,
        label="pad_width",
    ),
    image("resize", IMGS_CF, (5, 7), data_format="channels_first", label="cf"),
    image("resize", ONE, (4, 4), label="single"),
    image("resize", UINT8, (9, 5), label="uint8"),
    image("resize", UINT8, (9, 5), interpolation="bicubic", label="uint8_bicubic"),
    image("pad_images", IMGS, 1, 2, 3, 0),
    image("pad_images", IMGS, 2, None, None, 1, target_height=12, target_width=14, label="targets"),
    image(
        "pad_images", IMGS_CF, None, 1, 1, None, 11, 12, data_format="channels_first", label="cf"
    ),
    image("pad_images", ONE, 1, 1, 1, 1, label="single"),
    image("crop_images", IMGS, 1, 2, 3, 0),
    image("crop_images", IMGS, 2, None, None, 1, target_height=4, target_width=6, label="targets"),
    image("crop_images", IMGS_CF, None, 1, 1, None, 5, 4, data_format="channels_first", label="cf"),
    image("crop_images", ONE, 1, 1, 1, 1, label="single"),
    image("extract_patches", IMGS, 2),
    image("extract_patches", IMGS, (3, 2), strides=(2, 1), label="rect"),
    image("extract_patches", IMGS, 3, strides=2, padding="same", label="same"),
    image("extract_patches", IMGS, 2, strides=1, dilation_rate=2, label="dilated"),
    image("extract_patches", IMGS_CF, 2, data_format="channels_first", label="cf"),
    image("extract_patches", ONE, 3, label="single"),
    image("extract_patches", f32(1, 4, 6, 4, 2), (2, 3, 2), label="as_3d"),
    image("extract_patches_3d", f32(2, 4, 6, 4, 2), 2),
    image(
        "extract_patches_3d", f32(1, 5, 6, 4, 2), (2, 3, 2), strides=1, padding="same", label="same"
    ),
    image("extract_patches_3d", f32(1, 2, 4, 6, 4), 2, data_format="channels_first", label="cf"),
    image("extract_patches_3d", f32(4, 6, 4, 2), 2, label="single"),
    image("gaussian_blur", IMGS, data_format="channels_last"),
    image(
        "gaussian_blur",
        IMGS,
        kernel_size=(5, 5),
        sigma=(1.5, 1.5),
        data_format="channels_last",
        label="k5",
    ),
    image(
        "gaussian_blur",
        IMGS_CF,
        kernel_size=(3, 3),
        sigma=(0.5, 2.0),
        data_format="channels_first",
        label="cf_anisotropic",
    ),
    image("gaussian_blur", ONE, data_format="channels_last", label="single"),
    image("sobel_edges", IMGS),
    image("sobel_edges", IMGS_CF, data_format="channels_first", label="cf"),
    image("ssim", IMGS, np.clip(IMGS + f32(2, 8, 10, 3, low=-0.1, high=0.1), 0, 1), filter_size=5),
    image("ssim", f32(2, 16, 14, 3), f32(2, 16, 14, 3), label="default_filter"),
    image(
        "ssim",
        IMGS_CF,
        IMGS_CF[::-1].copy(),
        max_val=2.0,
        filter_size=3,
        filter_sigma=0.8,
        data_format="channels_first",
        label="cf",
    ),
    image("ssim", ONE, ONE * 0.8, filter_size=3, label="single"),
    image("map_coordinates", f32(6, 7), rng.uniform(-1, 8, size=(2, 4, 5)), 1),
    image("map_coordinates", f32(6, 7), rng.uniform(-1, 8, size=(2, 9)), 0, label="nearest"),
    image(
        "map_coordinates",
        f32(4, 5, 3),
        rng.uniform(-2, 6, size=(3, 10)),
        1,
        fill_value=0.5,
        label="3d_fill",
    ),
    image(
        "map_coordinates",
        rng.integers(0, 9, size=(5, 5)).astype("int32"),
        rng.uniform(0, 4, size=(2, 6)),
        1,
        label="int32",
    ),
]
for mode in ("nearest", "wrap", "mirror", "reflect"):
    CASES.append(
        image(
            "map_coordinates",
            f32(6, 7),
            rng.uniform(-9, 15, size=(2, 12)),
            1,
            fill_mode=mode,
            label=mode,
        )
    )
for mode in ("constant", "nearest", "wrap", "mirror", "reflect"):
    CASES.append(image("affine_transform", IMGS, PAIR, fill_mode=mode, label=mode))
CASES += [
    image(
        "affine_transform",
        IMGS,
        PAIR,
        interpolation="nearest",
        fill_value=0.3,
        label="nearest_fill",
    ),
    image("affine_transform", IMGS_CF, PAIR, data_format="channels_first", label="cf"),
    image("affine_transform", ONE, SHIFT, label="single"),
    image("perspective_transform", IMGS, CORNERS, MOVED, atol=1e-4),
    image(
        "perspective_transform",
        IMGS,
        np.stack([CORNERS, MOVED]),
        np.stack([MOVED, CORNERS]),
        interpolation="nearest",
        label="batch_nearest",
        atol=1e-4,
    ),
    image(
        "perspective_transform",
        IMGS_CF,
        CORNERS,
        MOVED,
        fill_value=0.5,
        data_format="channels_first",
        label="cf",
        atol=1e-4,
    ),
    image(
        "perspective_transform",
        ONE,
        CORNERS[:, ::-1].copy(),
        MOVED[:, ::-1].copy(),
        label="single",
        atol=1e-4,
    ),
    # Unseeded, so that Keras's torch backend and ours both draw from torch's global
    # generator (the sweep seeds it before each call); seeded calls are tested on their own.
    image("elastic_transform", IMGS, alpha=2.0, sigma=1.0, label="small"),
    image(
        "elastic_transform",
        IMGS,
        interpolation="nearest",
        fill_mode="constant",
        fill_value=0.5,
        label="nearest_constant",
    ),
    image(
        "elastic_transform",
        IMGS_CF,
        alpha=5.0,
        sigma=2.0,
        fill_mode="wrap",
        data_format="channels_first",
        label="cf",
    ),
    image(
        "scale_and_translate",
        IMGS,
        (2, 5, 4, 3),
        np.array([0.5, 0.4], "float32"),
        np.array([0.0, 0.0], "float32"),
        (1, 2),
        "bilinear",
    ),
    image(
        "scale_and_translate",
        IMGS,
        (2, 13, 15, 3),
        np.array([1.6, 1.5], "float32"),
        np.array([0.5, -1.0], "float32"),
        (1, 2),
        "bicubic",
        antialias=False,
        label="cubic_up",
    ),
    image(
        "scale_and_translate",
        IMGS,
        (2, 5, 10, 3),
        np.array([0.6], "float32"),
        np.array([0.2], "float32"),
        (1,),
        "lanczos3",
        label="lanczos3",
    ),
    image(
        "scale_and_translate",
        IMGS,
        (2, 8, 6, 3),
        np.array([0.6], "float32"),
        np.array([0.0], "float32"),
        (-2,),
        "lanczos5",
        label="lanczos5_negative_dim",
    ),
    image(
        "scale_and_translate",
        UINT8,
        (2, 4, 5, 3),
        np.array([0.7, 0.6], "float32"),
        np.array([0.0, 0.0], "float32"),
        (1, 2),
        "linear",
        label="uint8",
    ),
]
