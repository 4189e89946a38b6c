"""Cases for the product, sorting and searching ops of ``keras.ops.numpy``.

``NUMPY_REFERENCE`` holds the cases where distkeras follows numpy and Keras's torch backend
raises or differs: N-D ``dot``, ``cross`` with 2-vectors or ``axisa/axisb/axisc``.
"""

import numpy as np

from tests.ops.keras_reference import Case

DTYPES = ("float32", "int32")
rng = np.random.default_rng(5)


def arr(shape, dtype):
    if dtype == "int32":
        return rng.integers(-4, 5, size=shape).astype(dtype)
    return rng.normal(size=shape).astype(dtype)


def distinct(shape, dtype):
    """Integral values without ties, so every sort order and partition is unique."""
    return rng.permutation(int(np.prod(shape))).reshape(shape).astype(dtype) - 3


def double(x):
    return x * 2 + 1


def scaled(x, factor):
    return x * factor


def weighted(x, y):
    return (x * y).sum()


CASES: list[Case] = []
NUMPY_REFERENCE: dict = {}
# The arguments the sweep calls each vectorized function with.
VECTORIZE_ARGS: dict = {}


def add(name, *args, label="", **kwargs):
    CASES.append(Case(name, args, kwargs, module="numpy", label=label))


for dt in DTYPES:
    A, B, V, W = arr((3, 4), dt), arr((4, 2), dt), arr((4,), dt), arr((4,), dt)
    T3, P3, Q3 = arr((2, 3, 4), dt), arr((5, 3), dt), arr((5, 3), dt)
    add("matmul", A, B, label=dt)
    add("matmul", T3, B, label=f"{dt}-batched")
    add("matmul", V, B, label=f"{dt}-vector")
    add("matmul", A, V, label=f"{dt}-matvec")
    add("dot", A, B, label=dt)
    add("dot", V, W, label=f"{dt}-vectors")
    add("dot", A, np.array(3, dt), label=f"{dt}-scalar")
    add("dot", T3, V, label=f"{dt}-nd-1d")
    add("dot", T3, arr((2, 4, 3), dt), label=f"{dt}-nd-nd")
    NUMPY_REFERENCE[f"numpy.dot[{dt}-nd-nd]"] = np.dot
    add("inner", V, W, label=dt)
    add("inner", A, arr((2, 4), dt), label=f"{dt}-2d")
    add("vdot", V, W, label=dt)
    add("vdot", A, arr((3, 4), dt), label=f"{dt}-flat")
    NUMPY_REFERENCE[f"numpy.vdot[{dt}-flat]"] = np.vdot  # Keras's torch backend needs 1-D
    add("outer", V, arr((3,), dt), label=dt)
    add("outer", A, B, label=f"{dt}-flat")
    add("kron", A, arr((2, 2), dt), label=dt)
    add("kron", V, W, label=f"{dt}-1d")
    add("tensordot", A, arr((4, 3), dt), 1, label=dt)
    add("tensordot", T3, arr((3, 4, 2), dt), label=f"{dt}-default")
    add("tensordot", T3, arr((4, 2), dt), axes=([-1], [0]), label=f"{dt}-neg")
    add("tensordot", T3, arr((3, 2), dt), axes=(1, 0), label=f"{dt}-int-pair")
    add("einsum", "ij,jk->ik", A, B, label=dt)
    add("einsum", "bij->bji", T3, label=f"{dt}-transpose")
    add("einsum", "i,i->", V, W, label=f"{dt}-dot")
    add("einsum", "...j,j->...", T3, V, label=f"{dt}-ellipsis")
    add("cross", P3, Q3, label=dt)
    add("cross", arr((2, 5, 3), dt), arr((5, 3), dt), axis=-1, label=f"{dt}-broadcast")
    NUMPY_REFERENCE[f"numpy.cross[{dt}-broadcast]"] = np.cross
    add("cross", arr((3, 5), dt), arr((3, 5), dt), axis=0, label=f"{dt}-axis")
    add("cross", arr((3, 5), dt), arr((5, 3), dt), axisa=0, axisc=0, label=f"{dt}-axisa")
    NUMPY_REFERENCE[f"numpy.cross[{dt}-axisa]"] = np.cross
    add("cross", arr((4, 2), dt), arr((4, 2), dt), label=f"{dt}-2d")
    NUMPY_REFERENCE[f"numpy.cross[{dt}-2d]"] = np.cross
    add("cross", arr((4, 2), dt), arr((4, 3), dt), label=f"{dt}-2-3")
    NUMPY_REFERENCE[f"numpy.cross[{dt}-2-3]"] = np.cross
    add("correlate", arr((6,), dt), arr((3,), dt), label=dt)
    add("correlate", arr((6,), dt), arr((3,), dt), mode="same", label=f"{dt}-same")
    add("correlate", arr((5,), dt), arr((3,), dt), mode="full", label=f"{dt}-full")
    add("correlate", arr((3,), dt), arr((5,), dt), mode="full", label=f"{dt}-longer")
    add("trapezoid", A, label=dt)
    add("trapezoid", A, dx=0.5, axis=0, label=f"{dt}-dx")
    add("trapezoid", A, np.arange(4, dtype=dt) ** 2, label=f"{dt}-x")
    add("trapezoid", T3, axis=-2, label=f"{dt}-neg")
    add("slogdet", (arr((3, 3), "float32") + 3 * np.eye(3, dtype="float32")), label=dt)
    D2, D3 = distinct((3, 4), dt), distinct((2, 3, 4), dt)
    add("sort", arr((3, 4), dt), label=dt)
    add("sort", D3, axis=0, label=f"{dt}-axis")
    add("sort", D3, axis=None, label=f"{dt}-flat")
    add("sort", D3, -2, label=f"{dt}-neg")
    add("argsort", D2, label=dt)
    add("argsort", D3, axis=1, label=f"{dt}-axis")
    add("argsort", D3, axis=None, label=f"{dt}-flat")
    add("argsort", np.array([2, 1, 2, 1, 0], dt), label=f"{dt}-stable")
    add("argpartition", D2, 1, label=dt)
    add("argpartition", D3, 2, axis=-1, label=f"{dt}-neg")
    add("argpartition", D3, kth=0, axis=0, label=f"{dt}-axis")
    add("argpartition", D2, 5, axis=None, label=f"{dt}-flat")
    seq = np.array([-3, -1, 0, 2, 2, 5], dt)
    add("searchsorted", seq, np.array([[-4, 2], [1, 9]], dt), label=dt)
    add("searchsorted", seq, np.array([2, 0, 5], dt), side="right", label=f"{dt}-right")
    U = np.array([[3, 1, 3], [2, 1, 2], [3, 1, 3]], dt)
    add("unique", U, label=dt)
    add("unique", U, return_counts=True, return_inverse=True, label=f"{dt}-inverse")
    add("unique", U[0], return_index=True, label=f"{dt}-index")  # Keras: 1-D only
    add("unique", U.ravel(), return_index=True, return_inverse=True, label=f"{dt}-index-inverse")
    add("unique", U, axis=0, return_counts=True, label=f"{dt}-axis")
    add("unique", U, size=5, fill_value=-1, label=f"{dt}-size-pad")
    add("unique", U, size=2, return_counts=True, label=f"{dt}-size-cut")
    add("vectorize", double, label=dt)
    VECTORIZE_ARGS[f"numpy.vectorize[{dt}]"] = (arr((2, 3), dt),)
