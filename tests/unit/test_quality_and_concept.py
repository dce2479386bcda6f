from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from monitor.metrics.concept import quality_drop, residual_shift, standard_error
from monitor.metrics.quality import binary_score_matrix, classification_quality, regression_quality

RNG = np.random.default_rng(11)


def test_binary_classification_matches_sklearn() -> None:
    classes = ["repaid", "default"]
    y_true = RNG.choice(classes, 500, p=[0.8, 0.2])
    p_default = np.clip(np.where(y_true == "default", 0.6, 0.25) + RNG.normal(0, 0.2, 500), 0, 1)
    y_pred = np.where(p_default >= 0.5, "default", "repaid")
    scores = binary_score_matrix(p_default, classes, "default")
    q = classification_quality(y_true, y_pred, classes, scores=scores, positive_class="default", n_predictions=800)
    v = q.values
    assert v["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert v["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, pos_label="default"))
    assert v["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, pos_label="default"))
    assert v["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, pos_label="default"))
    assert v["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true == "default", p_default))
    assert v["log_loss"] == pytest.approx(skm.log_loss(y_true == "default", p_default))
    assert v["f1.macro"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert (q.n_labelled, q.n_predictions, q.label_coverage) == (500, 800, 500 / 800)


def test_multiclass_matches_sklearn_and_handles_missing_scores() -> None:
    classes = ["a", "b", "c"]
    y_true = RNG.choice(classes, 300)
    raw = RNG.dirichlet([1, 1, 1], 300)
    y_pred = np.array(classes, dtype=object)[raw.argmax(axis=1)]
    q = classification_quality(y_true, y_pred, classes, scores=raw)
    assert q.values["precision.b"] == pytest.approx(skm.precision_score(y_true, y_pred, labels=["b"], average=None)[0])
    assert q.values["recall.macro"] == pytest.approx(skm.recall_score(y_true, y_pred, average="macro"))
    assert q.values["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, raw, multi_class="ovr", labels=classes))
    assert "precision" not in q.values  # no positive class in multiclass
    holes = raw.copy()
    holes[:10] = np.nan
    q2 = classification_quality(y_true, y_pred, classes, scores=holes)
    assert q2.values["log_loss"] == pytest.approx(skm.log_loss(y_true[10:], raw[10:], labels=classes))
    assert "scores missing on 10 of 300" in q2.notes[0]


def test_empty_window_reports_no_values_but_the_coverage() -> None:
    q = classification_quality([], [], ["a", "b"], n_predictions=40)
    assert q.values == {} and q.label_coverage == 0.0 and q.n_predictions == 40


def test_regression_matches_sklearn() -> None:
    y = RNG.normal(10, 3, 400)
    y[:5] = 0.0
    yhat = y + RNG.normal(0.5, 1, 400)
    q = regression_quality(y, yhat)
    nz = y != 0
    assert q.values["mae"] == pytest.approx(skm.mean_absolute_error(y, yhat))
    assert q.values["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, yhat)))
    assert q.values["r2"] == pytest.approx(skm.r2_score(y, yhat))
    assert q.values["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y[nz], yhat[nz]) * 100)
    assert "leaves out 5 zero targets" in q.notes[0]


def test_residual_shift_and_quality_drop() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(0, 1, 500)
    same = residual_shift(ref, rng.normal(0, 1, 500))
    assert not same.drift and same.p_value > 0.05
    shifted = residual_shift(ref, rng.normal(0.5, 1, 500))
    assert shifted.drift and (shifted.n_reference, shifted.n_current) == (500, 500)
    d = quality_drop(0.90, 0.75, tolerance=0.1)
    assert d.drift and d.relative_change == pytest.approx(-1 / 6)
    assert not quality_drop(0.90, 0.85, tolerance=0.1).drift
    assert quality_drop(1.0, 1.3, tolerance=0.2, higher_is_better=False).drift  # an error metric rising


def _accuracy_drop(rng: np.random.Generator, ref_acc: float, n_ref: int, cur_acc: float, n_cur: int) -> bool:
    ref = {"accuracy": rng.binomial(n_ref, ref_acc) / n_ref}
    cur = {"accuracy": rng.binomial(n_cur, cur_acc) / n_cur}
    return quality_drop(
        ref["accuracy"],
        cur["accuracy"],
        tolerance=0.01,
        se_reference=standard_error("accuracy", ref, n_ref),
        se_current=standard_error("accuracy", cur, n_cur),
    ).drift


def test_a_three_percent_accuracy_drop_on_five_thousand_labels_is_found() -> None:
    rng = np.random.default_rng(3)
    found = sum(_accuracy_drop(rng, 0.85, 5000, 0.85 * 0.97, 5000) for _ in range(200))
    assert found >= 180  # ~97 % power


@pytest.mark.parametrize("n_cur", [25, 300, 5000])
def test_an_unchanged_model_rarely_pages_whatever_the_labelled_rows(n_cur: int) -> None:
    """With 25 labelled rows the tolerance alone fired in 15 % of windows with no drop at all."""
    rng = np.random.default_rng(4)
    fired = sum(_accuracy_drop(rng, 0.85, 5000, 0.85, n_cur) for _ in range(1000))
    assert fired <= 60  # at most the 5 % the test allows, and a binomial margin


def test_without_a_standard_error_the_tolerance_decides() -> None:
    d = quality_drop(0.80, 0.70, tolerance=0.05)  # F1, AUC, ...: no standard error passed
    assert d.drift and d.material and d.p_value is None and d.significant is None
    assert standard_error("f1.macro", {"f1.macro": 0.7}, 1000) is None


def test_the_standard_error_of_mae_comes_from_rmse() -> None:
    rng = np.random.default_rng(5)
    errors = rng.normal(0, 2, 4000)
    values = {"mae": float(np.mean(np.abs(errors))), "rmse": float(np.sqrt(np.mean(errors**2)))}
    expected = float(np.std(np.abs(errors), ddof=0) / np.sqrt(len(errors) - 1))
    assert standard_error("mae", values, len(errors)) == pytest.approx(expected, rel=1e-9)


def _window(rng: np.random.Generator, n: int, separation: float) -> dict[str, float]:
    """A binary model's recall, precision, ROC AUC (Mann-Whitney, from ranks) and supports on
    ``n`` labelled rows (30 % positives); a smaller ``separation`` is a worse model."""
    y = rng.random(n) < 0.3
    z = rng.normal(np.where(y, separation, 0.0), 1.0)
    pred = z >= separation / 2 + 0.8  # cautious: fewer predicted positives than positives
    tp = float((y & pred).sum())
    pos = float(y.sum())
    ranks = stats.rankdata(z)
    auc = (ranks[y].sum() - pos * (pos + 1) / 2) / (pos * (n - pos))
    return {"recall": tp / pos, "precision": tp / pred.sum(), "roc_auc": auc, "support.yes": pos}


def _fires(metric: str, ref: dict[str, float], n_ref: int, cur: dict[str, float], n_cur: int) -> bool:
    return quality_drop(
        ref[metric],
        cur[metric],
        tolerance=0.01,
        se_reference=standard_error(metric, ref, n_ref, "yes"),
        se_current=standard_error(metric, cur, n_cur, "yes"),
    ).drift


@pytest.mark.calibration
@pytest.mark.parametrize("metric", ["recall", "precision", "roc_auc"])
@pytest.mark.parametrize("n_cur", [300, 5000])
def test_recall_precision_and_auc_drops_are_tests_too(metric: str, n_cur: int) -> None:
    """Their standard errors (binomial on the rows they are shares of; Hanley-McNeil for AUC) keep
    an unchanged model under the 5 % false alarms the test allows, and find a real drop."""
    rng = np.random.default_rng(8)
    windows = 300
    fired = found = 0
    for _ in range(windows):
        ref = _window(rng, 5000, 1.5)
        assert standard_error(metric, ref, 5000, "yes") is not None
        fired += _fires(metric, ref, 5000, _window(rng, n_cur, 1.5), n_cur)
        found += _fires(metric, ref, 5000, _window(rng, n_cur, 1.0), n_cur)
    assert fired <= 0.05 * windows + 3 * np.sqrt(0.05 * 0.95 * windows)
    if n_cur == 5000:
        assert found >= 0.9 * windows
