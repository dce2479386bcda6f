"""Label-free performance estimation against direct computation on the same rows: the estimate
from the binned, mergeable summary equals the expected metrics computed row by row with the same
calibration; its standard error equals the spread of the realized metric when labels are drawn
with the calibrated probabilities; the calibration is chosen by what it does on held-out rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from monitor.metrics.estimation import (
    Calibration,
    ScoreSummary,
    estimate_classification,
    fit_calibration,
    score_matrix,
)

BINARY = ["repaid", "default"]
MULTI = ["a", "b", "c"]


def _binary(n: int, seed: int, sharpness: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised scores (rows x 2), the predicted and the true class index. The true probability
    of 'default' is sigmoid(z); the model scores sigmoid(sharpness * z): calibrated at 1."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-0.8, 1.6, n)
    truth = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    s = 1 / (1 + np.exp(-sharpness * z))
    p = np.column_stack([1 - s, s])
    return p, (s >= 0.5).astype(int), truth


def _multi(n: int, seed: int, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, (n, 3)) @ np.array([[1.2, 0, 0.4], [-0.5, 1.1, 0], [0, -0.7, 1.3]])
    true_p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    truth = (rng.random((n, 1)) > np.cumsum(true_p, axis=1)).sum(axis=1)
    p = np.exp(z * temperature) / np.exp(z * temperature).sum(axis=1, keepdims=True)
    return p, p.argmax(axis=1), truth


def _direct(
    p: np.ndarray, predicted: np.ndarray, cal: Calibration, classes: list[str], positive: str | None
) -> dict[str, float]:
    """The expected metrics computed row by row: each row's calibrated probability of each class
    given its own (unbinned) score and whether it was predicted as that class."""
    k = len(classes)
    rows = np.arange(len(p))
    prob = np.empty_like(p)  # [row, class]: calibrated probability that the row is of the class
    for c in range(k):
        own = predicted == c
        prob[own, c] = cal.apply(c, 1, p[own, c])
        prob[~own, c] = cal.apply(c, 0, p[~own, c])
    if k == 2 and positive is not None:
        pos = classes.index(positive)
        prob[:, 1 - pos] = 1 - prob[:, pos]
    out = {"accuracy": float(prob[rows, predicted].mean())}
    for c, name in enumerate(classes):
        tp = prob[predicted == c, c].sum()
        actual = prob[:, c].sum()
        n_pred = (predicted == c).sum()
        out[f"precision.{name}"] = tp / n_pred
        out[f"recall.{name}"] = tp / actual
        out[f"f1.{name}"] = 2 * tp / (n_pred + actual)
    # ROC AUC with each row a positive of weight p and a negative of weight 1 - p (NannyML's CBPE)
    aucs = []
    for c in [classes.index(positive)] if positive is not None else range(k):
        order = np.argsort(p[:, c], kind="stable")
        w_pos, w_neg = prob[order, c], 1 - prob[order, c]
        neg_below = np.cumsum(w_neg) - w_neg
        aucs.append(float((w_pos * neg_below).sum() / (w_pos.sum() * w_neg.sum())))
    out["roc_auc"] = float(np.mean(aucs))
    return out


@pytest.mark.parametrize(
    ("kind", "sharpness"), [("binary", 1.0), ("binary", 2.0), ("binary", 0.6), ("multi", 1.0), ("multi", 0.5)]
)
def test_the_estimate_from_the_summary_is_the_expected_metric_row_by_row(kind: str, sharpness: float) -> None:
    make, classes, positive = (_binary, BINARY, "default") if kind == "binary" else (_multi, MULTI, None)
    p, predicted, truth = make(4000, seed=1, **({"sharpness": sharpness} if kind == "binary" else {}))
    if kind == "multi":
        p, predicted, truth = _multi(4000, seed=1, temperature=sharpness)
    cal = fit_calibration(p, truth, predicted, classes)
    q, q_pred, _ = make(3000, seed=2) if kind == "binary" else _multi(3000, seed=2, temperature=sharpness)
    est = estimate_classification(ScoreSummary.of(q, q_pred), cal, positive)
    want = _direct(q, q_pred, cal, classes, positive)
    # two scores in one of 4,096 logit bins share its middle's calibrated value
    for key, value in want.items():
        assert est[key].value == pytest.approx(value, abs=2e-3), key


def test_a_summary_split_and_merged_estimates_what_the_whole_does() -> None:
    p, predicted, truth = _binary(3000, seed=3, sharpness=1.7)
    cal = fit_calibration(p, truth, predicted, BINARY)
    whole = estimate_classification(ScoreSummary.of(p, predicted), cal, "default")
    parts = [ScoreSummary.of(p[i::3], predicted[i::3]) for i in range(3)]
    merged = parts[0]
    for part in parts[1:]:
        stats, counts = part.to_parts()
        merged = merged.merge(ScoreSummary.from_parts(stats, counts))
    again = estimate_classification(merged, Calibration.from_json(cal.to_json()), "default")
    assert again == whole


@pytest.mark.calibration
@pytest.mark.parametrize("kind", ["binary", "multi"])
def test_the_standard_error_is_the_spread_of_the_realized_metric(kind: str) -> None:
    """Labels drawn with the calibrated probabilities, again and again on the same scores: the
    realized metrics scatter around the estimate by its standard error (calibration exact, so
    only the labels' sampling is measured here)."""
    if kind == "binary":
        classes, positive = BINARY, "default"
        p, predicted, _ = _binary(1500, seed=4)
    else:
        classes, positive = MULTI, None
        p, predicted, _ = _multi(1500, seed=4)
    identity = Calibration(classes, [[None, None] for _ in classes])
    est = estimate_classification(ScoreSummary.of(p, predicted), identity, positive)
    rng = np.random.default_rng(9)
    realized: dict[str, list[float]] = {"accuracy": [], "recall.b": [], "f1.b": [], "precision.b": []}
    if kind == "binary":
        realized["roc_auc"] = []
    macro: list[float] = []
    for _ in range(600):
        if kind == "binary":
            y = (rng.random(len(p)) < p[:, 1]).astype(int)
            realized["roc_auc"].append(skm.roc_auc_score(y, p[:, 1]))
        else:
            y = (rng.random((len(p), 1)) > np.cumsum(p, axis=1)).sum(axis=1)
        # class 1 ('default', 'b'): counted directly, as scikit-learn counts them
        tp, n_pred, actual = ((y == 1) & (predicted == 1)).sum(), (predicted == 1).sum(), (y == 1).sum()
        realized["accuracy"].append(float((y == predicted).mean()))
        realized["precision.b"].append(tp / n_pred)
        realized["recall.b"].append(tp / actual)
        realized["f1.b"].append(2 * tp / (n_pred + actual))
        if kind == "multi":
            macro.append(skm.f1_score(y, predicted, average="macro"))
    names = {"recall.b": "recall", "f1.b": "f1", "precision.b": "precision"} if kind == "binary" else {}
    for key, values in realized.items():
        e = est[names.get(key, key)]
        assert np.mean(values) == pytest.approx(e.value, abs=0.006), key
        assert np.std(values) == pytest.approx(e.std, rel=0.15), key
    if macro:
        # the classes' errors move together: the macro error is bounded by the mean of theirs
        e = est["f1.macro"]
        assert np.mean(macro) == pytest.approx(e.value, abs=0.006)
        assert np.std(macro) <= e.std <= 2 * np.std(macro)


def test_each_map_is_the_one_that_predicts_held_out_outcomes_best() -> None:
    """Scores already calibrated keep the identity; a model too sure of itself by a constant on the
    logit gets Platt scaling; scores pushed towards 0 and 1 by a power of their distance from 0.5
    (no scaling of the logit fits that) get isotonic regression. Mapped, each estimates on new rows what it realizes."""
    p, predicted, truth = _binary(6000, seed=5, sharpness=1.0)
    assert fit_calibration(p, truth, predicted, BINARY).methods() == ["identity"]
    p2, predicted2, truth2 = _binary(6000, seed=5, sharpness=3.0)
    overconfident = fit_calibration(p2, truth2, predicted2, BINARY)
    assert overconfident.methods() == ["platt"] and overconfident.n_resamples == 20
    pushed = 0.5 + 0.5 * np.sign(p[:, 1] - 0.5) * np.abs(2 * p[:, 1] - 1) ** 0.3
    extreme = np.column_stack([1 - pushed, pushed])
    assert fit_calibration(extreme, truth, predicted, BINARY).methods() == ["isotonic"]
    # mapped, the overconfident model's estimate on new rows is close to what it realizes
    q, q_pred, q_truth = _binary(20000, seed=6, sharpness=3.0)
    est = estimate_classification(ScoreSummary.of(q, q_pred), overconfident, "default")
    assert est["accuracy"].value == pytest.approx(skm.accuracy_score(q_truth, q_pred), abs=0.01)
    raw = estimate_classification(
        ScoreSummary.of(q, q_pred), Calibration(BINARY, [[None, None], [None, None]]), "default"
    )
    assert abs(raw["accuracy"].value - skm.accuracy_score(q_truth, q_pred)) > 0.04  # unmapped: far off


def test_a_multiclass_models_maps_are_kept_apart_by_prediction_and_a_binary_models_are_not() -> None:
    """A row predicted as another class can score higher for a class than a row predicted as it:
    the prediction says more than the score, and each side gets its own map. A binary model's
    prediction is a threshold on its score: one map of all the rows."""
    p, predicted, truth = _multi(6000, seed=7, temperature=0.5)
    multi = fit_calibration(p, truth, predicted, MULTI)
    assert all(a is not b for a, b in multi.maps)
    p2, predicted2, truth2 = _binary(6000, seed=7, sharpness=3.0)
    binary = fit_calibration(p2, truth2, predicted2, BINARY)
    assert all(a is b for a, b in binary.maps)


def test_score_matrix_fills_a_binary_models_other_class_and_leaves_unscored_rows_out() -> None:
    m = score_matrix([{"default": 0.2}, {"repaid": 0.9}, None, {"default": 0.6, "repaid": 0.6}], BINARY)
    assert m[0] == pytest.approx([0.8, 0.2]) and m[1] == pytest.approx([0.9, 0.1])
    assert np.isnan(m[2]).all() and m[3] == pytest.approx([0.5, 0.5])
    s = ScoreSummary.of(m, np.array([1, 0, 0, -1]))
    assert s.n == 2 and s.unscored == 2


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_the_score_summary_counts_each_rows_class_scores_where_its_prediction_puts_them(classes: int) -> None:
    """[class, predicted as it or not, bin of its score]: counted row by row here, all at once there;
    rows without a usable score or prediction are unscored."""
    from monitor.metrics.score_layout import SCORE_BINS, ScoreLayout

    rng = np.random.default_rng(classes)
    p = rng.dirichlet(np.ones(classes), size=500)
    predicted = rng.integers(-1, classes, size=500).astype(float)
    p[:5] = np.nan
    predicted[5:8] = np.nan
    layout = ScoreLayout.of_scores(rng.dirichlet(np.ones(classes), size=300))
    s = ScoreSummary.of(p, predicted, layout)
    want = np.zeros((classes, 2, SCORE_BINS), dtype=np.int64)
    unscored = 0
    for row, pred in zip(p, predicted, strict=True):
        if np.isnan(row).any() or np.isnan(pred) or pred < 0:
            unscored += 1
            continue
        for k, b in enumerate(layout.bins(row[None, :])[0]):
            want[k, int(pred == k), b] += 1
    assert np.array_equal(s.hist, want) and s.hist.dtype == np.int64
    assert s.unscored == unscored and s.n == 500 - unscored