add("matmul", np.ones((2, 3), "int8"), np.ones((3, 2), "int8"), label="int8")
add("matmul", np.ones((2, 3), "int32"), np.ones((3, 2), "float32"), label="mixed")
add("einsum", "ij,j->i", np.ones((2, 3), "int8"), np.ones(3, "int8"), label="int8")
add("dot", np.array([True, False]), np.array([True, True]), label="bool")
add("sort", np.array([True, False, True]), label="bool")
add("argsort", np.array([True, False, True]), label="bool")
add("vectorize", weighted, signature="(n),(n)->()", label="signature")
VECTORIZE_ARGS["numpy.vectorize[signature]"] = (arr((2, 3, 4), "float32"), arr((4,), "float32"))
add("vectorize", scaled, excluded={1}, label="excluded")
VECTORIZE_ARGS["numpy.vectorize[excluded]"] = (arr((3, 2), "float32"), 3)

# Python lists and scalars convert as Keras converts them (ints -> int32, floats -> floatx).
add("matmul", [[1.0, 2.0]], [[3.0], [4.0]], label="lists")
add("dot", 2, 3.5, label="scalars")
add("outer", [1, 2], [3, 4], label="lists")
add("einsum", "i,i->", [1.0, 2.0], [3.0, 4.0], label="lists")
add("sort", [3, 1, 2], label="list")
add("argsort", [3.5, 1, 2], label="list")
add("kron", [1, 2], [[1], [2]], label="lists")
add("tensordot", [[1, 2], [3, 4]], [[1, 0], [0, 1]], label="lists")

# Keras's torch backend squeezes a length-1 correlation to a scalar; numpy keeps shape (1,).
add("correlate", np.arange(3, dtype="float32"), np.ones(3, "float32"), label="equal-length")
NUMPY_REFERENCE["numpy.correlate[equal-length]"] = np.correlate
