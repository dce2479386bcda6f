"""A rule that can never fire is refused: its metric is no name the service writes, or its
condition reads a bound its points do not carry (``monitor.metrics.names``)."""

from __future__ import annotations

import pytest

from monitor.metrics.names import metric_problem


@pytest.mark.parametrize(
    ("metric", "hint"),
    [
        ("accuracy", "'quality.accuracy'"),  # the name without its family
        ("quality.acuracy", "'quality.accuracy'"),  # a typo
        ("feature-drift", "'feature_drift'"),
        ("fairness.demographic_parity", "'fairness.demographic_parity_ratio'"),
        ("latency.p999", "'latency.p99'"),
    ],
)
def test_an_unknown_metric_is_refused_with_the_closest_names(metric: str, hint: str) -> None:
    problem = metric_problem(metric)
    assert problem is not None and problem.startswith(f"no metric is named {metric!r}") and hint in problem


@pytest.mark.parametrize(
    "metric",
    ["dataset_drift", "quality.*", "fairness.*_ratio", "comparison.*", "concept_drift.*", "*", "estimated.roc_auc"],
)
def test_known_names_and_patterns_that_match_one_are_taken(metric: str) -> None:
    assert metric_problem(metric) is None


def test_a_bound_is_only_read_of_metrics_with_an_interval() -> None:
    assert metric_problem("fairness.demographic_parity_ratio", "upper") is None
    assert metric_problem("comparison.accuracy", "lower") is None
    assert metric_problem("comparison.*", "lower") is None  # some of them have one
    problem = metric_problem("feature_drift", "lower")
    assert problem is not None and "has no interval" in problem
    assert (
        metric_problem(
            "nothing.here",
            "lower",
        )
        is not None
    )
