"""Calls of the reductions and statistics of ``keras.ops.numpy`` to compare with Keras:
float32, int32 and bool inputs, each axis form (None, int, negative, tuple, empty) and keepdims.
"""

import numpy as np

from tests.ops.keras_reference import Case

_rng = np.random.default_rng(11)
SHAPE = (3, 4, 5)

F32 = _rng.normal(size=SHAPE).astype("float32")
F64 = _rng.normal(size=SHAPE)
I32 = _rng.integers(-5, 6, SHAPE).astype("int32")
BOOL = _rng.random(SHAPE) > 0.5
F16 = _rng.normal(size=SHAPE).astype("float16")
U8 = _rng.integers(0, 5, SHAPE).astype("uint8")
I64 = _rng.integers(-5, 6, SHAPE).astype("int64")
WITH_NAN = np.where(_rng.random(SHAPE) > 0.7, np.nan, F32).astype("float32")
WITH_NAN[0, 0, :] = np.nan  # one all-NaN slice along the last axis
POS_SMALL = _rng.uniform(0.5, 1.5, SHAPE).astype("float32")  # products that stay finite
COUNTS = _rng.integers(0, 7, (10,)).astype("int32")
COUNTS_2D = _rng.integers(0, 7, (3, 8)).astype("int32")
WEIGHTS = _rng.uniform(0, 2, (10,)).astype("float32")
WEIGHTS_2D = _rng.uniform(0, 2, (3, 8)).astype("float32")
SAMPLES = _rng.normal(size=(50,)).astype("float32")

CASES: list[Case] = []


def _add(name, *args, label="", atol=1e-5, **kwargs):
    CASES.append(Case(name, args, kwargs, module="numpy", atol=atol, label=label))


_AXES = {"all": None, "ax1": 1, "ax-1": -1, "ax02": (0, 2), "empty": ()}
_KEEP = ("all", "ax1", "ax02")


def _sweep(name, inputs, axes=_AXES, keepdims=True, **kwargs):
    for dtype_label, x in inputs.items():
        for axis_label, axis in axes.items():
            _add(name, x, axis=axis, label=f"{dtype_label}-{axis_label}", **kwargs)
            if keepdims and axis_label in _KEEP:
                _add(name, x, axis=axis, keepdims=True, label=f"{dtype_label}-{axis_label}-keep",
                     **kwargs)  # fmt: skip


_BASIC = {"f32": F32, "i32": I32, "bool": BOOL}
_NUMERIC = {"f32": F32, "i32": I32}
for _name in ("sum", "mean", "max", "min", "amax", "amin", "all", "any"):
    _sweep(_name, _BASIC)
for _name in ("var", "std", "ptp"):
    _sweep(_name, _NUMERIC)
_sweep("prod", {"pos": POS_SMALL, "i32": I32, "bool": BOOL}, axes={"all": None, "ax1": 1,
       "ax02": (0, 2)})  # fmt: skip
for _name in ("sum", "mean", "var", "std", "prod", "max", "amin"):
    _add(_name, F16, axis=1, label="f16", atol=2e-2)
    _add(_name, F64, axis=1, label="f64")
    _add(_name, U8, axis=1, label="u8")
    _add(_name, I64, axis=1, label="i64")
_add("sum", [F32[0], F32[1]], axis=0, label="list")
_add("prod", I32, axis=1, dtype="float32", label="dtype")
_add("max", F32, axis=1, initial=0.5, label="initial")
_add("min", I32, axis=0, initial=-1, label="initial")
_add("max", np.zeros((0, 3), "float32"), initial=2.0, label="empty_initial")
_add("mean", [1, 2, 4], label="py_list")
_add("sum", 3.5, label="py_scalar")

for _name in ("argmax", "argmin"):
    for _label, _x in {"f32": F32, "i32": I32, "bool": BOOL}.items():
        _add(_name, _x, label=f"{_label}-all")
        _add(_name, _x, axis=1, label=f"{_label}-ax1")
        _add(_name, _x, axis=-1, keepdims=True, label=f"{_label}-ax-1-keep")
