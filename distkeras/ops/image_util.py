"""Helpers of the image ops: batching single images, layouts, the Gaussian kernel."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__: list[str] = []


def check_image_rank(images: torch.Tensor, name: str = "images") -> None:
    if images.ndim not in (3, 4):
        raise ValueError(
            f"Invalid {name} rank: expected rank 3 (single image) or rank 4 (batch of images). "
            f"Received input with shape: {name}.shape={tuple(images.shape)}"
        )


def batched(images: torch.Tensor, data_format: str, layout: str) -> tuple[torch.Tensor, Callable]:
    """``images`` as a 4-D batch in ``layout``, and the function that undoes both changes."""
    single = images.ndim == 3
    x = images[None] if single else images
    move = data_format != layout
    if move:
        x = x.movedim(1, -1) if layout == "channels_last" else x.movedim(-1, 1)

    def restore(y: torch.Tensor) -> torch.Tensor:
        if move:
            y = y.movedim(-1, 1) if layout == "channels_last" else y.movedim(1, -1)
        return y[0] if single else y

    return x, restore


def gaussian_kernel1d(size: int, sigma, dtype, device) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur_nchw(x: torch.Tensor, kernel_size, sigma) -> torch.Tensor:
    """Depthwise Gaussian blur of NCHW ``x``; the output keeps the input's size."""
    kh, kw = kernel_size
    rows = gaussian_kernel1d(kh, sigma[0], x.dtype, x.device)
    cols = gaussian_kernel1d(kw, sigma[1], x.dtype, x.device)
    channels = x.shape[1]
    kernel = torch.outer(rows, cols).expand(channels, 1, kh, kw)
    # Zero padding, the odd cell of an even kernel after ("same").
    x = F.pad(x, ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2))
    return F.conv2d(x, kernel, groups=channels)
