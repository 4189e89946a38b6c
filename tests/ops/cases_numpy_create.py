"""Cases for the creation and window ops of ``keras.ops.numpy`` (arange, eye, hanning, ...)."""

import numpy as np

from tests.ops.keras_reference import Case

DTYPES = ("float32", "int32")
rng = np.random.default_rng(11)

CASES: list[Case] = []
NUMPY_REFERENCE: dict = {}


def add(name, *args, label="", **kwargs):
    CASES.append(Case(name, args, kwargs, module="numpy", label=label))


for dt in DTYPES:
    A = (rng.normal(size=(3, 4)) * 3).astype(dt)
    V = np.array([1, 2, 3, 5], dt)
    add("array", A, label=dt)
    add("array", A, dtype="float32" if dt == "int32" else "int32", label=f"{dt}-cast")
    add("copy", A, label=dt)
    add("empty_like", A, label=dt)
    add("empty_like", A, dtype="int32", label=f"{dt}-dtype")
    add("ones_like", A, label=dt)
    add("ones_like", A, dtype="bool", label=f"{dt}-dtype")
    add("zeros_like", A, label=dt)
    add("zeros_like", A, dtype="float32", label=f"{dt}-dtype")
    add("full_like", A, 2, label=dt)
    add("full_like", A, 1.5, dtype="float32", label=f"{dt}-dtype")
    add("full_like", A, np.array([1, 2, 3, 4], dt), label=f"{dt}-array")
    add("vander", V, label=dt)
    add("vander", V, N=3, increasing=True, label=f"{dt}-n")
    # Keras's torch backend takes Python numbers (not 0-d arrays) for ranges: sweep the dtype.
    add("arange", 5, dtype=dt, label=dt)
    add("arange", 1, 7, 2, dtype=dt, label=f"{dt}-step")
    add("arange", 2, 6.5, dtype=dt, label=f"{dt}-mixed")
    add("linspace", 0, 10, 5, dtype=dt, label=dt)
    add("linspace", 1, 5, num=4, endpoint=False, dtype=dt, label=f"{dt}-open")
    add("linspace", np.array([0, 1], dt), np.array([4, 9], dt), 5, label=f"{dt}-arrays")
    add("logspace", 0, 3, 4, dtype=dt, label=dt)
    add("logspace", 1, 2, num=5, base=2, dtype=dt, label=f"{dt}-base")
    add("logspace", np.array([0, 1], dt), np.array([2, 3], dt), 3, label=f"{dt}-arrays")
    add("geomspace", np.array(1, dt), np.array(1000, dt), 4, label=dt)
    add("geomspace", np.array(2, dt), 32, num=5, endpoint=False, label=f"{dt}-open")
    add("full", (2, 3), np.array(3, dt), label=dt)
    add("full", (2, 4), np.array([1, 2, 3, 4], dt), label=f"{dt}-array")

add("zeros", (2, 3))
add("zeros", 4, dtype="int32", label="int")
add("ones", (2, 3))
add("ones", (3,), "bool", label="bool")
add("empty", (2, 3))
add("empty", [4], dtype="int32", label="int")
add("full", (2, 3), 7, label="int")
add("full", (2,), 2.5, dtype="float32", label="float")
add("full", (3,), 1, dtype="int32", label="dtype")
add("eye", 3)
add("eye", 3, 4, label="rect")
add("eye", 4, 3, k=1, label="k")
add("eye", 3, k=-2, dtype="int32", label="neg-k")
add("identity", 3)
add("identity", 2, dtype="int32", label="int")
add("tri", 3)
add("tri", 3, 4, k=1, label="k")
add("tri", 4, 2, -1, dtype="int32", label="neg-k")
add("arange", 5, label="int")
add("arange", 1.5, label="float")
add("arange", 1, 10, 3, label="step")
add("arange", 0, 1, 0.25, label="float-step")
add("arange", 5, dtype="float32", label="dtype")
add("arange", 6, step=-1, stop=1, label="negative")
add("linspace", 0, 1, label="default")
add("linspace", 0.0, 1.0, 6, retstep=True, label="retstep")
add("linspace", 2, 3, 5, endpoint=False, label="open")
add("linspace", 0, 10, 4, dtype="int32", label="int")
add("logspace", 0, 2, 3, label="default")
add("logspace", 1, 3, 3, endpoint=False, label="open")
add("geomspace", 1, 256, 9, label="default")
add("geomspace", -1, -1000, 4, label="negative")
add("array", [[1, 2], [3, 4]], label="list")
add("array", [1.5, 2], label="float-list")
add("array", 3, label="scalar")
for name in ("bartlett", "blackman", "hamming", "hanning"):
    add(name, 7)
    add(name, 1, label="one")
    add(name, np.array(6, "int32"), label="array")
add("kaiser", 7, 3.0)
add("kaiser", 6, beta=0.5, label="beta")
add("kaiser", 1, 2.0, label="one")

# Python lists and scalars convert as Keras converts them (ints -> int32, floats -> floatx).
add("zeros_like", [1, 2], label="list")
add("ones_like", 2.5, label="scalar")
add("copy", [[1, 2], [3, 4]], label="list")

# Where Keras's torch backend departs from numpy, distkeras follows numpy: integer linspace
# rounds toward -inf (Keras truncates toward 0); geomspace honours an integer dtype.
add("linspace", -5, 5, 4, dtype="int32", label="int-negative")
NUMPY_REFERENCE["numpy.linspace[int-negative]"] = np.linspace
add("geomspace", 1, 1000, 4, dtype="int32", label="int")
NUMPY_REFERENCE["numpy.geomspace[int]"] = np.geomspace


# numpy's `axis` for ranges between array ends (Keras's torch backend raises for axis != 0).
def _float32_reference(fn):
    return lambda *args, **kwargs: fn(*args, **kwargs).astype("float32")


for name in ("linspace", "logspace", "geomspace"):
    ends = (np.array([1.0, 2.0], "float32"), np.array([[4.0, 8.0], [16.0, 32.0]], "float32"))
    add(name, *ends, 3, axis=-1, label="axis")
    add(name, *ends, num=4, endpoint=False, axis=1, label="axis-open")
    NUMPY_REFERENCE[f"numpy.{name}[axis]"] = _float32_reference(getattr(np, name))
    NUMPY_REFERENCE[f"numpy.{name}[axis-open]"] = _float32_reference(getattr(np, name))