for _name in ("nanargmax", "nanargmin"):
    _add(_name, WITH_NAN, axis=-1, label="nan-ax-1")
    _add(_name, WITH_NAN, axis=0, keepdims=True, label="nan-ax0-keep")
    _add(_name, WITH_NAN, label="nan-all")
    _add(_name, I32, axis=1, label="i32")

for _name in ("cumsum", "cumprod"):
    _x = POS_SMALL if _name == "cumprod" else F32
    _add(_name, _x, label="f32-flat")
    _add(_name, _x, axis=1, label="f32-ax1")
    _add(_name, I32, axis=-1, label="i32")
    _add(_name, BOOL, axis=0, label="bool")
    _add(_name, U8, axis=0, label="u8")
    _add(_name, I32, axis=1, dtype="float32", label="dtype")
    _add(_name, F16, axis=2, label="f16", atol=2e-2)
    _add(_name, F64, axis=2, label="f64")
WITH_INF = np.array([[1.5, np.nan, np.inf, 2.0], [-np.inf, 0.5, np.nan, 1.0]], "float32")
for _name in ("nancumsum", "nancumprod"):
    _add(_name, WITH_INF, axis=1, label="inf")
    _add(_name, WITH_NAN, axis=1, label="nan")
    _add(_name, WITH_NAN, label="nan-flat")
    _add(_name, I32, axis=0, label="i32")

for _name in ("nansum", "nanmean", "nanmax", "nanmin", "nanprod", "nanvar", "nanstd"):
    _sweep(_name, {"nan": WITH_NAN}, axes={"all": None, "ax1": 1, "ax-1": -1, "ax02": (0, 2)})
    _add(_name, I32, axis=1, label="i32")
for _name in ("nanmean", "nanmax", "nanmin", "nansum", "nanprod", "nanvar"):
    _add(_name, WITH_NAN, axis=(), label="nan-empty")

_QUANTILE_AXES = {"all": None, "ax1": 1, "ax-1": -1, "ax02": (0, 2)}
for _name, _q in (("quantile", 0.3), ("percentile", 30.0), ("nanquantile", 0.3),
                  ("nanpercentile", 30.0)):  # fmt: skip
    _x = WITH_NAN if _name.startswith("nan") else F32
    _sweep(_name, {"f32": _x}, axes=_QUANTILE_AXES, q=_q)
    _vector = np.array([_q / 3, _q, 2 * _q], "float32")
    _add(_name, _x, q=_vector, axis=1, label="vector-q")
    _add(_name, _x, q=_vector, axis=(0, 2), keepdims=True, label="vector-q-keep")
    for _method in ("lower", "higher", "midpoint", "nearest"):
        _add(_name, _x, q=_q, axis=-1, method=_method, label=_method)
    _add(_name, I32, q=_q, axis=1, label="i32")
for _name in ("median", "nanmedian"):
    _x = WITH_NAN if _name == "nanmedian" else F32
    _sweep(_name, {"f32": _x}, axes=_QUANTILE_AXES)
    _add(_name, I32, axis=1, label="i32")
    _add(_name, F32[:, :4], axis=1, label="even_count")

_add("average", F32, label="all")
_add("average", F32, axis=1, label="ax1")
_add("average", I32, axis=-1, label="i32")
_add("average", F32, axis=-1, weights=np.arange(1, 6, dtype="float32"), label="weights_1d_last")
_add("average", F32, axis=1, weights=np.arange(1, 5, dtype="float32"), label="weights_1d_mid")
_add("average", F32, axis=2, weights=POS_SMALL, label="weights_full")
_add("average", F32, weights=POS_SMALL, label="weights_full_all")

