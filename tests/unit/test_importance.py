"""Feature importance and attribution drift (``monitor.metrics.importance``), without a database."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from monitor.metrics.importance import (
    MAX_FEATURES,
    by_importance,
    estimate_importance,
    importance_shares,
    ndcg,
    weighted_drift_share,
)

pytestmark = pytest.mark.unit


def test_ndcg_of_sagemakers_own_example() -> None:
    """Clarify's documented example: the ranking of SAT score, GPA and class rank reversed, 0.69."""
    training = {"SAT score": 0.70, "GPA": 0.50, "Class rank": 0.05}
    live = {"SAT score": 0.10, "GPA": 0.20, "Class rank": 0.70}
    dcg = 0.05 / np.log2(2) + 0.50 / np.log2(3) + 0.70 / np.log2(4)
    idcg = 0.70 / np.log2(2) + 0.50 / np.log2(3) + 0.05 / np.log2(4)
    assert ndcg(training, live) == pytest.approx(dcg / idcg) and round(ndcg(training, live), 2) == 0.69
    assert ndcg(training, training) == pytest.approx(1.0)
    assert ndcg(training, {f: v * 3 for f, v in training.items()}) == pytest.approx(1.0)  # scale is not rank


@pytest.mark.parametrize("seed", range(25))
def test_ndcg_equals_scikit_learns_on_random_rankings_with_and_without_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    reference = rng.exponential(size=n)
    current = rng.exponential(size=n)
    if seed % 2:  # ties: the window's importances rounded to a few levels
        current = np.round(current * 2) / 2
    names = [f"f{i}" for i in range(n)]
    ours = ndcg(dict(zip(names, reference, strict=True)), dict(zip(names, current, strict=True)))
    assert ours == pytest.approx(ndcg_score([reference], [current]), rel=1e-12)


def test_ndcg_ranks_a_feature_the_window_lacks_last_and_ignores_the_listing_order() -> None:
    reference = {"a": 3.0, "b": 2.0, "c": 1.0}
    assert ndcg(reference, {"a": 1.0, "b": 0.5}) == pytest.approx(1.0)
    assert ndcg(reference, {"b": 1.0, "c": 0.5}) < ndcg(reference, {"a": 1.0, "c": 0.5}) < 1.0
    tied = {"a": 1.0, "b": 1.0, "c": 1.0}
    assert ndcg(reference, tied) == ndcg(dict(reversed(reference.items())), tied)
    assert ndcg({"a": 0.0, "b": 0.0}, {"a": 1.0}) == 1.0


def test_the_weighted_drift_share_weighs_a_drifted_feature_by_what_the_model_uses_of_it() -> None:
    importance = {"income": 6.0, "age": 3.0, "postcode": 1.0, "noise": 0.0}
    assert importance_shares(importance) == {"income": 0.6, "age": 0.3, "postcode": 0.1, "noise": 0.0}
    assert weighted_drift_share(importance, ["income"]) == pytest.approx(0.6)
    assert weighted_drift_share(importance, ["noise", "postcode"]) == pytest.approx(0.1)
    assert weighted_drift_share(importance, ["noise", "unknown"]) == 0.0
    assert weighted_drift_share(importance, ["age", "age"]) == pytest.approx(0.3)
    equal = dict.fromkeys(importance, 1.0)  # every importance equal: the share of columns
    assert weighted_drift_share(equal, ["income", "age"]) == pytest.approx(2 / 4)
    assert weighted_drift_share({"a": 0.0, "b": -1.0}, ["a"]) == 0.0


def test_drifted_features_are_listed_most_important_first() -> None:
    importance = {"income": 6.0, "age": 3.0, "postcode": 3.0, "noise": 0.0}
    assert by_importance(importance, ["noise", "postcode", "income", "age"]) == [
        ("income", 0.5),
        ("age", 0.25),
        ("postcode", 0.25),
        ("noise", 0.0),
    ]


def test_importance_is_estimated_in_the_order_the_model_uses_its_features() -> None:
    """A model whose output is 3·a + b + a category's effect, blind to ``noise``: the estimate
    ranks them as the model uses them, and the ignored feature's range covers nothing lost."""
    rng = np.random.default_rng(3)
    n = 4000
    a, b, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "pro", "team"], size=n).tolist()
    effect = {"basic": 0.0, "pro": 1.5, "team": -1.5}
    output = 3 * a + b + np.array([effect[p] for p in plan]) + rng.normal(scale=0.1, size=n)
    a[:50] = np.nan  # missing values are taken as they are
    found = estimate_importance({"a": a, "b": b, "noise": noise}, {"plan": plan}, output)
    ranked = sorted(found, key=lambda f: -found[f].value)
    assert ranked == ["a", "plan", "b", "noise"]
    assert found["a"].low > found["plan"].high and found["noise"].low < 0.01
    assert all(i.low <= i.value <= i.high for i in found.values())


def test_no_importance_without_enough_rows_or_an_output_that_varies() -> None:
    x = {"a": np.arange(2000.0)}
    assert estimate_importance(x, {}, np.ones(2000)) == {}
    assert estimate_importance({"a": np.arange(999.0)}, {}, np.arange(999.0)) == {}
    assert set(estimate_importance({"a": np.arange(1000.0)}, {}, np.arange(1000.0))) == {"a"}
    many = [f"c{i}" for i in range(1000)]  # more categories than the surrogate's bins
    found = estimate_importance({}, {"id": many}, np.arange(1000.0))
    assert set(found) == {"id"}


def test_a_model_wider_than_the_estimate_takes_gets_none() -> None:
    rng = np.random.default_rng(1)
    wide = {f"f{i}": rng.normal(size=200) for i in range(MAX_FEATURES + 1)}
    assert estimate_importance(wide, {}, rng.normal(size=200)) == {}
