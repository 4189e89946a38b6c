"""Cases for Keras's core ops (``keras.ops`` conversion, casting, control flow, scatter, slice).

Callables in the cases use only Python operators on tensors, so the same function runs inside
Keras's torch backend and ours.
"""

import numpy as np

from tests.ops.keras_reference import Case

rng = np.random.default_rng(0)
F = rng.normal(size=(3, 4)).astype("float32")
F3 = rng.normal(size=(2, 3, 4)).astype("float32")
IX = rng.integers(-5, 5, size=(3, 4)).astype("int32")
BIG = np.array([-1e10, -3.7, 0.5, 300.0, 1e10, np.inf, -np.inf], dtype="float32")
INTS = np.array([-70000, -129, -1, 0, 1, 200, 70000], dtype="int32")
D = rng.normal(size=(2, 3)).astype("float64")


def _carry_sum(c, x):
    return c + x, c * x


def _pair_scan(c, x):
    a, b = x
    return (c[0] + a, c[1] * 2), a - b


CASES = [
    # conversion
    Case("convert_to_tensor", (F,)),
    Case("convert_to_tensor", (D,), label="float64"),
    Case("convert_to_tensor", (IX,), {"dtype": "float32"}, label="cast"),
    Case("convert_to_tensor", ([1, 2, 3],), label="int_list"),
    Case("convert_to_tensor", ([1.0, 2, 3],), label="float_list"),
    Case("convert_to_tensor", ([True, False],), label="bool_list"),
    Case("convert_to_tensor", (3,), label="int"),
    Case("convert_to_tensor", (2.5,), label="float"),
    Case("convert_to_tensor", (True,), label="bool"),
    Case("convert_to_tensor", (np.uint8(7),), label="np_scalar"),
    Case("convert_to_numpy", (F,)),
    Case("convert_to_numpy", (IX,), label="int"),
    Case("is_tensor", (F,), label="numpy"),
    Case("shape", (F3,)),
    Case("dtype", (IX,)),
    Case("dtype", (F,), label="float"),
    # casting
    Case("cast", (F, "int32")),
    Case("cast", (F, "float16"), label="half", atol=1e-2),
    Case("cast", (IX, "bool"), label="bool"),
    Case("cast", (IX, "float64"), label="f64"),
    Case("cast", (2, "float32"), label="scalar"),
    Case("saturate_cast", (BIG, "int8")),
    Case("saturate_cast", (BIG, "uint8"), label="uint8"),
    Case("saturate_cast", (BIG, "float16"), label="half"),
    Case("saturate_cast", (INTS, "int8"), label="int_in"),
    Case("saturate_cast", (INTS, "uint8"), label="int_uint8"),
    Case("saturate_cast", (INTS, "int16"), label="int16"),
    # gradients and structure
    Case("stop_gradient", (F,)),
    Case("unstack", (F3,)),
    Case("unstack", (F3,), {"axis": 1}, label="axis1"),
    Case("unstack", (F3,), {"num": 4, "axis": -1}, label="num"),
    Case("rearrange", (F3, "b h w -> b w h")),
    Case("rearrange", (F3, "b h w -> (b h) w"), label="merge"),
    Case("rearrange", (F3, "b h (w p) -> b (h p) w"), {"p": 2}, label="split"),
    Case("rearrange", (F3, "b h w -> w (b h)"), label="merge_permute"),
    # slicing and scatter
    Case("slice", (F3, (0, 1, 1), (2, 2, 3))),
    Case("slice", (F3, np.array([1, 0, 2]), (1, 3, 2)), label="array_start"),
    Case("slice_update", (F3, (0, 1, 1), np.ones((2, 2, 2), "float32"))),
    Case("slice_update", (IX, (1, 0), np.full((2, 2), 9, "int32")), label="int"),
    Case(
        "scatter",
        (np.array([[0, 1], [2, 3], [0, 1]]), np.array([1.0, 2.0, 3.0], "float32"), (3, 4)),
    ),
    Case("scatter", (np.array([[1], [0]]), np.ones((2, 4), "float32"), (3, 4)), label="rows"),
    Case("scatter", (np.array([[0, 0], [1, 2]]), np.array([4, 5], "int32"), (2, 3)), label="int"),
    Case("scatter_update", (F, np.array([[0, 1], [2, 3]]), np.array([7.0, 8.0], "float32"))),
    Case("scatter_update", (F, np.array([[1], [0]]), np.ones((2, 4), "float32")), label="rows"),
    Case(
        "scatter_update",
        (F, np.array([[0, 1], [0, 1], [2, 2]]), np.array([1.0, 2.0, 3.0], "float32")),
        {"reduction": "add"},
        label="add",
    ),
    Case(
        "scatter_update",
        (F, np.array([[0, 1], [0, 1], [2, 2]]), np.array([5.0, -2.0, -9.0], "float32")),
        {"reduction": "max"},
        label="max",
    ),
    Case(
        "scatter_update",
        (F, np.array([[0, 1], [0, 1], [2, 2]]), np.array([5.0, -2.0, 9.0], "float32")),
        {"reduction": "min"},
        label="min",
    ),
    Case(
        "scatter_update",
        (F, np.array([[0, 1], [0, 1], [2, 2]]), np.array([2.0, 3.0, -1.0], "float32")),
        {"reduction": "mul"},
        label="mul",
    ),
    Case(
        "scatter_update",
        (F, np.array([[1], [1]]), np.ones((2, 4), "float32") * 2),
        {"reduction": "mul"},
        label="mul_rows",
    ),
    # control flow (callables use Python operators only)
    Case("cond", (True, lambda: F * 2, lambda: F - 1)),
    Case("cond", (np.array(False), lambda: F * 2, lambda: F - 1), label="false"),
    Case("switch", (1, [lambda x: x + 1, lambda x: x * 3], F)),
    Case("switch", (7, [lambda x: x + 1, lambda x: x * 3], F), label="clipped"),
    Case("switch", (-2, [lambda x: x + 1, lambda x: x * 3], F), label="negative"),
    Case("while_loop", (lambda i, s: i < 5, lambda i, s: (i + 1, s * 2), (0, F))),
    Case(
        "while_loop",
        (lambda x: x.sum() < 100, lambda x: x * 2 + 1, np.ones(3, "float32")),
        label="single",
    ),
    Case(
        "while_loop",
        (lambda i: i < 100, lambda i: i + 1, 0),
        {"maximum_iterations": 7},
        label="max_iter",
    ),
    Case("fori_loop", (0, 4, lambda i, v: v * 2 + i, F)),
    Case("scan", (_carry_sum, np.zeros(4, "float32"), F)),
    Case("scan", (_carry_sum, np.zeros(4, "float32"), F), {"reverse": True}, label="reverse"),
    Case("scan", (lambda c, x: (c + 1, c * 2), np.float32(0.0)), {"length": 4}, label="length"),
    Case("scan", (_pair_scan, (np.float32(0), np.float32(1)), (F[:, 0], F[:, 1])), label="nested"),
    Case("map", (lambda x: x * x + 1, F)),
    Case("map", (lambda x: (x[0], x[1] * 2), (F, F3[0, :, :])), label="tuple_in"),
    Case("associative_scan", (lambda a, b: a + b, F)),
    Case("associative_scan", (lambda a, b: a + b, F3), {"axis": 2}, label="axis"),
    Case(
        "associative_scan", (lambda a, b: a * b, rng.normal(size=7).astype("float32")), label="odd"
    ),
    Case("associative_scan", (lambda a, b: a + b, F), {"reverse": True}, label="reverse"),
    Case(
        "associative_scan",
        (lambda a, b: (a[0] + b[0], a[1] * b[1]), (F[0], F[1])),
        label="pair",
    ),
    Case("vectorized_map", (lambda x: x * 2 + x.sum(), F)),
]

