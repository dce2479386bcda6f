"""Multivariate drift by reconstruction error against direct computation on the same rows
(scikit-learn's PCA, its own inverse transform), and its decisions: quiet on the reference's
distribution, drifted when a correlation flips though no feature's distribution moves."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from monitor.metrics.multivariate import (
    Baseline,
    Reconstruction,
    ReconstructionSummary,
    fit_reconstruction,
    reconstruction_test,
)

NUMERICAL = ["x1", "x2", "x3", "x4"]


def _rows(n: int, rho: float, seed: int) -> tuple[np.ndarray, list[list[str | None]]]:
    rng = np.random.default_rng(seed)
    cov = np.eye(4)
    cov[0, 1] = cov[1, 0] = rho
    x = rng.multivariate_normal(np.zeros(4), cov, size=n) * [1, 10, 0.1, 3] + [0, 50, 1, -2]
    kind = np.where(x[:, 2] + rng.normal(0, 0.1, n) > 1, "high", "low").astype(object)
    return x, [list(kind)]


def test_each_rows_error_is_its_distance_from_scikit_learns_reconstruction() -> None:
    x, cats = _rows(3000, 0.7, seed=1)
    fitted = fit_reconstruction(NUMERICAL, x, ["kind"], cats)
    assert fitted is not None
    model, _ = fitted
    # directly: standardise (the category as its reference share), PCA to 65 % of the variance,
    # back again, and the Euclidean distance
    share = {"high": float(np.mean(np.array(cats[0]) == "high")), "low": float(np.mean(np.array(cats[0]) == "low"))}
    raw = np.column_stack([x, [share[v] for v in cats[0]]])
    z = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    pca = PCA(n_components=0.65, svd_solver="full").fit(z)
    new, new_cats = _rows(500, -0.7, seed=2)
    raw_new = np.column_stack([new, [share[v] for v in new_cats[0]]])
    z_new = (raw_new - raw.mean(axis=0)) / raw.std(axis=0)
    want = np.linalg.norm(z_new - pca.inverse_transform(pca.transform(z_new)), axis=1)
    assert model.components.shape[0] == pca.n_components_
    assert np.allclose(model.errors(model.encode(new, new_cats)), want, atol=1e-9)
    again = Reconstruction.from_json(model.to_json())
    assert np.allclose(again.errors(again.encode(new, new_cats)), want, atol=1e-9)


def test_missing_values_and_unseen_categories_are_encoded_as_the_reference_would_have_them() -> None:
    x, cats = _rows(1000, 0.5, seed=3)
    cats[0][:100] = [None] * 100
    fitted = fit_reconstruction(NUMERICAL, x, ["kind"], cats)
    assert fitted is not None
    model, _ = fitted
    rows = np.array([[np.nan, np.inf, 1.0, -2.0], [0.0, 50.0, 1.0, -2.0]])
    z = model.encode(rows, [[None, "never seen"]])
    assert np.isfinite(z).all()
    assert z[0, 0] == pytest.approx(0.0) and z[0, 1] == pytest.approx(0.0)  # missing, ±inf: the mean
    assert z[0, 4] == pytest.approx((0.1 - model.center[4]) / model.scale[4])  # missing: its share, 0.1
    assert z[1, 4] == pytest.approx((0.0 - model.center[4]) / model.scale[4])  # unseen: share 0


def test_summaries_merge_to_the_summary_of_all_rows() -> None:
    e = np.random.default_rng(4).gamma(2.0, 0.5, 900)
    merged = ReconstructionSummary.of(e[:300])
    for part in (e[300:700], e[700:]):
        stats, counts = ReconstructionSummary.of(part).to_parts()
        merged = merged.merge(ReconstructionSummary.from_parts(stats, counts))
    assert merged.n == 900
    assert merged.mean == pytest.approx(e.mean(), rel=1e-12)
    assert merged.total_sq == pytest.approx(np.square(e).sum(), rel=1e-12)


def test_quiet_on_the_references_distribution_and_drifted_when_a_correlation_flips() -> None:
    x, cats = _rows(4000, 0.8, seed=5)
    fitted = fit_reconstruction(NUMERICAL, x, ["kind"], cats)
    assert fitted is not None
    model, errors = fitted
    baseline = Baseline.of(errors)
    alarms, found = 0, 0
    for seed in range(60):
        for rho, counter in ((0.8, "alarms"), (-0.8, "found")):
            new, new_cats = _rows(800, rho, seed=100 + seed)
            test = reconstruction_test(ReconstructionSummary.of(model.errors(model.encode(new, new_cats))), baseline)
            if counter == "alarms":
                alarms += test.drifted
            else:
                found += test.drifted
    assert alarms <= 3  # at most 5 % of 60 windows from the reference's own distribution
    assert found == 60


def test_out_of_fold_errors_are_not_the_fitted_rows_own() -> None:
    """The baseline comes from rows scored by components fitted without them: in-sample errors
    are smaller (the components were chosen to fit those rows) and would call fresh data from
    the same distribution drifted."""
    x, cats = _rows(400, 0.6, seed=6)
    fitted = fit_reconstruction(NUMERICAL, x, ["kind"], cats)
    assert fitted is not None
    model, out_of_fold = fitted
    in_sample = model.errors(model.encode(x, cats))
    assert out_of_fold.mean() > in_sample.mean()


def test_nothing_is_fitted_for_fewer_than_two_features() -> None:
    x, _ = _rows(500, 0.5, seed=7)
    assert fit_reconstruction(["x1"], x[:, :1], [], []) is None
