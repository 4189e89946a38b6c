"""Inputs for every op of ``keras.ops.nn``, compared with Keras by ``test_nn_sweep.py``.

Shapes are small but realistic (batches of images, sequences, attention heads); each op gets
its main keyword variants: both data formats, "valid"/"same" padding, strides, dilation.
"""

from __future__ import annotations

import numpy as np

from tests.ops.keras_reference import Case

rng = np.random.default_rng(1234)


def f32(*shape, low=-3.0, high=3.0):
    return rng.uniform(low, high, size=shape).astype("float32")


def nn(name, *args, label="", atol=1e-5, **kwargs):
    return Case(name, args, kwargs, module="nn", atol=atol, label=label)


X = f32(2, 3, 5)
INT_X = rng.integers(-4, 5, size=(3, 4)).astype("int32")
PROBS = rng.uniform(0.05, 1.0, size=(4, 5)).astype("float32")
ONE_HOT = np.eye(5, dtype="float32")[rng.integers(0, 5, size=4)]
LABELS = rng.integers(0, 5, size=(4,)).astype("int32")

CASES: list[Case] = []

# Elementwise activations: float input, and int input where torch's kernel takes ints.
for name in [
    "relu",
    "relu6",
    "sigmoid",
    "sparse_sigmoid",
    "tanh_shrink",
    "softplus",
    "softsign",
    "sparse_plus",
    "silu",
    "swish",
    "log_sigmoid",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "selu",
    "hard_tanh",
]:
    CASES.append(nn(name, X))
for name in ["relu", "relu6", "sigmoid", "sparse_sigmoid", "sparse_plus", "hard_tanh"]:
    CASES.append(nn(name, INT_X, label="int32"))
CASES += [
    nn("relu", 2.5, label="python_float"),
    nn("sigmoid", X.astype("float64"), label="float64"),
    nn("squareplus", X),
    nn("squareplus", X, b=1, label="b1"),
    nn("soft_shrink", X),
    nn("soft_shrink", X, threshold=1.5, label="t1.5"),
    nn("hard_shrink", X),
    nn("hard_shrink", X, threshold=1.0, label="t1"),
    nn("leaky_relu", X),
    nn("leaky_relu", X, negative_slope=0.01, label="slope"),
    nn("elu", X),
    nn("elu", X, alpha=0.5, label="alpha"),
    nn("celu", X),
    nn("celu", X, alpha=2.0, label="alpha"),
    nn("gelu", X),
    nn("gelu", X, approximate=False, label="exact"),
    nn("glu", f32(2, 3, 6)),
    nn("glu", f32(4, 6), axis=0, label="axis0"),
    nn("threshold", X, 0.5, -1.0),
    nn("softmax", X),
    nn("softmax", X, axis=1, label="axis1"),
    nn("softmax", X, axis=(1, 2), label="axes12"),
    nn("softmax", X, axis=None, label="all"),
    nn("log_softmax", X),
    nn("log_softmax", X, axis=0, label="axis0"),
    nn("log_softmax", X, axis=(0, 2), label="axes02"),
    nn("sparsemax", X),
    nn("sparsemax", X, axis=1, label="axis1"),
]

# Convolutions: kernels in Keras layouts.
IMG = f32(2, 7, 6, 3)
IMG_CF = np.ascontiguousarray(IMG.transpose(0, 3, 1, 2))
K2 = f32(3, 3, 3, 4, low=-1, high=1)
for padding in ("valid", "same"):
    for strides in (1, 2):
        CASES.append(
            nn("conv", IMG, K2, strides=strides, padding=padding, label=f"2d_{padding}_s{strides}")
        )
CASES += [
    nn("conv", IMG_CF, K2, padding="same", data_format="channels_first", label="2d_cf"),
    nn("conv", IMG, K2, padding="same", dilation_rate=2, label="2d_dilated"),
    nn("conv", IMG, f32(2, 2, 1, 6, low=-1, high=1), label="2d_groups3"),
    nn("conv", f32(2, 9, 3), f32(3, 3, 5), strides=2, padding="same", label="1d"),
    nn("conv", f32(1, 5, 4, 6, 2), f32(2, 3, 2, 2, 3), padding="same", label="3d"),
    nn("depthwise_conv", IMG, f32(3, 3, 3, 2)),
    nn("depthwise_conv", IMG, f32(3, 3, 3, 2), strides=2, padding="same", label="same_s2"),
    nn(
        "depthwise_conv",
        IMG_CF,
        f32(3, 3, 3, 1),
        padding="same",
        data_format="channels_first",
        label="cf",
    ),
    nn("depthwise_conv", f32(2, 8, 3), f32(3, 3, 2), dilation_rate=2, label="1d_dilated"),
    nn("separable_conv", IMG, f32(3, 3, 3, 2), f32(1, 1, 6, 5)),
    nn(
        "separable_conv",
        IMG,
        f32(3, 3, 3, 2),
        f32(1, 1, 6, 5),
        strides=2,
        padding="same",
        label="same_s2",
    ),
    nn(
        "separable_conv",
        IMG_CF,
        f32(3, 3, 3, 1),
        f32(1, 1, 3, 4),
        data_format="channels_first",
        label="cf",
    ),
]
KT = f32(3, 3, 5, 3, low=-1, high=1)  # (k, k, out, in)
for padding in ("valid", "same"):
    for strides in (1, 2):
        CASES.append(
            nn(
                "conv_transpose",
                IMG,
                KT,
                strides=strides,
                padding=padding,
                label=f"{padding}_s{strides}",
            )
        )
