"""Cases for ``keras.ops.linalg`` (also exported flat as ``keras.ops.<name>``)."""

import numpy as np

from tests.ops.keras_reference import Case

rng = np.random.default_rng(1)
A = rng.normal(size=(4, 4)).astype("float32")
SPD = (A @ A.T + 4 * np.eye(4)).astype("float32")
BATCH_SPD = np.stack([SPD, SPD + np.eye(4, dtype="float32")])
RECT = rng.normal(size=(5, 3)).astype("float32")
WIDE = rng.normal(size=(3, 5)).astype("float32")
B = rng.normal(size=(4,)).astype("float32")
BM = rng.normal(size=(4, 2)).astype("float32")
LOWER = np.tril(A) + 4 * np.eye(4, dtype="float32")
SYM = (A + A.T).astype("float32")
RANK2 = np.outer(np.arange(1, 5), np.arange(1, 4)).astype("float32")
V = rng.normal(size=(2, 3, 4)).astype("float32")
INT = rng.integers(-4, 5, size=(3, 4)).astype("int32")
L = "linalg"

CASES = [
    Case("cholesky", (SPD,), module=L, atol=1e-4),
    Case("cholesky", (BATCH_SPD,), {"upper": True}, module=L, label="upper_batch", atol=1e-4),
    Case("cholesky_inverse", (np.linalg.cholesky(SPD),), module=L, atol=1e-4),
    Case(
        "cholesky_inverse",
        (np.linalg.cholesky(SPD).T.copy(),),
        {"upper": True},
        module=L,
        label="upper",
        atol=1e-4,
    ),
    Case("det", (A,), module=L, atol=1e-4),
    Case("det", (BATCH_SPD,), module=L, label="batch", atol=1e-2),
    Case("eigh", (SYM,), module=L, atol=1e-4),
    Case("inv", (SPD,), module=L, atol=1e-4),
    Case("inv", (A.astype("float64"),), module=L, label="f64"),
    Case("lu_factor", (A,), module=L, atol=1e-4),
    Case("norm", (V,), module=L),
    Case("norm", (V,), {"axis": -1}, module=L, label="vector"),
    Case("norm", (V,), {"axis": (1, 2), "ord": "fro", "keepdims": True}, module=L, label="fro"),
    Case("norm", (A,), {"ord": "nuc"}, module=L, label="nuc", atol=1e-4),
    Case("norm", (A,), {"ord": 1}, module=L, label="ord1"),
    Case("norm", (A,), {"ord": float("inf")}, module=L, label="inf"),
    Case("norm", (A,), {"ord": -2}, module=L, label="ord_m2", atol=1e-4),
    Case("norm", (B,), {"ord": 3}, module=L, label="vector_ord3"),
    Case("norm", (B,), {"ord": 0}, module=L, label="vector_ord0"),
    Case("norm", (INT,), module=L, label="int"),
    Case("norm", (INT.astype("int64"),), {"axis": 0}, module=L, label="int64"),
    Case("qr", (RECT,), module=L, atol=1e-4),
    Case("qr", (RECT,), {"mode": "complete"}, module=L, label="complete", atol=1e-4),
    Case("solve", (SPD, B), module=L, atol=1e-4),
    Case("solve", (SPD, BM), module=L, label="matrix", atol=1e-4),
    Case("solve_triangular", (LOWER, B), {"lower": True}, module=L, atol=1e-4),
    Case("solve_triangular", (LOWER.T.copy(), BM), module=L, label="upper", atol=1e-4),
    Case("svd", (RECT,), {"full_matrices": False}, module=L, atol=1e-4),
    Case("svd", (WIDE,), {"compute_uv": False}, module=L, label="values", atol=1e-4),
    Case("lstsq", (RECT, rng.normal(size=(5,)).astype("float32")), module=L, atol=1e-4),
    Case(
        "lstsq",
        (RANK2, rng.normal(size=(4, 2)).astype("float32")),
        {"rcond": 1e-3},
        module=L,
        label="rcond",
        atol=1e-4,
    ),
    Case("matrix_rank", (RANK2,), module=L),
    Case("matrix_rank", (np.stack([A, SPD]),), module=L, label="batch"),
    Case("matrix_rank", (A,), {"tol": 100.0}, module=L, label="tol"),
    Case("pinv", (RECT,), module=L, atol=1e-4),
    Case("pinv", (RANK2,), {"rcond": 1e-3}, module=L, label="rcond", atol=1e-4),
    Case("eig", (A,), module=L, atol=1e-4),
]
