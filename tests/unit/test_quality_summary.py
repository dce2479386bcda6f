"""Quality from mergeable summaries against scikit-learn on the same rows, and split-and-merge
giving what one summary of all rows gives."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from monitor.metrics.profiles import NumericSummary, reference_edges
from monitor.metrics.quality import binary_score_matrix, classification_quality, regression_quality
from monitor.metrics.quality_summary import (
    ClassificationSummary,
    RegressionSummary,
    classification_metrics,
    regression_metrics,
)

RNG = np.random.default_rng(5)


def _binary_rows(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    classes = ["repaid", "default"]
    y = RNG.choice(classes, n, p=[0.7, 0.3])
    p = np.clip(np.where(y == "default", 0.62, 0.3) + RNG.normal(0, 0.18, n), 0, 1)
    yhat = np.where(p >= 0.5, "default", "repaid")
    minutes = np.sort(RNG.integers(0, 180, n))
    return y, yhat, binary_score_matrix(p, classes, "default"), minutes


def _merged(parts: list[ClassificationSummary], classes: list[str]) -> ClassificationSummary:
    total = ClassificationSummary(classes)
    for p in parts:
        stats, counts = p.to_parts()
        total.add_parts(stats, counts)
    return total


def test_binary_summary_matches_sklearn_and_direct_metrics() -> None:
    classes = ["repaid", "default"]
    y, yhat, scores, minutes = _binary_rows(4000)
    s = ClassificationSummary.of(classes, y, yhat, minutes, scores, n_predictions=5000)
    got = classification_metrics(s, "default")
    direct = classification_quality(y, yhat, classes, scores=scores, positive_class="default", n_predictions=5000)
    for name in ("accuracy", "precision", "recall", "f1", "f1.macro", "precision.repaid", "support.default"):
        assert got.values[name] == pytest.approx(direct.values[name], abs=1e-12), name
    assert got.values["log_loss"] == pytest.approx(skm.log_loss(y == "default", scores[:, 1]), rel=1e-9)
    # binned AUC: ties only inside one bin of the logit
    assert got.values["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "default", scores[:, 1]), abs=1e-3)
    assert got.label_coverage == pytest.approx(4000 / 5000)


def test_multiclass_summary_matches_sklearn() -> None:
    classes = ["a", "b", "c"]
    n = 3000
    y = RNG.choice(classes, n)
    raw = RNG.dirichlet([2, 2, 2], n) + np.eye(3)[[classes.index(v) for v in y]] * 0.3
    yhat = np.array(classes, dtype=object)[raw.argmax(axis=1)]
    s = ClassificationSummary.of(classes, y, yhat, np.zeros(n, dtype=int), raw)
    v = classification_metrics(s).values
    assert v["recall.macro"] == pytest.approx(skm.recall_score(y, yhat, average="macro"))
    assert v["precision.c"] == pytest.approx(skm.precision_score(y, yhat, labels=["c"], average=None)[0])
    norm = raw / raw.sum(axis=1, keepdims=True)
    assert v["roc_auc"] == pytest.approx(skm.roc_auc_score(y, norm, multi_class="ovr", labels=classes), abs=1e-3)
    assert v["log_loss"] == pytest.approx(skm.log_loss(y, norm, labels=classes), rel=1e-9)
    assert "precision" not in v


def test_classification_summaries_merge_to_the_whole() -> None:
    classes = ["repaid", "default"]
    y, yhat, scores, minutes = _binary_rows(3000)
    whole = ClassificationSummary.of(classes, y, yhat, minutes, scores)
    parts = [
        ClassificationSummary.of(classes, y[i : i + 700], yhat[i : i + 700], minutes[i : i + 700], scores[i : i + 700])
        for i in range(0, 3000, 700)
    ]
    merged = _merged(parts, classes)
    assert classification_metrics(merged, "default").values == pytest.approx(
        classification_metrics(whole, "default").values
    )
    assert merged.minutes == whole.minutes


def test_missing_scores_and_one_outcome_are_noted() -> None:
    classes = ["no", "yes"]
    scores = np.array([[0.9, 0.1], [np.nan, np.nan], [0.8, 0.2]])
    s = ClassificationSummary.of(classes, np.array(["no"] * 3), np.array(["no", "no", "yes"]), np.zeros(3), scores)
    q = classification_metrics(s, "yes")
    assert "roc_auc" not in q.values
    assert any("scores missing on 1 of 3" in n for n in q.notes)
    assert any("both outcomes" in n for n in q.notes)
    empty = classification_metrics(ClassificationSummary(classes, n_predictions=10))
    assert empty.values == {} and empty.label_coverage == 0.0


def test_regression_summary_matches_sklearn_and_merges() -> None:
    n = 5000
    y = RNG.normal(1e6, 50, n)  # a large offset: R² must not lose its digits
    y[:10] = 0.0
    yhat = y + RNG.normal(0.5, 10, n)
    edges, _ = reference_edges(RNG.normal(0, 10, 2000))
    whole = RegressionSummary.of(y, yhat, edges)
    merged = RegressionSummary(residuals=None)
    merged.residuals = NumericSummary.empty(edges)
    for i in range(0, n, 1300):
        stats, counts = RegressionSummary.of(y[i : i + 1300], yhat[i : i + 1300], edges).to_parts()
        merged.add_parts(stats, counts)
    direct = regression_quality(y, yhat)
    for s in (whole, merged):
        got = regression_metrics(s)
        assert got.values["mae"] == pytest.approx(skm.mean_absolute_error(y, yhat))
        assert got.values["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, yhat)))
        assert got.values["r2"] == pytest.approx(skm.r2_score(y, yhat), abs=1e-9)
        assert got.values["mape"] == pytest.approx(direct.values["mape"])
        assert got.notes == ["MAPE leaves out 10 zero targets"]
    assert merged.residuals is not None and whole.residuals is not None
    assert np.array_equal(merged.residuals.counts, whole.residuals.counts)


def test_constant_target_r2_as_sklearn() -> None:
    y = np.full(5, 3.0)
    assert regression_metrics(RegressionSummary.of(y, y)).values["r2"] == skm.r2_score(y, y)
    assert regression_metrics(RegressionSummary.of(y, y + 1)).values["r2"] == skm.r2_score(y, y + 1)


def _rare_crowded(seed: int, n: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """0.5 % positives, scores crowded near 0 (most under 0.001), near 1, or in [1e-4, 2e-4]."""
    r = np.random.default_rng(seed)
    y = r.random(n) < 0.005
    z = np.where(y, r.normal(-6.2, 1.2, n), r.normal(-8.0, 1.2, n))
    p = 1 / (1 + np.exp(-z))
    if seed % 3 == 1:
        p = 1 - p
        y = ~y
    elif seed % 3 == 2:
        p = 1e-4 * (1 + np.where(y, r.beta(3, 2, n), r.beta(2, 3, n)))
    return y, p


@pytest.mark.parametrize("seed", range(6))
def test_roc_auc_is_exact_to_a_thousandth_for_rare_positives_and_crowded_scores(seed: int) -> None:
    y, p = _rare_crowded(seed)
    classes = ["no", "yes"]
    truth = np.where(y, "yes", "no")
    s = ClassificationSummary.of(classes, truth, truth, np.zeros(len(y)), binary_score_matrix(p, classes, "yes"))
    got = classification_metrics(s, "yes").values["roc_auc"]
    assert got == pytest.approx(skm.roc_auc_score(y, p), abs=1e-3)