CASES += [
    nn(
        "conv_transpose", IMG, KT, strides=2, padding="same", output_padding=1, label="same_outpad1"
    ),
    nn(
        "conv_transpose",
        IMG,
        KT,
        strides=2,
        padding="valid",
        output_padding=0,
        label="valid_outpad0",
    ),
    nn("conv_transpose", IMG, f32(4, 4, 5, 3), strides=2, padding="same", label="even_k"),
    nn(
        "conv_transpose",
        IMG_CF,
        KT,
        strides=2,
        padding="same",
        data_format="channels_first",
        label="cf",
    ),
    nn("conv_transpose", IMG, KT, dilation_rate=2, label="dilated"),
    nn("conv_transpose", f32(2, 6, 3), f32(3, 4, 3), strides=3, padding="same", label="1d"),
]

# Pooling. Asymmetric "same" average pooling is checked against a formula in the sweep
# (Keras's torch backend pads it by replication); every other variant against Keras.
for op in ("max_pool", "average_pool"):
    CASES += [
        nn(op, IMG, 2, label="2d"),
        nn(op, IMG, 3, strides=1, padding="same", label="same_s1"),
        nn(op, IMG, (3, 2), strides=(2, 1), label="rect"),
        nn(op, IMG_CF, 2, data_format="channels_first", label="cf"),
        nn(op, f32(2, 9, 3), 3, strides=2, label="1d"),
        nn(op, f32(1, 4, 6, 4, 2), 2, label="3d"),
    ]
CASES.append(nn("max_pool", IMG, 2, padding="same", label="same_asym"))
for op in ("adaptive_average_pool", "adaptive_max_pool"):
    CASES += [
        nn(op, IMG, (3, 2), label="2d"),
        nn(op, IMG_CF, 3, data_format="channels_first", label="cf"),
        nn(op, f32(2, 9, 3), 4, label="1d"),
        nn(op, f32(1, 5, 6, 4, 2), (2, 3, 2), label="3d"),
    ]

CASES += [
    nn("unfold", IMG_CF, 2),
    nn("unfold", IMG_CF, (3, 2), dilation=1, padding=1, stride=2, label="padded"),
    nn("fold", f32(2, 12, 30), (7, 6), 2, label="overlap"),
    nn("fold", f32(2, 27, 12), (6, 7), 3, padding=1, stride=2, label="strided"),
    nn("depth_to_space", f32(2, 3, 4, 8), 2),
    nn("depth_to_space", f32(2, 18, 2, 3), 3, data_format="channels_first", label="cf"),
    nn("space_to_depth", f32(2, 4, 6, 3), 2),
    nn("space_to_depth", f32(2, 3, 6, 9), 3, data_format="channels_first", label="cf"),
]

