"""Every registered stat test against Evidently's own implementation (and so scipy) on the same
arrays; the default choice of test against Evidently's; false-alarm rate and power."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.calculations.stattests import registry as ev_registry
from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test
from evidently.legacy.calculations.stattests.hellinger_distance import _hellinger_distance
from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
from evidently.legacy.calculations.stattests.kl_div import _kl_div
from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test
from evidently.legacy.calculations.stattests.psi import _psi
from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm
from evidently.legacy.calculations.stattests.z_stattest import _z_stat_test
from evidently.legacy.core import ColumnType
from scipy import stats

from monitor.metrics.stattests import (
    REGISTRY,
    FeatureKind,
    benjamini_hochberg,
    dataset_drift,
    default_stattest,
    get_stattest,
    test_drift,
)

EVIDENTLY = {
    "ks": _ks_stat_test,
    "chisquare": _chi_stat_test,
    "z": _z_stat_test,
    "wasserstein": _wasserstein_distance_norm,
    "jensenshannon": _jensenshannon,
    "psi": _psi,
    "kl_div": _kl_div,
    "hellinger": _hellinger_distance,
}
EV_TYPE = {FeatureKind.numerical: ColumnType.Numerical, FeatureKind.categorical: ColumnType.Categorical}


def samples(kind: FeatureKind, shift: float, n_ref: int, n_cur: int, seed: int, n_cats: int = 4) -> tuple:
    rng = np.random.default_rng(seed)
    if kind is FeatureKind.numerical:
        return rng.normal(0, 1, n_ref), rng.normal(shift, 1 + shift / 2, n_cur)
    cats = np.array([f"c{i}" for i in range(n_cats)], dtype=object)
    p_ref = np.full(n_cats, 1 / n_cats)
    p_cur = p_ref + shift * np.linspace(-1, 1, n_cats) / n_cats
    return rng.choice(cats, n_ref, p=p_ref), rng.choice(cats, n_cur, p=p_cur / p_cur.sum())


# this project's own, which Evidently does not have (tests/unit/test_own_stattests.py)
OWN = {"chisquare_2samp", "anderson", "categories_2samp", "quantile_wasserstein", "largest_share_change"}
assert set(REGISTRY) == set(EVIDENTLY) | OWN


def test_configurations_name_exactly_the_registered_tests() -> None:
    """A column's ``test`` is validated against the domain's list, without the maths: the two agree."""
    from monitor.domain.monitoring import STAT_TESTS

    assert set(REGISTRY) == STAT_TESTS


CASES = [
    (name, kind, shift, sizes, n_cats)
    for name, test in REGISTRY.items()
    if name in EVIDENTLY
    for kind in sorted(test.applies_to)
    for shift in (0.0, 0.3)
    for sizes in ((300, 500), (5000, 2000))
    for n_cats in ((2, 4) if kind is FeatureKind.categorical else (0,))
    # the count-based tests see numerical features only when they have a handful of values
    if not (kind is FeatureKind.numerical and name in ("chisquare", "z"))
]


@pytest.mark.parametrize(("name", "kind", "shift", "sizes", "n_cats"), CASES)
def test_same_score_and_decision_as_evidently(
    name: str, kind: FeatureKind, shift: float, sizes: tuple[int, int], n_cats: int
) -> None:
    ref, cur = samples(kind, shift, *sizes, seed=len(CASES) + sizes[0], n_cats=n_cats or 4)
    ours = test_drift(ref, cur, kind, test=name)
    theirs_score, theirs_drift = EVIDENTLY[name](pd.Series(ref), pd.Series(cur), EV_TYPE[kind], ours.threshold)
    assert ours.score == pytest.approx(float(theirs_score), rel=1e-9, abs=1e-12)
    assert ours.drifted == bool(theirs_drift)


def test_ks_is_scipy() -> None:
    ref, cur = samples(FeatureKind.numerical, 0.2, 400, 400, seed=3)
    assert test_drift(ref, cur, FeatureKind.numerical, "ks").score == stats.ks_2samp(ref, cur).pvalue


@pytest.mark.parametrize(
    ("n_ref", "kind", "n_cats", "expected"),
    [
        (500, FeatureKind.numerical, 0, "ks"),
        (500, FeatureKind.numerical, 4, "chisquare"),
        (500, FeatureKind.numerical, 2, "z"),
        (500, FeatureKind.categorical, 4, "chisquare"),
        (500, FeatureKind.categorical, 2, "z"),
        (5000, FeatureKind.numerical, 0, "wasserstein"),
        (5000, FeatureKind.numerical, 4, "jensenshannon"),
        (5000, FeatureKind.categorical, 8, "jensenshannon"),
        (5000, FeatureKind.categorical, 2, "jensenshannon"),
    ],
)
def test_default_choice_matches_evidently(n_ref: int, kind: FeatureKind, n_cats: int, expected: str) -> None:
    rng = np.random.default_rng(0)
    if n_cats:
        ref = rng.integers(0, n_cats, n_ref).astype(float if kind is FeatureKind.numerical else object)
        cur = rng.integers(0, n_cats, 300).astype(ref.dtype)
    else:
        ref, cur = rng.normal(size=n_ref), rng.normal(size=300)
    n_unique = len(set(ref.tolist()) | set(cur.tolist()))
    assert default_stattest(n_ref, n_unique, kind).name == expected
    ev = ev_registry._get_default_stattest(pd.Series(ref), pd.Series(cur), EV_TYPE[kind])
    assert ev.name == expected
    assert test_drift(ref, cur, kind).test == expected


def test_missing_values_are_dropped_first() -> None:
    ref = np.array([1.0, 2.0, np.nan, 3.0, np.inf] * 50)
    cur = np.array([1.0, 2.0, 3.0, np.nan] * 50)
    r = test_drift(ref, cur, FeatureKind.numerical)
    assert (r.n_reference, r.n_current) == (150, 150)
    cats = test_drift(
        np.array(["a", None, "b"] * 20, dtype=object), np.array(["a", "b"] * 20, dtype=object), FeatureKind.categorical
    )
    assert cats.n_reference == 40 and not cats.drifted


@pytest.mark.calibration
def test_no_drift_alarms_at_about_the_nominal_rate_and_a_shift_is_found() -> None:
    false_alarms = sum(
        test_drift(*samples(FeatureKind.numerical, 0.0, 500, 500, seed=s), FeatureKind.numerical).drifted
        for s in range(300)
    )
    assert false_alarms / 300 < 0.09  # nominal 5 %
    detected = sum(
        test_drift(*samples(FeatureKind.numerical, 0.3, 500, 500, seed=s), FeatureKind.numerical).drifted
        for s in range(50)
    )
    assert detected >= 48
    big = test_drift(*samples(FeatureKind.numerical, 0.5, 20000, 5000, seed=1), FeatureKind.numerical)
    assert big.test == "wasserstein" and big.drifted


def test_unknown_and_misapplied_tests_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown stat test 'nope'"):
        get_stattest("nope")
    with pytest.raises(ValueError, match="does not apply to categorical"):
        test_drift(np.array(["a"]), np.array(["b"]), FeatureKind.categorical, test="ks")
    with pytest.raises(ValueError, match="at least one non-missing value"):
        test_drift(np.array([np.nan]), np.array([1.0]), FeatureKind.numerical)


def test_benjamini_hochberg_matches_scipy_and_holds_back_false_alarms() -> None:
    rng = np.random.default_rng(5)
    ps = np.concatenate([rng.uniform(size=45), [1e-6, 2e-5, 1e-4, 3e-4, 1e-3]])
    expected = stats.false_discovery_control(ps, method="bh") <= 0.05
    assert benjamini_hochberg(ps.tolist()) == expected.tolist()
    assert sum(benjamini_hochberg(ps.tolist())) >= 5
    # 50 null features: plain p < 0.05 flags some in most windows, BH almost never.
    plain = bh = 0
    for s in range(200):
        null = np.random.default_rng(s).uniform(size=50)
        plain += int((null < 0.05).any())
        bh += int(any(benjamini_hochberg(null.tolist())))
    assert plain > 150 and bh < 20
    assert benjamini_hochberg([]) == []


def test_dataset_drift_share() -> None:
    assert dataset_drift([True, False, True, False]) == (0.5, True)
    assert dataset_drift([True, False, False]) == (pytest.approx(1 / 3), False)
    assert dataset_drift([], 0.5) == (0.0, False)
