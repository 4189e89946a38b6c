"""Decompositions, solves and norms of ``keras.ops.linalg`` on torch.linalg.

Each op is exported both as ``distkeras.ops.linalg.<name>`` and flat as ``distkeras.ops.<name>``,
as Keras does. Inputs are converted with Keras's rules (numpy float64 stays float64, Python
floats become floatx), and errors for wrong ranks or shapes are ValueErrors naming the shape.
"""

from __future__ import annotations

import torch

from distkeras import backend
from distkeras.ops import dtypes
from distkeras.ops.dispatch import keras_op

__all__ = [
    "cholesky",
    "cholesky_inverse",
    "det",
    "eig",
    "eigh",
    "inv",
    "jvp",
    "lstsq",
    "lu_factor",
    "matrix_rank",
    "norm",
    "pinv",
    "qr",
    "solve",
    "solve_triangular",
    "svd",
]


def _tensor(x) -> torch.Tensor:
    return dtypes.convert_to_tensor(x)


def _check_matrix(x: torch.Tensor, square: bool = True) -> None:
    if x.dim() < 2:
        raise ValueError(
            f"Expected input to have rank >= 2. Received input with shape {tuple(x.shape)}."
        )
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"Expected a square matrix. Received non-square input with shape {tuple(x.shape)}"
        )


def _check_system(a: torch.Tensor, b: torch.Tensor) -> None:
    _check_matrix(a)
    if b.dim() < 1:
        raise ValueError(f"Expected `b` to have rank >= 1. Received scalar input {b}.")
    if a.dim() == b.dim() and a.shape[-2] != b.shape[-2]:
        raise ValueError(
            "Incompatible shapes between `a` and `b`: expected a.shape[-2] == b.shape[-2]. "
            f"Received: a.shape={tuple(a.shape)}, b.shape={tuple(b.shape)}"
        )
    if a.dim() == b.dim() + 1 and a.shape[-1] != b.shape[-1]:
        raise ValueError(
            "Incompatible shapes between `a` and `b`: expected a.shape[-1] == b.shape[-1]. "
            f"Received: a.shape={tuple(a.shape)}, b.shape={tuple(b.shape)}"
        )


@keras_op("linalg")
def cholesky(x, upper=False) -> torch.Tensor:
    """The Cholesky factor of a symmetric positive-definite matrix (lower unless ``upper``)."""
    x = _tensor(x)
    _check_matrix(x)
    try:
        return torch.linalg.cholesky(x, upper=upper)
    except RuntimeError as err:  # not positive definite
        raise ValueError(f"Cholesky decomposition failed: {err}") from err


@keras_op("linalg")
def cholesky_inverse(x, upper=False) -> torch.Tensor:
    """The inverse of ``A`` given its Cholesky factor ``x``."""
    x = _tensor(x)
    _check_matrix(x)
    try:
        return torch.cholesky_inverse(x, upper=upper)
    except RuntimeError as err:
        raise ValueError(f"Cholesky inverse failed: {err}") from err


@keras_op("linalg")
def det(x) -> torch.Tensor:
    x = _tensor(x)
    _check_matrix(x)
    return torch.det(x)


@keras_op("linalg")
def eig(x) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues and eigenvectors of a general square matrix (complex results)."""
    x = _tensor(x)
    _check_matrix(x)
    return torch.linalg.eig(x)


@keras_op("linalg")
def eigh(x) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors of a symmetric/Hermitian matrix."""
    x = _tensor(x)
    _check_matrix(x)
    return torch.linalg.eigh(x)


@keras_op("linalg")
def inv(x) -> torch.Tensor:
    x = _tensor(x)
    _check_matrix(x)
    return torch.linalg.inv(x)


