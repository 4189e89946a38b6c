"""Resampling image ops of ``keras.ops.image``: map_coordinates and the warps built on it.

Interpolation is scipy's ``map_coordinates`` (order 0 nearest, order 1 linear) with Keras's
fill modes: "constant" (``fill_value`` outside), "nearest", "wrap", "mirror", "reflect".
Warps sample all channels of a batch with one gather per interpolation corner.
"""

from __future__ import annotations

import functools
import itertools
import operator

import torch

from distkeras.ops.dispatch import keras_op
from distkeras.ops.image_util import batched, check_image_rank, gaussian_blur_nchw
from distkeras.ops.nn_util import standardize_data_format, to_tensor

__all__ = [
    "affine_transform",
    "elastic_transform",
    "map_coordinates",
    "perspective_transform",
    "scale_and_translate",
]

_ORDERS = {"nearest": 0, "bilinear": 1}
FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


def _mirror(index, size):
    period = size - 1  # a triangle wave over [0, size - 1]
    return torch.abs((index + period) % (2 * period) - period)


def _reflect(index, size):
    return torch.floor_divide(_mirror(2 * index + 1, 2 * size + 1) - 1, 2)


_FIXERS = {
    "constant": lambda index, size: torch.clip(index, 0, size - 1),
    "nearest": lambda index, size: torch.clip(index, 0, size - 1),
    "wrap": lambda index, size: index % size,
    "mirror": _mirror,
    "reflect": _reflect,
}


def _nodes(coordinate: torch.Tensor, order: int):
    """[(index, weight)] of the 1-D interpolation at ``coordinate``."""
    if not coordinate.is_floating_point():
        return [(coordinate.to(torch.int64), 1)]  # exact positions: one node, any order
    if order == 0:
        return [(torch.round(coordinate).to(torch.int64), 1)]
    lower = torch.floor(coordinate)
    upper_weight = coordinate - lower
    index = lower.to(torch.int64)
    return [(index, 1 - upper_weight), (index + 1, upper_weight)]


def _check(order, fill_mode):
    if fill_mode not in _FIXERS:
        raise ValueError(
            f"Invalid value for argument `fill_mode`. Expected one of {set(_FIXERS)}. "
            f"Received: fill_mode={fill_mode!r}"
        )
    if order not in (0, 1):
        raise NotImplementedError(
            f"map_coordinates supports order 0 or 1 only. Received: order={order!r}"
        )


def sample(inputs: torch.Tensor, coordinates, order: int, fill_mode="constant", fill_value=0):
    """``inputs`` interpolated at ``coordinates`` (one tensor per input axis, all broadcast
    together); integer coordinate tensors index exactly."""
    _check(order, fill_mode)
    if not inputs.is_floating_point() and isinstance(fill_value, (int, float)):
        fill_value = int(fill_value)
    per_axis = []
    for coordinate, size in zip(coordinates, inputs.shape):
        nodes = []
        for index, weight in _nodes(coordinate, order):
            valid = (index >= 0) & (index < size) if fill_mode == "constant" else None
            nodes.append((_FIXERS[fill_mode](index, size), valid, weight))
        per_axis.append(nodes)
    total = None
    for corner in itertools.product(*per_axis):
        indices, valids, weights = zip(*corner)
        value = inputs[indices]
        valids = [v for v in valids if v is not None]
        if valids:
            value = torch.where(functools.reduce(operator.and_, valids), value, fill_value)
        term = functools.reduce(operator.mul, weights) * value
        total = term if total is None else total + term
    if not inputs.is_floating_point():
        total = total if not total.is_floating_point() else torch.round(total)
    return total.to(inputs.dtype)


@keras_op("image")
def map_coordinates(inputs, coordinates, order, fill_mode="constant", fill_value=0):
    x = to_tensor(inputs)
    coordinates = [to_tensor(c) for c in coordinates]
    if len(coordinates) != x.ndim:
        raise ValueError(
            "First dim of `coordinates` must be the same as the rank of `inputs`. Received "
            f"inputs with shape: {tuple(x.shape)} and coordinate leading dim of "
            f"{len(coordinates)}"
        )
    if coordinates[0].ndim < 1:
        raise ValueError(
            "Invalid coordinates rank: expected at least rank 2. Received input with shape: "
            f"{(len(coordinates),)}"
        )
    return sample(x, coordinates, order, fill_mode, fill_value)


def _warp(images, y, x, order, fill_mode, fill_value):
    """NHWC ``images`` sampled at float (N, H', W') positions ``y``, ``x``, all channels."""
    n, _, _, c = images.shape
    batch = torch.arange(n, device=images.device).reshape(n, 1, 1, 1)
    channel = torch.arange(c, device=images.device).reshape(1, 1, 1, c)
    return sample(
        images, [batch, y[..., None], x[..., None], channel], order, fill_mode, fill_value
    )


