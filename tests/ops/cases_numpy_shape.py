"""Cases for the shape, indexing, joining and splitting ops of ``keras.ops.numpy``.

Generated over float32 and int32 inputs, with axis/keyword variants and negative axes.
``NUMPY_REFERENCE`` maps the ids of cases where distkeras deliberately follows numpy rather
than Keras's torch backend (which is wrong there) to the numpy function to compare against.
"""

import numpy as np

from tests.ops.keras_reference import Case

DTYPES = ("float32", "int32")
rng = np.random.default_rng(7)


def arr(shape, dtype):
    if dtype == "int32":
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.normal(size=shape).astype(dtype)


CASES: list[Case] = []
NUMPY_REFERENCE: dict = {}


def add(name, *args, label="", **kwargs):
    CASES.append(Case(name, args, kwargs, module="numpy", label=label))


for dt in DTYPES:
    A, B, V = arr((3, 4), dt), arr((2, 3, 4), dt), arr((6,), dt)
    S, C4 = arr((4, 4), dt), arr((2, 3, 4, 2), dt)
    # shape queries and reshaping
    add("ndim", B, label=dt)
    add("size", B, label=dt)
    add("reshape", B, (6, 4), label=dt)
    add("reshape", B, (-1,), label=f"{dt}-flat")
    add("reshape", V, 6, label=f"{dt}-int")
    add("reshape", B, (4, -1), label=f"{dt}-infer")
    add("ravel", B, label=dt)
    add("expand_dims", A, 0, label=dt)
    add("expand_dims", A, -1, label=f"{dt}-neg")
    add("expand_dims", A, (0, 2), label=f"{dt}-tuple")
    add("squeeze", arr((1, 3, 1), dt), label=dt)
    add("squeeze", arr((1, 3, 1), dt), axis=-1, label=f"{dt}-neg")
    add("squeeze", arr((1, 3, 1), dt), axis=(0, 2), label=f"{dt}-tuple")
    add("broadcast_to", V, (2, 6), label=dt)
    add("broadcast_to", arr((3, 1), dt), (2, 3, 4), label=f"{dt}-expand")
    add("transpose", B, label=dt)
    add("transpose", B, (1, 0, 2), label=f"{dt}-axes")
    add("transpose", B, axes=(-1, 0, 1), label=f"{dt}-neg")
    add("swapaxes", B, 0, 2, label=dt)
    add("swapaxes", B, -1, 0, label=f"{dt}-neg")
    add("moveaxis", B, 0, -1, label=dt)
    add("moveaxis", C4, (0, 1), (2, 3), label=f"{dt}-tuple")
    add("view", A, "int32" if dt == "float32" else "float32", label=dt)
    add("view", A, dtype="uint8", label=f"{dt}-bytes")
    # joining
    add("concatenate", [A, A], label=dt)
    add("concatenate", [A, arr((3, 2), dt)], axis=-1, label=f"{dt}-neg")
    add("concatenate", (B, B, B), axis=1, label=f"{dt}-tuple")
    add("append", A, A, label=dt)
    add("append", A, arr((1, 4), dt), axis=0, label=f"{dt}-axis")
    add("append", B, B, axis=-1, label=f"{dt}-neg")
    add("stack", [A, A], label=dt)
    add("stack", [A, A, A], axis=-1, label=f"{dt}-neg")
    add("stack", (V, V), axis=1, label=f"{dt}-tuple")
    add("hstack", [A, A], label=dt)
    add("hstack", [V, V], label=f"{dt}-1d")
    add("vstack", [A, A], label=dt)
    add("vstack", [V, V], label=f"{dt}-1d")
    add("dstack", [A, A], label=dt)
    add("dstack", [B, B], label=f"{dt}-3d")
    add("meshgrid", V, arr((3,), dt), label=dt)
    add("meshgrid", V, arr((3,), dt), arr((2,), dt), indexing="ij", label=f"{dt}-ij")
    # splitting
    add("split", V, 3, label=dt)
    add("split", V, [2, 5], label=f"{dt}-indices")
    add("split", B, 2, axis=-1, label=f"{dt}-neg")
    add("split", B, [1], axis=1, label=f"{dt}-axis")
    add("array_split", V, 4, label=dt)
    add("array_split", B, 3, axis=-1, label=f"{dt}-neg")
    add("hsplit", A, 2, label=dt)
    add("hsplit", A, [1, 3], label=f"{dt}-indices")
    add("vsplit", arr((4, 3), dt), 2, label=dt)
    add("vsplit", arr((4, 3), dt), [1], label=f"{dt}-indices")
    add("dsplit", C4, 2, label=dt)
    add("dsplit", B, [1, 3], label=f"{dt}-indices")
    # repeating and rearranging
    add("repeat", A, 2, label=dt)
    add("repeat", A, 2, axis=0, label=f"{dt}-axis")
    add("repeat", A, np.array([1, 0, 2, 3]), axis=-1, label=f"{dt}-array")
    add("repeat", A, [1, 0, 2], axis=0, label=f"{dt}-list")
    NUMPY_REFERENCE[f"numpy.repeat[{dt}-list]"] = np.repeat
    add("tile", A, 2, label=dt)
    add("tile", A, (2, 1, 3), label=f"{dt}-tuple")
    add("roll", V, 2, label=dt)
    add("roll", A, -1, axis=1, label=f"{dt}-axis")
    add("roll", B, (1, 2), axis=(0, -1), label=f"{dt}-tuple")
    add("roll", A, 5, label=f"{dt}-flat")
    add("flip", B, label=dt)
    add("flip", B, axis=-1, label=f"{dt}-neg")
    add("flip", B, axis=(0, 2), label=f"{dt}-tuple")
    add("fliplr", A, label=dt)
    add("flipud", A, label=dt)
    add("flipud", V, label=f"{dt}-1d")
    add("rot90", A, label=dt)
    add("rot90", A, k=-1, label=f"{dt}-k")
    add("rot90", B, k=2, axes=(1, 2), label=f"{dt}-axes")
    add("rot90", B, 3, (-1, 0), label=f"{dt}-neg")
    add("diff", V, label=dt)
    add("diff", A, n=2, axis=0, label=f"{dt}-n")
    add("diff", B, 1, -2, label=f"{dt}-neg")
    # diagonals and triangles
    add("diag", V, label=dt)
    add("diag", V, k=-2, label=f"{dt}-k")
    add("diag", A, label=f"{dt}-2d")
    add("diag", A, 1, label=f"{dt}-2d-k")
    add("diagflat", A, label=dt)
    add("diagflat", V, k=1, label=f"{dt}-k")
    add("diagonal", A, label=dt)
    add("diagonal", B, offset=1, axis1=1, axis2=2, label=f"{dt}-axes")
    add("diagonal", B, -1, -1, 0, label=f"{dt}-neg")
    add("trace", S, label=dt)
    add("trace", B, offset=1, axis1=1, axis2=2, label=f"{dt}-axes")
    add("trace", B, -1, -1, 0, label=f"{dt}-neg")
    add("tril", S, label=dt)
    add("tril", B, k=-1, label=f"{dt}-k")
    add("triu", S, label=dt)
    add("triu", B, 1, label=f"{dt}-k")
    # padding
    add("pad", A, 1, label=dt)
    add("pad", A, ((1, 2), (0, 3)), label=f"{dt}-pairs")
    add("pad", B, (1, 2), constant_values=3, label=f"{dt}-value")
    # Keras's torch backend pads only the last axis for these broadcast forms of pad_width.
    NUMPY_REFERENCE[f"numpy.pad[{dt}]"] = np.pad
    NUMPY_REFERENCE[f"numpy.pad[{dt}-value]"] = np.pad
    add("pad", A, ((2, 2), (3, 1)), mode="reflect", label=f"{dt}-reflect")
    add("pad", V, ((2, 3),), mode="reflect", label=f"{dt}-reflect-1d")
    add("pad", B, ((0, 0), (1, 1), (2, 2)), mode="reflect", label=f"{dt}-reflect-3d")
    # indexing
    add("get_item", B, 1, label=dt)
    add("get_item", B, (slice(None), -1), label=f"{dt}-slice")
    add("get_item", B, (Ellipsis, slice(1, 3)), label=f"{dt}-ellipsis")
    add("get_item", A, (np.array([0, 2]),), label=f"{dt}-array")
    add("take", A, np.array([0, 2, -1], "int32"), label=dt)
    # Keras's torch backend wraps negative flat indices by x.shape[0] instead of x.size.
    NUMPY_REFERENCE[f"numpy.take[{dt}]"] = np.take
    add("take", A, np.array([[0, 1], [3, -2]], "int32"), axis=1, label=f"{dt}-axis")
    add("take", A, np.array([2, 0], "int32"), axis=0, label=f"{dt}-axis0")
    add("take", B, np.array([1, -1], "int32"), axis=-1, label=f"{dt}-neg")
    add("take_along_axis", A, np.argsort(A, axis=1).astype("int32"), axis=1, label=dt)
    add("take_along_axis", B, np.array([[[0], [-1], [2]]], "int32"), -1, label=f"{dt}-neg")
    add("take_along_axis", A, np.array([0, 5, -1], "int32"), label=f"{dt}-flat")
    NUMPY_REFERENCE[f"numpy.take_along_axis[{dt}-flat]"] = lambda x, i: np.take_along_axis(
        x, i, axis=None
    )
    add("where", A > 0, A, -A, label=dt)
    add("where", A > 0, A, 0, label=f"{dt}-scalar")
    add("where", V > 0, label=f"{dt}-one-arg")
    add("select", [A < -0.5, A > 0.5], [A, A * 2], label=dt)
    add("select", [V > 0], [V], default=7, label=f"{dt}-default")
    add("nonzero", A > 0, label=dt)
    add("nonzero", np.where(B > 0, B, 0).astype(dt), label=f"{dt}-values")
    add("isin", A, np.array([0, 1, 2], dt), label=dt)
    add("isin", A, V, invert=True, label=f"{dt}-invert")
    add("isin", np.arange(5).astype(dt), np.array([1, 3], dt), assume_unique=True, label=f"{dt}-u")
    add("unravel_index", np.array([0, 5, 11], dt if dt == "int32" else "int64"), (3, 4), label=dt)