_add("count_nonzero", I32, label="all")
_add("count_nonzero", I32, axis=1, label="ax1")
_add("count_nonzero", BOOL, axis=(0, 2), label="bool")
_add("count_nonzero", F32.round(), axis=-1, label="f32")
_add("count_nonzero", I32, axis=(), label="empty")
_add("count_nonzero", I32[0], axis=0, label="2d")

_add("bincount", COUNTS, label="i32")
_add("bincount", COUNTS, minlength=12, label="minlength")
_add("bincount", COUNTS, weights=WEIGHTS, label="weights")
_add("bincount", COUNTS_2D, label="2d")
_add("bincount", COUNTS_2D, weights=WEIGHTS_2D, minlength=9, label="2d_weights")
_add("digitize", SAMPLES, np.array([-1.0, 0.0, 0.5, 1.5], "float32"), label="f32")
_add("digitize", I32, np.array([-2, 0, 3], "int32"), label="i32")
_add("digitize", SAMPLES, np.array([0.0], "float32"), label="one_bin")
_add("corrcoef", F32[0], label="f32")
_add("corrcoef", I32[0], label="i32")
_add("corrcoef", F32[0, 0], label="1d")
_add("histogram", SAMPLES, label="default")
_add("histogram", SAMPLES, bins=4, range=(-1.0, 1.0), label="range")
_add("histogram", SAMPLES, bins=7, label="bins")

# Cases where Keras's torch backend departs from numpy and we follow numpy on purpose:
# case id -> reference(case, keras_fn) giving the expected array (README compatibility notes).


def _keepdims_of_full_reduction(case, keras_fn):
    """Keras's torch backend drops ``keepdims`` when ``axis=None`` for these reductions;
    numpy (and Keras's other backends) keep every axis with length 1."""
    x = np.asarray(case.args[0])
    theirs = np.asarray(keras_fn(*case.args, **case.kwargs).cpu())
    return theirs.reshape((1,) * x.ndim)


def _count_nonzero(case, keras_fn):
    """Keras's torch backend transposes the counts of a >1-D result."""
    return np.count_nonzero(case.args[0], axis=case.kwargs.get("axis")).astype("int32")


def _average(case, keras_fn):
    """Keras's torch backend normalises by the weights' last axis whatever ``axis`` is."""
    return np.average(case.args[0], **case.kwargs).astype("float32")


def _nan_cumulative(case, keras_fn):
    """Keras's torch backend also turns infinities into the largest finite float (its
    ``nan_to_num``); numpy's nancumsum/nancumprod replace NaNs only."""
    fn = np.nancumsum if case.name == "nancumsum" else np.nancumprod
    return fn(case.args[0], **case.kwargs)


def _bincount_2d(case, keras_fn):
    """Keras's torch backend fails when the rows' largest values differ; rows share the
    length ``max(x) + 1`` (or ``minlength``), as on Keras's other backends."""
    x, minlength = case.args[0], case.kwargs.get("minlength", 0)
    length = max(minlength, int(x.max()) + 1)
    return np.stack([np.bincount(row, minlength=length) for row in x]).astype("int32")


NUMPY_REFERENCE = {}
for _case in CASES:
    if _case.name in ("sum", "max", "min", "amax", "amin", "ptp", "prod", "nanprod") and (
        _case.kwargs.get("keepdims") and _case.kwargs.get("axis", None) is None
    ):
        NUMPY_REFERENCE[_case.id] = _keepdims_of_full_reduction
    if _case.name == "count_nonzero" and _case.label in ("ax1", "f32"):
        NUMPY_REFERENCE[_case.id] = _count_nonzero
    if _case.name == "average" and _case.label in ("weights_1d_mid", "weights_full_all"):
        NUMPY_REFERENCE[_case.id] = _average
    if _case.name in ("nancumsum", "nancumprod") and _case.label == "inf":
        NUMPY_REFERENCE[_case.id] = _nan_cumulative
    if _case.id == "numpy.bincount[2d]":
        NUMPY_REFERENCE[_case.id] = _bincount_2d