def _interpolation(interpolation):
    if interpolation not in _ORDERS:
        raise ValueError(
            f"Invalid value for argument `interpolation`. Expected one of {set(_ORDERS)}. "
            f"Received: interpolation={interpolation!r}"
        )
    return _ORDERS[interpolation]


def _grid(h, w, dtype, device):
    ys = torch.arange(h, dtype=dtype, device=device).reshape(1, h, 1)
    xs = torch.arange(w, dtype=dtype, device=device).reshape(1, 1, w)
    return ys, xs


@keras_op("image")
def affine_transform(
    images,
    transform,
    interpolation="bilinear",
    fill_mode="constant",
    fill_value=0,
    data_format=None,
):
    data_format = standardize_data_format(data_format)
    order = _interpolation(interpolation)
    if fill_mode not in FILL_MODES:
        raise ValueError(
            f"Invalid value for argument `fill_mode`. Expected one of {set(FILL_MODES)}. "
            f"Received: fill_mode={fill_mode!r}"
        )
    images, transform = to_tensor(images), to_tensor(transform)
    check_image_rank(images)
    if transform.ndim not in (1, 2):
        raise ValueError(
            "Invalid transform rank: expected rank 1 (single transform) or rank 2 (batch of "
            f"transforms). Received input with shape: transform.shape={tuple(transform.shape)}"
        )
    x, done = batched(images, data_format, "channels_last")
    t = transform.reshape(-1, 8)
    ys, xs = _grid(x.shape[1], x.shape[2], t.dtype, t.device)
    col = [t[:, i].reshape(-1, 1, 1) for i in range(8)]
    # Output (x, y) reads input ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k),
    # k = c0 x + c1 y + 1.
    k = col[6] * xs + col[7] * ys + 1
    x_in = (col[0] * xs + col[1] * ys + col[2]) / k
    y_in = (col[3] * xs + col[4] * ys + col[5]) / k
    return done(_warp(x, y_in, x_in, order, fill_mode, fill_value))


def _homography(start, end):
    """The 8 coefficients mapping ``end`` corners onto ``start`` corners (N, 8)."""
    dtype = start.dtype if start.is_floating_point() else torch.float32
    compute = torch.promote_types(dtype, torch.float32)
    start, end = start.to(compute), end.to(compute)
    zeros, ones = torch.zeros_like(end[:, 0, 0]), torch.ones_like(end[:, 0, 0])
    rows, target = [], []
    for i in range(4):
        ex, ey = end[:, i, 0], end[:, i, 1]
        sx, sy = start[:, i, 0], start[:, i, 1]
        rows.append(torch.stack([ex, ey, ones, zeros, zeros, zeros, -sx * ex, -sx * ey], -1))
        rows.append(torch.stack([zeros, zeros, zeros, ex, ey, ones, -sy * ex, -sy * ey], -1))
        target += [sx, sy]
    solution = torch.linalg.solve(torch.stack(rows, 1), torch.stack(target, -1)[..., None])
    return solution.reshape(-1, 8).to(dtype)


@keras_op("image")
def perspective_transform(
    images, start_points, end_points, interpolation="bilinear", fill_value=0, data_format=None
):
    data_format = standardize_data_format(data_format)
    images = to_tensor(images)
    start, end = to_tensor(start_points, images.dtype), to_tensor(end_points, images.dtype)
    order = _interpolation(interpolation)
    check_image_rank(images)
    for name, points in (("start_points", start), ("end_points", end)):
        if tuple(points.shape[-2:]) != (4, 2) or points.ndim not in (2, 3):
            raise ValueError(
                f"Invalid {name} shape: expected (4,2) for a single image or (N,4,2) for a "
                f"batch. Received shape: {tuple(points.shape)}"
            )
    if start.shape != end.shape:
        raise ValueError(
            "start_points and end_points must have the same shape. Received "
            f"start_points.shape={tuple(start.shape)}, end_points.shape={tuple(end.shape)}"
        )
    x, done = batched(images, data_format, "channels_last")
    coeffs = _homography(start.reshape(-1, 4, 2), end.reshape(-1, 4, 2))
    coeffs = coeffs.expand(x.shape[0], 8) if coeffs.shape[0] == 1 else coeffs
    ys, xs = _grid(x.shape[1], x.shape[2], x.dtype, x.device)
    a = [coeffs[:, i].reshape(-1, 1, 1) for i in range(8)]
    denom = a[6] * xs + a[7] * ys + 1.0
    x_in = (a[0] * xs + a[1] * ys + a[2]) / denom
    y_in = (a[3] * xs + a[4] * ys + a[5]) / denom
    return done(_warp(x, y_in, x_in, order, "constant", fill_value))


def _generator(seed, device):
    """None for an unseeded call (torch's global generator, as Keras's torch backend uses),
    else a generator seeded from ``seed`` (an int or a ``SeedGenerator``)."""
    if seed is None:
        return None
    try:
        from distkeras.random.seed_generator import draw_seed
    except ImportError:  # distkeras.random not present: plain ints only
        draw_seed = None
    value = draw_seed(seed) if draw_seed is not None else int(seed)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(value))
    return generator