# Encodings and losses.
CASES += [
    nn("one_hot", LABELS, 5),
    nn(
        "one_hot",
        rng.integers(-1, 4, size=(2, 3)).astype("int32"),
        4,
        axis=0,
        label="axis0_negative",
    ),
    nn("one_hot", LABELS, 6, dtype="int32", label="int32"),
    nn("multi_hot", rng.integers(0, 6, size=(3, 4)).astype("int32"), 6),
    nn("multi_hot", np.array([1, 3, 3], dtype="int32"), 5, label="1d"),
    nn(
        "multi_hot",
        rng.integers(0, 6, size=(3, 4)).astype("int32"),
        num_tokens=6,
        dtype="int32",
        label="num_tokens",
    ),
    nn("binary_crossentropy", (PROBS > 0.5).astype("float32"), PROBS),
    nn(
        "binary_crossentropy",
        (PROBS > 0.5).astype("float32"),
        f32(4, 5),
        from_logits=True,
        label="logits",
    ),
    nn("categorical_crossentropy", ONE_HOT, PROBS),
    nn("categorical_crossentropy", ONE_HOT, f32(4, 5), from_logits=True, label="logits"),
    nn("categorical_crossentropy", ONE_HOT.T.copy(), PROBS.T.copy(), axis=0, label="axis0"),
    nn("sparse_categorical_crossentropy", LABELS, PROBS),
    nn("sparse_categorical_crossentropy", LABELS, f32(4, 5), from_logits=True, label="logits"),
    nn("sparse_categorical_crossentropy", LABELS[:, None], PROBS, label="label_column"),
    nn(
        "sparse_categorical_crossentropy",
        rng.integers(0, 5, size=(2, 3)),
        f32(2, 5, 3),
        from_logits=True,
        axis=1,
        label="axis1",
    ),
    nn("sparse_categorical_crossentropy", np.int32(2), PROBS[0], label="rank1"),
    nn("psnr", PROBS, PROBS[::-1].copy(), 1.0),
    nn("psnr", IMG, IMG * 0.9, 3.0, label="images"),
]
CTC_LOGITS = f32(2, 8, 5)
CTC_TARGET = np.array([[1, 2, 2, 0], [3, 1, 0, 0]], dtype="int32")
CASES += [
    nn("ctc_loss", CTC_TARGET, CTC_LOGITS, np.array([3, 2], "int32"), np.array([8, 6], "int32")),
    nn(
        "ctc_loss",
        CTC_TARGET + 1,
        CTC_LOGITS,
        np.array([4, 2], "int32"),
        np.array([8, 8], "int32"),
        mask_index=0,
        label="full",
    ),
    nn(
        "ctc_loss",
        CTC_TARGET,
        CTC_LOGITS,
        np.array([3, 2], "int32"),
        np.array([8, 7], "int32"),
        mask_index=4,
        label="mask4",
    ),
    nn("ctc_decode", CTC_LOGITS, np.array([8, 6], "int32")),
    nn(
        "ctc_decode",
        CTC_LOGITS,
        np.array([8, 5], "int32"),
        merge_repeated=False,
        mask_index=4,
        label="no_merge",
    ),
    nn(
        "ctc_decode",
        CTC_LOGITS,
        np.array([8, 6], "int32"),
        strategy="beam_search",
        beam_width=4,
        top_paths=2,
        label="beam",
    ),
    nn(
        "ctc_decode",
        f32(2, 7, 6, low=-1, high=1),
        np.array([7, 7], "int32"),
        strategy="beam_search",
        beam_width=8,
        top_paths=3,
        mask_index=None,
        label="beam_wide_last_blank",
    ),
    nn(
        "ctc_decode",
        f32(2, 7, 6, low=-1, high=1),
        np.array([5, 7], "int32"),
        mask_index=None,
        label="greedy_last_blank",
    ),
    nn(
        "ctc_decode",
        f32(3, 6, 4),
        np.array([6, 4, 2], "int32"),
        strategy="beam_search",
        beam_width=3,
        top_paths=1,
        mask_index=3,
        label="beam_mask3",
    ),
]

# Statistics and normalizations.
SEQ = f32(2, 4, 6)
CASES += [
    nn("moments", SEQ, [2]),
    nn("moments", SEQ, [0, 1], keepdims=True, label="keepdims"),
    nn("moments", IMG, (0, 1, 2), label="image_axes"),
    nn("batch_normalization", SEQ, f32(6), f32(6, low=0.1, high=2.0), -1),
    nn(
        "batch_normalization",
        SEQ,
        f32(4),
        f32(4, low=0.1, high=2.0),
        1,
        offset=f32(4),
        scale=f32(4),
        epsilon=1e-2,
        label="axis1_affine",
    ),
    nn("layer_normalization", SEQ),
    nn("layer_normalization", SEQ, f32(6), f32(6), label="affine"),
    nn(
        "layer_normalization",
        SEQ,
        f32(4, 6),
        f32(4, 6),
        axis=(1, 2),
        epsilon=1e-3,
        label="two_axes",
    ),
    nn("layer_normalization", SEQ, f32(6), axis=-1, rms_scaling=True, label="rms_scaling"),
    nn("rms_normalization", SEQ),
    nn("rms_normalization", SEQ, f32(6), epsilon=1e-3, label="scale"),
    nn("rms_normalization", SEQ, f32(4, 6), axis=(1, 2), label="two_axes"),
    nn("normalize", SEQ),
    nn("normalize", SEQ, axis=1, label="axis1"),
    nn("normalize", SEQ, order=1, label="l1"),
    nn("normalize", SEQ, axis=0, order=3, epsilon=1e-3, label="l3"),
    nn("polar", f32(3, 4, low=0, high=2), f32(3, 4)),
]

# Attention: (batch, seq, heads, head_dim).
Q, KV = f32(2, 5, 4, 8, low=-1, high=1), f32(2, 6, 4, 8, low=-1, high=1)
MASK = rng.uniform(size=(2, 1, 5, 6)) > 0.3
CASES += [
    nn("dot_product_attention", Q, KV, KV[::-1].copy()),
    nn("dot_product_attention", Q, KV, KV, scale=0.5, label="scale"),
    nn("dot_product_attention", Q, Q, Q, is_causal=True, label="causal"),
    nn("dot_product_attention", Q, KV, KV, mask=MASK, label="mask"),
    nn("dot_product_attention", Q, Q, Q, mask=MASK[..., :5], is_causal=True, label="mask_causal"),
    nn("dot_product_attention", Q, KV, KV, bias=f32(2, 4, 5, 6), label="bias"),
    nn("dot_product_attention", Q, KV[:, :, :2], KV[:, :, :2], label="grouped_query"),
    nn("dot_product_attention", Q, KV[:, :, :1], KV[:, :, :1], label="multi_query"),
]
