"""Metrics against numpy over several weighted updates, resets, resolution by shape, and the
sum-reducibility contract the distributed trainer relies on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distkeras import losses, metrics

EPS = 1e-7
RNG = np.random.default_rng(1)


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _l2n(x):
    return x / np.sqrt(np.maximum((x**2).sum(-1, keepdims=True), EPS**2))


def _pm1(t):
    return 2 * t - 1 if np.isin(t, [0, 1]).all() else t


# ---------------------------------------------------------------------------- data makers
def binary_data(n):
    return RNG.integers(0, 2, size=(n, 1)).astype("float32"), RNG.uniform(size=(n, 1)).astype(
        "float32"
    )


def onehot_data(n, c=4):
    idx = RNG.integers(0, c, size=n)
    p = RNG.uniform(0.05, 1, size=(n, c)).astype("float32")
    return np.eye(c, dtype="float32")[idx], p / p.sum(-1, keepdims=True)


def sparse_data(n, c=4):
    y, p = onehot_data(n, c)
    return y.argmax(-1), p


def sparse_col_data(n, c=4):
    y, p = sparse_data(n, c)
    return y.reshape(n, 1).astype("float32"), p


def regression_data(n):
    return (
        RNG.uniform(0.1, 2, size=(n, 3)).astype("float32"),
        RNG.uniform(0.1, 2, size=(n, 3)).astype("float32"),
    )


def multilabel_data(n, c=3):
    return RNG.integers(0, 2, size=(n, c)).astype("float32"), RNG.uniform(size=(n, c)).astype(
        "float32"
    )


def exact_data(n):
    y = RNG.integers(0, 3, size=(n, 1)).astype("float32")
    return y, np.where(RNG.uniform(size=(n, 1)) < 0.6, y, y + 1).astype("float32")


# ------------------------------------------------------------------- per-sample references
def _rank_of_target(labels, p):
    target = p[np.arange(len(p)), labels.astype(int)]
    return (p > target[:, None]).sum(-1)


def ref_ce(t, p):
    q = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -(t * np.log(q)).sum(-1)


MEAN_METRICS = [
    (metrics.Accuracy, {}, lambda t, p: (t == p).mean(-1), exact_data),
    (
        metrics.BinaryAccuracy,
        {"threshold": 0.3},
        lambda t, p: (t == (p > 0.3)).mean(-1),
        binary_data,
    ),
    (
        metrics.CategoricalAccuracy,
        {},
        lambda t, p: (t.argmax(-1) == p.argmax(-1)) * 1.0,
        onehot_data,
    ),
    (
        metrics.SparseCategoricalAccuracy,
        {},
        lambda t, p: (t == p.argmax(-1)) * 1.0,
        sparse_data,
    ),
    (
        metrics.SparseCategoricalAccuracy,
        {},
        lambda t, p: (t[:, 0] == p.argmax(-1)) * 1.0,
        sparse_col_data,
    ),
    (
        metrics.TopKCategoricalAccuracy,
        {"k": 2},
        lambda t, p: (_rank_of_target(t.argmax(-1), p) < 2) * 1.0,
        onehot_data,
    ),
    (
        metrics.SparseTopKCategoricalAccuracy,
        {"k": 2},
        lambda t, p: (_rank_of_target(t, p) < 2) * 1.0,
        sparse_data,
    ),
    (metrics.MeanSquaredError, {}, lambda t, p: ((t - p) ** 2).mean(-1), regression_data),
    (metrics.MeanAbsoluteError, {}, lambda t, p: np.abs(t - p).mean(-1), regression_data),
    (
        metrics.MeanAbsolutePercentageError,
        {},
        lambda t, p: 100 * np.abs((t - p) / t).mean(-1),
        regression_data,
    ),
    (
        metrics.MeanSquaredLogarithmicError,
        {},
        lambda t, p: ((np.log1p(p) - np.log1p(t)) ** 2).mean(-1),
        regression_data,
    ),
    (metrics.LogCoshError, {}, lambda t, p: np.log(np.cosh(p - t)).mean(-1), regression_data),
    (
        metrics.CosineSimilarity,
        {},
        lambda t, p: (_l2n(t) * _l2n(p)).sum(-1),
        regression_data,
    ),
    (
        metrics.BinaryCrossentropy,
        {},
        lambda t, p: -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(-1),
        binary_data,
    ),
    (metrics.CategoricalCrossentropy, {}, ref_ce, onehot_data),
    (
        metrics.CategoricalCrossentropy,
        {"from_logits": True, "label_smoothing": 0.1},
        lambda t, z: -((t * 0.9 + 0.1 / 4) * _log_softmax(z)).sum(-1),
        onehot_data,
    ),
    (
        metrics.SparseCategoricalCrossentropy,
        {},
        lambda t, p: ref_ce(np.eye(4)[t.astype(int)], p),
        sparse_data,
    ),
    (
        metrics.KLDivergence,
        {},
        lambda t, p: (np.clip(t, EPS, 1) * np.log(np.clip(t, EPS, 1) / p)).sum(-1),
        onehot_data,
    ),
    (metrics.Poisson, {}, lambda t, p: (p - t * np.log(p + EPS)).mean(-1), regression_data),
    (
        metrics.Hinge,
        {},
        lambda t, p: np.maximum(1 - _pm1(t) * p, 0).mean(-1),
        multilabel_data,
    ),
    (
        metrics.SquaredHinge,
        {},
        lambda t, p: (np.maximum(1 - _pm1(t) * p, 0) ** 2).mean(-1),
        multilabel_data,
    ),
    (
        metrics.CategoricalHinge,
        {},
        lambda t, p: np.maximum(((1 - t) * p).max(-1) - (t * p).sum(-1) + 1, 0),
        onehot_data,
    ),
]


@pytest.mark.parametrize(
    "cls, kwargs, ref, data",
    MEAN_METRICS,
    ids=[f"{m[0].__name__}-{i}" for i, m in enumerate(MEAN_METRICS)],
)
def test_mean_metric_over_weighted_updates_and_reset(cls, kwargs, ref, data):
    m = cls(**kwargs)
    totals, counts = 0.0, 0.0
    for n, weighted in ((5, True), (3, False), (7, True)):
        t, p = data(n)
        w = RNG.uniform(0, 2, size=n).astype("float32") if weighted else np.ones(n, "float32")
        m.update_state(t, p, sample_weight=w if weighted else None)
        values = ref(t.astype("float64"), p.astype("float64"))
        totals += (values * w).sum()
        counts += w.sum()
    np.testing.assert_allclose(_np(m.result()), totals / counts, rtol=1e-5, atol=1e-6)
    m.reset_state()
    assert float(m.result()) == 0.0
    t, p = data(4)
    np.testing.assert_allclose(_np(m(t, p)), ref(t, p).mean(), rtol=1e-5, atol=1e-6)


def test_mean_and_sum_weighting_rules():
    v = RNG.normal(size=(4, 3)).astype("float32")
    w_steps = RNG.uniform(size=(4, 3)).astype("float32")
    w_rows = RNG.uniform(size=4).astype("float32")
    mean = metrics.Mean()
    mean.update_state(v, sample_weight=w_steps)
    np.testing.assert_allclose(_np(mean.result()), (v * w_steps).sum() / w_steps.sum(), rtol=1e-5)
    mean.reset_state()
    mean.update_state(v, sample_weight=w_rows)
    mean.update_state([1.0, 3.0])
    expected = ((v.mean(1) * w_rows).sum() + 4.0) / (w_rows.sum() + 2)
    np.testing.assert_allclose(_np(mean.result()), expected, rtol=1e-5)
    total = metrics.Sum()
    total.update_state(v, sample_weight=w_rows)
    total.update_state(2.5)
    np.testing.assert_allclose(_np(total.result()), (v.sum(1) * w_rows).sum() + 2.5, rtol=1e-5)
    assert float(metrics.Mean()([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])) == 2.0


@pytest.mark.parametrize(
    "write",
    [
        lambda m, update: m.count.assign(0.0),
        lambda m, update: m.count.assign_sub(m.count.numpy()),
        lambda m, update: m.count.copy_(torch.zeros(())),  # what an all-reduce or restore does
        lambda m, update: (m.total.assign(0.0), m.count.assign(-1.0), update(m)),
        lambda m, update: m.reset_state(),
    ],
    ids=["assign", "assign_sub", "copy_", "negative-then-update", "reset"],
)
def test_mean_result_is_zero_whenever_count_is_zero(write):
    # result() skips its zero guard while the metric's own updates keep count positive; any
    # other write to count must bring the guard back (divide_no_nan: 0, never NaN or inf).
    for make, update in (
        (metrics.Mean, lambda m: m.update_state(torch.tensor(2.0))),
        (metrics.Mean, lambda m: m.update_state([1.0])),
        (metrics.CategoricalAccuracy, lambda m: m.update_state(torch.eye(3)[:1], torch.eye(3)[:1])),
    ):
        m = make()
        update(m)
        assert float(m.result()) > 0.0
        write(m, update)
        assert float(m.count) == 0.0
        assert float(m.result()) == 0.0


def test_mean_result_with_negative_weights_reaching_zero_count():
    m = metrics.Mean()
    m.update_state([4.0], sample_weight=[1.0])
    m.update_state([2.0], sample_weight=[-1.0])  # count back to 0, total 2
    assert float(m.count) == 0.0 and float(m.result()) == 0.0


def test_mean_result_after_updates_equals_total_over_count():
    m = metrics.Mean()
    values = RNG.normal(size=7).astype("float32")
    for i, v in enumerate(values):
        m.update_state(torch.tensor(v))
        np.testing.assert_allclose(_np(m.result()), values[: i + 1].mean(), rtol=1e-6)
    m.update_state([1.0], sample_weight=[0.0])  # adds nothing: still the same mean
    np.testing.assert_allclose(_np(m.result()), values.mean(), rtol=1e-6)


def test_root_mean_squared_error():
    m = metrics.RootMeanSquaredError()
    sq, ws = 0.0, 0.0
    for n in (3, 5):
        t, p = regression_data(n)
        w = RNG.uniform(size=n).astype("float32")
        m.update_state(t, p, sample_weight=w)
        sq += (((t - p) ** 2).mean(-1) * w).sum()
        ws += w.sum()
    np.testing.assert_allclose(_np(m.result()), np.sqrt(sq / ws), rtol=1e-5)


def test_r2_score_matches_sklearn():
    from sklearn.metrics import r2_score

    t, p = regression_data(20)
    m = metrics.R2Score()
    m.update_state(t[:8], p[:8])
    m.update_state(t[8:], p[8:])
    np.testing.assert_allclose(_np(m.result()), r2_score(t, p), rtol=1e-4)
    per = metrics.R2Score(class_aggregation=None)
    per.update_state(t, p)
    np.testing.assert_allclose(_np(per.result()), r2_score(t, p, multioutput="raw_values"), 1e-4)


# ------------------------------------------------------------------------- confusion metrics
def ref_counts(t, p, thresholds, w=None):
    p = np.asarray(p, "float32")
    w = np.ones_like(p) if w is None else np.broadcast_to(w, p.shape)
    t, p, w = np.asarray(t).reshape(-1) != 0, p.reshape(-1), w.reshape(-1)
    out = {k: [] for k in ("tp", "fp", "tn", "fn")}
    for thr in np.asarray(thresholds, "float32"):
        pos = p > thr
        out["tp"].append((w * (t & pos)).sum())
        out["fp"].append((w * (~t & pos)).sum())
        out["tn"].append((w * (~t & ~pos)).sum())
        out["fn"].append((w * (t & ~pos)).sum())
    return {k: np.array(v) for k, v in out.items()}


def test_precision_recall_with_thresholds_and_weights():
    thresholds = [0.2, 0.5, 0.7]
    prec, rec = metrics.Precision(thresholds=thresholds), metrics.Recall(thresholds=thresholds)
    ts, ps, ws = [], [], []
    for n in (6, 9):
        t, p = binary_data(n)
        w = RNG.uniform(size=n).astype("float32")
        prec.update_state(t, p, sample_weight=w)
        rec.update_state(t, p, sample_weight=w)
        ts.append(t), ps.append(p), ws.append(w[:, None])
    c = ref_counts(np.concatenate(ts), np.concatenate(ps), thresholds, np.concatenate(ws))
    np.testing.assert_allclose(_np(prec.result()), c["tp"] / (c["tp"] + c["fp"]), rtol=1e-5)
    np.testing.assert_allclose(_np(rec.result()), c["tp"] / (c["tp"] + c["fn"]), rtol=1e-5)
    assert float(metrics.Precision()([0, 1, 1, 1], [1, 0, 1, 1])) == pytest.approx(2 / 3)
    assert float(metrics.Recall()([0, 1, 1, 1], [1, 0, 1, 1], [0, 0, 1, 0])) == 1.0


def test_precision_recall_top_k_and_class_id():
    t, p = multilabel_data(10, 4)
    top2 = np.argsort(-p, axis=1)[:, :2]
    in_top = np.zeros_like(p, dtype=bool)
    np.put_along_axis(in_top, top2, True, axis=1)
    lab = t != 0
    m = metrics.Precision(top_k=2)
    m.update_state(t, p)
    np.testing.assert_allclose(_np(m.result()), (lab & in_top).sum() / in_top.sum(), rtol=1e-6)
    r = metrics.Recall(top_k=2)
    r.update_state(t, p)
    np.testing.assert_allclose(_np(r.result()), (lab & in_top).sum() / lab.sum(), rtol=1e-6)
    c = metrics.Precision(class_id=1)
    c.update_state(t, p)
    pos = p[:, 1] > 0.5
    np.testing.assert_allclose(_np(c.result()), (lab[:, 1] & pos).sum() / pos.sum(), rtol=1e-6)
    ck = metrics.Recall(class_id=2, top_k=2)
    ck.update_state(t, p)
    expected = (lab[:, 2] & in_top[:, 2]).sum() / lab[:, 2].sum()
    np.testing.assert_allclose(_np(ck.result()), expected, rtol=1e-6)


@pytest.mark.parametrize(
    "cls, key",
    [
        (metrics.TruePositives, "tp"),
        (metrics.FalsePositives, "fp"),
        (metrics.TrueNegatives, "tn"),
        (metrics.FalseNegatives, "fn"),
    ],
)
@pytest.mark.parametrize("thresholds", [None, [0.0, 0.5, 1.0], [0.1, 0.35, 0.9]])
def test_condition_counts(cls, key, thresholds):
    t, p = binary_data(30)
    p[:3] = [[0.0], [0.5], [1.0]]  # exactly on thresholds: strictly greater counts
    w = RNG.uniform(size=30).astype("float32")
    m = cls(thresholds=thresholds)
    m.update_state(t, p, sample_weight=w)
    expected = ref_counts(t, p, thresholds or [0.5], w[:, None])[key]
    # fn/tn come out as totals minus counts (as in Keras): float rounding, hence atol.
    expected = expected if thresholds else expected[0]
    np.testing.assert_allclose(_np(m.result()), expected, rtol=1e-5, atol=1e-5)


def _auc_thresholds(n):
    return [-EPS] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + EPS]


def ref_auc(c, curve="ROC", summation="interpolation"):
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.nan_to_num(tp / (tp + fn))
        if curve == "PR" and summation == "interpolation":
            # Integrate precision over recall numerically, TP and P linear in each interval.
            pos, area = tp[0] + fn[0], 0.0
            s = (np.arange(2000) + 0.5) / 2000
            for i in range(len(tp) - 1):
                dtp, dp = tp[i] - tp[i + 1], (tp[i] + fp[i]) - (tp[i + 1] + fp[i + 1])
                if dtp <= 0 or dp <= 0:
                    continue
                prec = (tp[i + 1] + s * dtp) / (tp[i + 1] + fp[i + 1] + s * dp)
                area += prec.mean() * dtp / pos
            return area
        x = np.nan_to_num(fp / (fp + tn)) if curve == "ROC" else recall
        y = recall if curve == "ROC" else np.nan_to_num(tp / (tp + fp))
    pair = {"interpolation": (y[:-1] + y[1:]) / 2, "minoring": np.minimum(y[:-1], y[1:])}
    heights = pair.get(summation, np.maximum(y[:-1], y[1:]))
    return ((x[:-1] - x[1:]) * heights).sum()


@pytest.mark.parametrize("curve", ["ROC", "PR"])
@pytest.mark.parametrize("summation", ["interpolation", "minoring", "majoring"])
def test_auc_matches_bucketed_reference(curve, summation):
    m = metrics.AUC(num_thresholds=50, curve=curve, summation_method=summation)
    ts, ps, ws = [], [], []
    for n in (40, 25):
        t, p = binary_data(n)
        p = np.clip(p + 0.3 * t, 0, 1)  # informative scores
        w = RNG.uniform(size=n).astype("float32")
        m.update_state(t, p, sample_weight=w)
        ts.append(t), ps.append(p), ws.append(w[:, None])
    c = ref_counts(np.concatenate(ts), np.concatenate(ps), _auc_thresholds(50), np.concatenate(ws))
    for name, key in (("true_positives", "tp"), ("false_negatives", "fn")):
        np.testing.assert_allclose(_np(getattr(m, name)), c[key], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(m.result()), ref_auc(c, curve, summation), atol=2e-4)


def test_auc_close_to_exact_roc_auc_and_keras_example():
    from sklearn.metrics import roc_auc_score

    t, p = binary_data(300)
    p = np.clip(p * 0.7 + 0.3 * t, 0, 1)
    m = metrics.AUC(num_thresholds=1000)
    m.update_state(t, p)
    assert float(m.result()) == pytest.approx(roc_auc_score(t, p), abs=5e-3)
    small = metrics.AUC(num_thresholds=3)
    small.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    assert float(small.result()) == pytest.approx(0.75)
    small.reset_state()
    small.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], sample_weight=[1, 0, 0, 1])
    assert float(small.result()) == pytest.approx(1.0)


def test_auc_multi_label_logits_and_explicit_thresholds():
    t, p = multilabel_data(40, 3)
    p = np.clip(p * 0.7 + 0.3 * t, 1e-3, 1 - 1e-3)
    weights = np.array([1.0, 2.0, 0.5])
    m = metrics.AUC(num_thresholds=20, multi_label=True, label_weights=weights)
    m.update_state(t, p)
    per_label = [ref_auc(ref_counts(t[:, j], p[:, j], _auc_thresholds(20))) for j in range(3)]
    np.testing.assert_allclose(_np(m.result()), np.dot(per_label, weights) / 3.5, atol=1e-5)
    flat = metrics.AUC(num_thresholds=20, from_logits=True)
    flat.update_state(t, np.log(p / (1 - p)))
    expected = ref_auc(ref_counts(t, p, _auc_thresholds(20)))
    np.testing.assert_allclose(_np(flat.result()), expected, atol=1e-4)
    uneven = [0.1, 0.3, 0.35, 0.8]
    explicit = metrics.AUC(thresholds=uneven)
    explicit.update_state(t, p)
    np.testing.assert_allclose(
        _np(explicit.result()), ref_auc(ref_counts(t, p, [-EPS, *uneven, 1 + EPS])), atol=1e-5
    )
    assert explicit.get_config()["thresholds"] == uneven


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
@pytest.mark.parametrize("threshold", [None, 0.4])
def test_fbeta_and_f1(average, threshold):
    t, p = multilabel_data(12, 3)
    w = RNG.uniform(size=12).astype("float32")
    beta = 2.0
    m = metrics.FBetaScore(average=average, beta=beta, threshold=threshold)
    m.update_state(t[:5], p[:5], sample_weight=w[:5])
    m.update_state(t[5:], p[5:], sample_weight=w[5:])
    pred = (p >= p.max(-1, keepdims=True)) if threshold is None else p > threshold
    axis = None if average == "micro" else 0
    tp = ((pred * t) * w[:, None]).sum(axis)
    fp = ((pred * (1 - t)) * w[:, None]).sum(axis)
    fn = (((1 - pred) * t) * w[:, None]).sum(axis)
    prec, rec = tp / (tp + fp + EPS), tp / (tp + fn + EPS)
    f = (1 + beta**2) * prec * rec / (beta**2 * prec + rec + EPS)
    if average == "weighted":
        support = (t * w[:, None]).sum(0)
        f = (f * support).sum() / support.sum()
    elif average is not None:
        f = f.mean()
    np.testing.assert_allclose(_np(m.result()), f, rtol=1e-4, atol=1e-6)
    f1 = metrics.F1Score(average=average, threshold=threshold)
    f1.update_state(t, p)
    f1_ref = metrics.FBetaScore(average=average, beta=1.0, threshold=threshold)
    f1_ref.update_state(t, p)
    np.testing.assert_allclose(_np(f1.result()), _np(f1_ref.result()), rtol=1e-6)


def test_f1_keras_example():
    m = metrics.F1Score(threshold=0.5)
    m.update_state(
        [[1, 1, 1], [1, 0, 0], [1, 1, 0]], [[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]]
    )
    np.testing.assert_allclose(_np(m.result()), [0.5, 0.8, 0.6666667], rtol=1e-5)


# ------------------------------------------------------------------------ the state contract
REDUCIBLE = [
    (lambda: metrics.Mean(), lambda n: (RNG.normal(size=(n, 2)).astype("float32"),)),
    (lambda: metrics.Sum(), lambda n: (RNG.normal(size=n).astype("float32"),)),
    (lambda: metrics.BinaryAccuracy(), binary_data),
    (lambda: metrics.SparseCategoricalAccuracy(), sparse_data),
    (lambda: metrics.CategoricalCrossentropy(), onehot_data),
    (lambda: metrics.RootMeanSquaredError(), regression_data),
    (lambda: metrics.R2Score(), regression_data),
    (lambda: metrics.Precision(thresholds=[0.3, 0.6]), binary_data),
    (lambda: metrics.Recall(top_k=2), multilabel_data),
    (lambda: metrics.AUC(), binary_data),
    (lambda: metrics.AUC(curve="PR"), binary_data),
    (lambda: metrics.AUC(multi_label=True), multilabel_data),
    (lambda: metrics.F1Score(average="macro"), multilabel_data),
    (lambda: metrics.FBetaScore(beta=0.5, average="micro", threshold=0.5), multilabel_data),
]


@pytest.mark.parametrize("make, data", REDUCIBLE, ids=[str(i) for i in range(len(REDUCIBLE))])
def test_states_sum_across_processes(make, data):
    args = data(12)
    w = RNG.uniform(size=12).astype("float32")
    first, second, combined, whole = make(), make(), make(), make()
    first.update_state(*(a[:7] for a in args), sample_weight=w[:7])
    second.update_state(*(a[7:] for a in args), sample_weight=w[7:])
    whole.update_state(*args, sample_weight=w)
    combined.update_state(*(a[:2] for a in args))  # builds lazily created states
    assert len(combined.variables) == len(first.variables) > 0
    for c, a, b in zip(combined.variables, first.variables, second.variables):
        assert isinstance(c, torch.Tensor) and not c.requires_grad
        c.copy_(a + b)  # what all_reduce(SUM) does
    np.testing.assert_allclose(_np(combined.result()), _np(whole.result()), rtol=1e-5, atol=1e-6)


def test_variables_keep_identity_and_skip_autograd():
    m = metrics.Mean()
    states = m.variables
    assert [tuple(v.shape) for v in states] == [(), ()]
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    m.update_state(p * 2)
    assert not any(v.requires_grad for v in m.variables)
    m.reset_state()
    assert all(a is b for a, b in zip(states, m.variables)) and float(states[1]) == 0.0
    acc = metrics.CategoricalAccuracy()
    logits = torch.randn(4, 3, requires_grad=True)
    acc.update_state(torch.eye(3)[[0, 1, 2, 0]], logits)
    assert acc.result().grad_fn is None


# --------------------------------------------------------------------------- resolution
@pytest.mark.parametrize(
    "y_true_shape, y_pred_shape, cls",
    [
        ((8, 1), (8, 1), metrics.BinaryAccuracy),
        ((8,), (8, 1), metrics.BinaryAccuracy),
        ((8,), (8, 10), metrics.SparseCategoricalAccuracy),
        ((8, 1), (8, 10), metrics.SparseCategoricalAccuracy),
        ((8, 5), (8, 5, 10), metrics.SparseCategoricalAccuracy),
        ((8, 10), (8, 10), metrics.CategoricalAccuracy),
        ((8, 3), (8, 3), metrics.CategoricalAccuracy),
    ],
)
@pytest.mark.parametrize("name", ["accuracy", "acc"])
def test_resolve_accuracy_by_shape(y_true_shape, y_pred_shape, cls, name):
    m = metrics.resolve_metric(name, y_true_shape, y_pred_shape)
    assert type(m) is cls and m.name == name


def test_resolve_without_label_shape():
    assert type(metrics.resolve_metric("acc", None, (8, 1))) is metrics.BinaryAccuracy
    assert type(metrics.resolve_metric("acc", None, (8, 3))) is metrics.CategoricalAccuracy
    assert type(metrics.resolve_metric("acc", torch.zeros(8), torch.zeros(8, 3))) is (
        metrics.SparseCategoricalAccuracy
    )


def test_resolve_accuracy_ignores_loss_like_keras3():
    # Keras 3 decides from shapes only: multi-label sigmoid outputs get categorical accuracy.
    m = metrics.resolve_metric("accuracy", (8, 5), (8, 5), loss="binary_crossentropy")
    assert type(m) is metrics.CategoricalAccuracy


def test_resolve_crossentropy_and_other_identifiers():
    ce = metrics.resolve_metric(
        "crossentropy", (8, 5), (8, 5), loss=losses.BinaryCrossentropy(from_logits=True)
    )
    assert type(ce) is metrics.BinaryCrossentropy and ce.from_logits and ce.name == "crossentropy"
    assert type(metrics.resolve_metric("ce", (8,), (8, 4))) is metrics.SparseCategoricalCrossentropy
    assert type(metrics.resolve_metric("ce", (8, 4), (8, 4))) is metrics.CategoricalCrossentropy
    mse = metrics.resolve_metric("mse", (8, 1), (8, 1))
    assert type(mse) is metrics.MeanSquaredError and mse.name == "mse"
    auc = metrics.resolve_metric("auc", (8, 1), (8, 1))
    assert type(auc) is metrics.AUC and auc.name == "auc"
    own = metrics.Precision(name="prec")
    assert metrics.resolve_metric(own, (8, 1), (8, 1)) is own and own.name == "prec"

    def my_metric(y_true, y_pred):
        return (y_true - y_pred).abs().mean(-1)

    wrapped = metrics.resolve_metric(my_metric, (4, 2), (4, 2))
    assert isinstance(wrapped, metrics.MeanMetricWrapper) and wrapped.name == "my_metric"
    wrapped.update_state(np.zeros((4, 2)), np.ones((4, 2)))
    assert float(wrapped.result()) == pytest.approx(1.0)
    huber = metrics.resolve_metric("huber", (4, 2), (4, 2))
    assert isinstance(huber, metrics.MeanMetricWrapper) and huber.name == "huber"
    with pytest.raises(ValueError, match="Unknown metric"):
        metrics.resolve_metric("no_such_metric", (4,), (4,))


def test_get_names():
    expected = {
        "accuracy": metrics.Accuracy,
        "acc": metrics.Accuracy,
        "mse": metrics.MeanSquaredError,
        "mae": metrics.MeanAbsoluteError,
        "categorical_accuracy": metrics.CategoricalAccuracy,
        "sparse_categorical_accuracy": metrics.SparseCategoricalAccuracy,
        "top_k_categorical_accuracy": metrics.TopKCategoricalAccuracy,
        "sparse_top_k_categorical_accuracy": metrics.SparseTopKCategoricalAccuracy,
        "auc": metrics.AUC,
        "precision": metrics.Precision,
        "recall": metrics.Recall,
        "binary_crossentropy": metrics.BinaryCrossentropy,
        "kl_divergence": metrics.KLDivergence,
        "f1_score": metrics.F1Score,
        "root_mean_squared_error": metrics.RootMeanSquaredError,
        "AUC": metrics.AUC,
    }
    for name, cls in expected.items():
        assert type(metrics.get(name)) is cls, name


METRIC_CONFIGS = [
    (metrics.Mean, {}),
    (metrics.Sum, {}),
    (metrics.Accuracy, {}),
    (metrics.BinaryAccuracy, {"threshold": 0.7}),
    (metrics.CategoricalAccuracy, {}),
    (metrics.SparseCategoricalAccuracy, {}),
    (metrics.TopKCategoricalAccuracy, {"k": 3}),
    (metrics.SparseTopKCategoricalAccuracy, {"k": 2}),
    (metrics.MeanSquaredError, {}),
    (metrics.RootMeanSquaredError, {}),
    (metrics.CosineSimilarity, {"axis": 1}),
    (metrics.LogCoshError, {}),
    (metrics.R2Score, {"num_regressors": 1}),
    (metrics.BinaryCrossentropy, {"from_logits": True, "label_smoothing": 0.1}),
    (metrics.SparseCategoricalCrossentropy, {"from_logits": True, "ignore_class": 0}),
    (metrics.Precision, {"thresholds": [0.3, 0.6], "class_id": 1}),
    (metrics.Recall, {"top_k": 2}),
    (metrics.TruePositives, {"thresholds": 0.3}),
    (metrics.AUC, {"num_thresholds": 17, "curve": "PR", "summation_method": "minoring"}),
    (metrics.F1Score, {"average": "weighted", "threshold": 0.4}),
    (metrics.FBetaScore, {"average": "macro", "beta": 0.5}),
]


@pytest.mark.parametrize("cls, kwargs", METRIC_CONFIGS, ids=[c.__name__ for c, _ in METRIC_CONFIGS])
def test_metric_config_round_trip(cls, kwargs):
    m = cls(**kwargs, name="my_name")
    config = m.get_config()
    assert config["name"] == "my_name" and config["dtype"] == "float32"
    for key, value in kwargs.items():
        assert config[key] == value
    rebuilt = metrics.deserialize(metrics.serialize(m))
    assert type(rebuilt) is cls and rebuilt.get_config() == config


def test_default_names_match_keras():
    assert metrics.Accuracy().name == "accuracy"
    assert metrics.LogCoshError().name == "logcosh"
    assert metrics.RootMeanSquaredError().name == "root_mean_squared_error"
    assert metrics.FBetaScore().name == "fbeta_score"
    assert metrics.Precision().name.startswith("precision")


def test_mean_metric_wrapper_config_and_mask():
    m = metrics.MeanMetricWrapper(losses.mean_absolute_error, name="l1")
    rebuilt = metrics.MeanMetricWrapper.from_config(m.get_config())
    assert rebuilt._fn is losses.mean_absolute_error and rebuilt.name == "l1"
    p = torch.arange(1.0, 4.0).reshape(1, 3, 1).repeat(2, 1, 1)
    p._keras_mask = torch.tensor([[True, False, False], [True, True, True]])
    m.update_state(torch.zeros(2, 3, 1), p)
    # Masked steps leave both the total and the count: mean of [1] and [1, 2, 3].
    assert float(m.result()) == pytest.approx((1 + 1 + 2 + 3) / 4)
    ignore = metrics.SparseCategoricalCrossentropy(ignore_class=-1)
    ignore.update_state([0, -1], [[0.5, 0.5], [0.9, 0.1]])
    assert float(ignore.result()) == pytest.approx(np.log(2), rel=1e-5)


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="threshold"):
        metrics.BinaryAccuracy(threshold=1.5)
    with pytest.raises(ValueError, match="num_thresholds"):
        metrics.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="XY")
    with pytest.raises(ValueError, match="average"):
        metrics.F1Score(average="sum")
    with pytest.raises(ValueError, match="threshold values"):
        metrics.Precision(thresholds=[1.2])
    with pytest.raises(ValueError, match="k"):
        metrics.TopKCategoricalAccuracy(k=0)