@keras_op("image")
def elastic_transform(
    images,
    alpha=20.0,
    sigma=5.0,
    interpolation="bilinear",
    fill_mode="reflect",
    fill_value=0.0,
    seed=None,
    data_format=None,
):
    data_format = standardize_data_format(data_format)
    order = _interpolation(interpolation)
    if fill_mode not in FILL_MODES:
        raise ValueError(
            f"Invalid value for argument `fill_mode`. Expected one of {set(FILL_MODES)}. "
            f"Received: fill_mode={fill_mode!r}"
        )
    images = to_tensor(images)
    check_image_rank(images)
    alpha, sigma = float(alpha), float(sigma)
    size = int(6 * sigma) | 1
    x, done = batched(images, data_format, "channels_last")
    n, h, w, _ = x.shape
    generator = _generator(seed, x.device)
    # Two smoothed Gaussian displacement fields, drawn as Keras's torch backend draws them.
    fields = []
    for _ in range(2):
        noise = torch.normal(
            0.0, 1.0, size=(n, h, w), generator=generator, dtype=x.dtype, device=x.device
        )
        noise = noise * sigma
        fields.append(gaussian_blur_nchw(noise[:, None], (size, size), (sigma, sigma))[:, 0])
    ys, xs = _grid(h, w, x.dtype, x.device)
    y_in, x_in = ys + alpha * fields[1], xs + alpha * fields[0]
    return done(_warp(x, y_in, x_in, order, fill_mode, fill_value))


def _triangle(x):
    return torch.clamp(1 - torch.abs(x), min=0)


def _keys_cubic(x):
    out = ((1.5 * x - 2.5) * x) * x + 1.0
    out = torch.where(x >= 1.0, ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0, out)
    return torch.where(x >= 2.0, 0.0, out)


def _lanczos(radius):
    def kernel(x):
        y = radius * torch.sin(torch.pi * x) * torch.sin(torch.pi * x / radius)
        safe = torch.where(x != 0, torch.pi**2 * x**2, 1)
        out = torch.where(x > 1e-3, y / safe, 1)
        return torch.where(x > radius, 0.0, out)

    return kernel


_KERNELS = {
    "linear": _triangle,
    "cubic": _keys_cubic,
    "lanczos3": _lanczos(3.0),
    "lanczos5": _lanczos(5.0),
}
_METHODS = {
    "linear": "linear",
    "bilinear": "linear",
    "trilinear": "linear",
    "cubic": "cubic",
    "bicubic": "cubic",
    "tricubic": "cubic",
    "lanczos3": "lanczos3",
    "lanczos5": "lanczos5",
}


def _weights(in_size, out_size, scale, translation, kernel, antialias):
    """(in_size, out_size) resampling weights of one axis (JAX's scale_and_translate)."""
    inv_scale = 1.0 / scale
    kernel_scale = torch.clamp(inv_scale, min=1.0) if antialias else 1.0
    dtype, device = scale.dtype, scale.device
    sample_f = (
        (torch.arange(out_size, dtype=dtype, device=device) + 0.5) * inv_scale
        - translation * inv_scale
        - 0.5
    )
    distance = sample_f[None, :] - torch.arange(in_size, dtype=dtype, device=device)[:, None]
    weights = kernel(torch.abs(distance) / kernel_scale)
    total = weights.sum(dim=0, keepdim=True)
    eps = 1000.0 * torch.finfo(torch.float32).eps
    weights = torch.where(torch.abs(total) > eps, weights / torch.where(total != 0, total, 1), 0)
    inside = (sample_f >= -0.5) & (sample_f <= in_size - 0.5)
    return torch.where(inside[None, :], weights, 0)


@keras_op("image")
def scale_and_translate(
    images, output_shape, scale, translation, spatial_dims, method, antialias=True
):
    if method not in _METHODS:
        raise ValueError(
            f"Invalid value for argument `method`. Expected one of {set(_METHODS)}. "
            f"Received: method={method!r}"
        )
    kernel = _KERNELS[_METHODS[method]]
    x = to_tensor(images)
    scale, translation = to_tensor(scale), to_tensor(translation)
    dtype = torch.promote_types(scale.dtype, translation.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float32
    scale, translation = scale.to(dtype), translation.to(dtype)
    if len(spatial_dims) == 0:
        return x
    integer = not x.is_floating_point()
    out = x.to(torch.float32) if integer else x
    for i, d in enumerate(spatial_dims):
        d = d % x.ndim
        w = _weights(x.shape[d], output_shape[d], scale[i], translation[i], kernel, antialias)
        out = torch.tensordot(out, w.to(out.dtype), dims=([d], [0])).movedim(-1, d)
    if integer:
        out = torch.clip(torch.round(out), x.min(), x.max()).to(x.dtype)
    return out