for dt in DTYPES:
    P = (rng.normal(size=(3, 4)) * 5).astype(dt)
    add("pad", P, ((1, 2), (2, 1)), mode="circular", label=f"{dt}-circular")
    for mode in ("maximum", "minimum", "mean", "median", "linear_ramp", "empty"):
        for i, width in enumerate((((1, 2), (3, 0)), 2)):
            add("pad", P, width, mode=mode, label=f"{dt}-{mode}-{i}")
            # Keras's torch backend has none of these modes ("empty": shape and dtype only).
            NUMPY_REFERENCE[f"numpy.pad[{dt}-{mode}-{i}]"] = np.pad
add("pad", np.arange(3, dtype="int32"), ((2, 2),), mode="symmetric", label="symmetric")
add("pad", np.ones((2, 3), "float32"), ((1, 2), (2, 1)), mode="symmetric", label="symmetric-2d")
NUMPY_REFERENCE["numpy.pad[symmetric]"] = np.pad
NUMPY_REFERENCE["numpy.pad[symmetric-2d]"] = np.pad
add("pad", np.arange(6, dtype="float32").reshape(2, 3), 2, mode="edge", label="edge")
add("pad", np.arange(6, dtype="int32").reshape(2, 3), ((1, 0), (4, 2)), mode="wrap", label="wrap")
NUMPY_REFERENCE["numpy.pad[edge]"] = np.pad
NUMPY_REFERENCE["numpy.pad[wrap]"] = np.pad
add("isin", np.array([True, False]), np.array([True]), label="bool")
add("concatenate", [np.ones(2, "int32"), np.ones(3, "float32")], label="mixed")
add("where", np.array([True, False]), np.array([1, 2], "int32"), 1.5, label="weak-float")
add("trace", np.eye(3, dtype="int8"), label="int8")
add("trace", np.eye(3, dtype="bool"), label="bool")
add("size", np.zeros((0, 3), "float32"), label="empty")

# Python lists and scalars convert as Keras converts them (ints -> int32, floats -> floatx).
add("reshape", [1, 2, 3, 4], (2, 2), label="list")
add("concatenate", [[1, 2], [3]], label="lists")
add("stack", [1, 2.5], label="scalars")
add("take", [1.5, 2, 3], [0, -1], label="lists")
add("where", [True, False], 1, 2.5, label="python")
add("isin", [1, 2, 3], [2], label="lists")
add("flip", [1, 2, 3], label="list")
add("diff", [1, 4, 9], label="list")
add("tile", [1, 2], 2, label="list")
add("expand_dims", 3.0, 0, label="scalar")
add("broadcast_to", 2, (2, 2), label="scalar")
for dt in DTYPES:  # numpy's axis=None: join the flattened inputs (Keras's torch backend raises)
    add("concatenate", [arr((2, 2), dt), arr((3,), dt)], axis=None, label=f"{dt}-flat")
    NUMPY_REFERENCE[f"numpy.concatenate[{dt}-flat]"] = np.concatenate