@keras_op("linalg")
def lu_factor(x) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed LU factors and 0-based pivots (torch returns 1-based pivots; Keras shifts them)."""
    x = _tensor(x)
    _check_matrix(x, square=False)
    lu, pivots = torch.linalg.lu_factor(x)
    return lu, pivots - 1


_MATRIX_ORDS = (None, "fro", "nuc", float("inf"), float("-inf"), 1, -1, 2, -2)


@keras_op("linalg")
def norm(x, ord=None, axis=None, keepdims=False) -> torch.Tensor:
    """Vector or matrix norm, as ``numpy.linalg.norm``; integer input gives a float result."""
    if isinstance(ord, str) and ord not in ("fro", "nuc"):
        raise ValueError(f"Invalid `ord` argument. Expected 'fro' or 'nuc'. Received: ord={ord}")
    x = _tensor(x)
    name = dtypes.standardize_dtype(x.dtype)
    out = backend.floatx() if name == "int64" else dtypes.result_type(name, float)
    x = dtypes.cast(x, out)
    axes = [axis] if isinstance(axis, int) else axis
    count = x.dim() if axes is None else len(axes)
    if count == 1 and isinstance(ord, str):
        raise ValueError(f"Invalid `ord` argument for vector norm. Received: ord={ord}")
    if count == 2 and ord not in _MATRIX_ORDS:
        raise ValueError(f"Invalid `ord` argument for matrix norm. Received: ord={ord}")
    return torch.linalg.norm(x, ord=ord, dim=axis, keepdim=keepdims)


@keras_op("linalg")
def qr(x, mode="reduced") -> tuple[torch.Tensor, torch.Tensor]:
    if mode not in ("reduced", "complete"):
        raise ValueError(f"qr: `mode` must be 'reduced' or 'complete'. Received: mode={mode!r}")
    x = _tensor(x)
    _check_matrix(x, square=False)
    return torch.linalg.qr(x, mode=mode)


@keras_op("linalg")
def solve(a, b) -> torch.Tensor:
    """``x`` with ``a @ x == b`` (``b`` a vector or a matrix of right-hand sides)."""
    a, b = _tensor(a), _tensor(b)
    _check_system(a, b)
    return torch.linalg.solve(a, b)


@keras_op("linalg")
def solve_triangular(a, b, lower=False) -> torch.Tensor:
    """``x`` with ``a @ x == b`` for triangular ``a`` (upper unless ``lower``)."""
    a, b = _tensor(a), _tensor(b)
    _check_system(a, b)
    if b.dim() == a.dim() - 1:  # a vector right-hand side: torch wants a column
        return torch.linalg.solve_triangular(a, b.unsqueeze(-1), upper=not lower).squeeze(-1)
    return torch.linalg.solve_triangular(a, b, upper=not lower)


@keras_op("linalg")
def svd(x, full_matrices=True, compute_uv=True):
    """``(u, s, vh)``, or only the singular values ``s`` when ``compute_uv=False``."""
    x = _tensor(x)
    _check_matrix(x, square=False)
    if not compute_uv:
        return torch.linalg.svdvals(x)
    return torch.linalg.svd(x, full_matrices=full_matrices)


@keras_op("linalg")
def lstsq(a, b, rcond=None) -> torch.Tensor:
    """The least-squares solution of ``a @ x = b`` (``a`` of rank 2)."""
    a, b = _tensor(a), _tensor(b)
    if a.dim() != 2:
        raise ValueError(f"Expected a to have rank 2. Received: a.shape={tuple(a.shape)}")
    if b.dim() not in (1, 2):
        raise ValueError(f"Expected b to have rank 1 or 2. Received: b.shape={tuple(b.shape)}")
    if rcond is None:
        return torch.linalg.lstsq(a, b)[0]
    # The SVD-based driver reads rcond as numpy does; CUDA has none, so use pinv there.
    if a.device.type == "cuda":
        return torch.linalg.pinv(a, rtol=rcond) @ b
    return torch.linalg.lstsq(a, b, rcond=rcond, driver="gelsd")[0]


@keras_op("linalg")
def matrix_rank(x, tol=None) -> torch.Tensor:
    """The number of singular values above ``tol`` (int32, one per matrix)."""
    x = _tensor(x)
    _check_matrix(x, square=False)
    return torch.linalg.matrix_rank(x, atol=tol).to(torch.int32)


@keras_op("linalg")
def pinv(x, rcond=None) -> torch.Tensor:
    """The Moore-Penrose pseudo-inverse; ``rcond`` is relative to the largest singular value."""
    x = _tensor(x)
    _check_matrix(x, square=False)
    return torch.linalg.pinv(x, rtol=rcond)


@keras_op("linalg")
def jvp(fun, primals, tangents, has_aux=False):
    """``(fun(*primals), J @ tangents)`` (and the aux output when ``has_aux``), forward mode."""
    return torch.func.jvp(fun, tuple(primals), tuple(tangents), has_aux=has_aux)