# Generated: every cast and conversion between Keras's torch dtypes, as Keras does them.
DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
VALUES = np.array([-3.7, -1.0, 0.0, 0.5, 2.0, 130.6, 300.2], dtype="float64")
for _source in DTYPES:
    _x = VALUES.astype(_source)
    CASES.append(Case("convert_to_tensor", (_x,), label=f"from_{_source}"))
    for _target in DTYPES:
        _tol = 1e-2 if "float16" in (_source, _target) else 1e-5
        CASES.append(Case("cast", (_x, _target), label=f"{_source}_to_{_target}", atol=_tol))
        CASES.append(
            Case("convert_to_tensor", (_x, _target), label=f"{_source}_as_{_target}", atol=_tol)
        )
        # Keras 3.15 turns every int -> float saturate_cast into the int minimum (its limits
        # wrap); test_core_sweep checks those against the values themselves.
        float_from_int = _target.startswith("float") and not _source.startswith("float")
        if _source != "float16" and _target not in ("bool", "float64") and not float_from_int:
            CASES.append(
                Case("saturate_cast", (_x, _target), label=f"{_source}_to_{_target}", atol=_tol)
            )
for _items, _label in [
    ([1, 2.5], "int_float"),
    ([True, 2], "bool_int"),
    ([[1, 2], [3, 4]], "nested_ints"),
    ([np.float64(1.5), 2], "np_float64_int"),
    ([np.int16(3), 4], "np_int16_int"),
]:
    CASES.append(Case("convert_to_tensor", (_items,), label=f"list_{_label}"))
