"""Rules as data: parsing with field-level errors, matching, evaluation, rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.evaluate import Sample, evaluate, render, window_name
from alerts.rules import RuleError, load_yaml, parse_duration, parse_rule, parse_rules

T = datetime(2026, 11, 22, 12, tzinfo=UTC)

YAML = """
rules:
  - name: dataset-drift
    metric: dataset_drift
    window: 1h
    condition: {drifted: true}
    for: 2h
    severity: critical
    labels: {team: risk}
    annotations:
      summary: "{model}: {value} of features drifted (threshold {threshold})"
      dashboard: "{dashboard_url}"
    receivers: [oncall]
    retrain: {receiver: retrain, cooldown: 12h}
  - name: age-psi
    metric: feature_drift
    match: {feature: "ag*"}
    condition: {op: ">", threshold: 0.2}
  - name: accuracy-fell
    metric: quality.accuracy
    condition: {change: {baseline: 7d, op: "<", threshold: -0.05}}
    min_sample_size: 100
"""


def sample(metric: str, value: float | None, *, labels: dict | None = None, end: datetime = T, **kw) -> Sample:  # type: ignore[no-untyped-def]
    return Sample("credit", "1", metric, labels or {}, end - timedelta(hours=1), end, value, kw.pop("n", 500), **kw)


def test_yaml_rules_parse() -> None:
    rules, errors = parse_rules(load_yaml(YAML)["rules"])
    assert not errors and [r.name for r in rules] == ["dataset-drift", "age-psi", "accuracy-fell"]
    assert rules[0].for_duration == timedelta(hours=2) and rules[0].retrain and rules[0].retrain.cooldown == "12h"
    assert rules[0].to_doc()["for"] == "2h"


@pytest.mark.parametrize(
    ("doc", "field", "reason"),
    [
        ({"name": "x", "metric": "m"}, "condition", "Field required"),
        ({"name": "x", "metric": "m", "condition": {}}, "condition", "exactly one"),
        ({"name": "x", "metric": "m", "condition": {"op": ">"}}, "condition", "both op and threshold"),
        ({"name": "x", "metric": "m", "condition": {"op": "~", "threshold": 1}}, "condition.op", "Input should be"),
        ({"name": "x", "metric": "m", "condition": {"drifted": True}, "for": "soon"}, "for", "not a duration"),
        (
            {"name": "x", "metric": "m", "condition": {"drifted": True}, "annotations": {"s": "{nope}"}},
            "annotations",
            "field {nope}: a template may name only",
        ),
        ({"name": "bad name!", "metric": "m", "condition": {"drifted": True}}, "name", "pattern"),
        ({"name": "x", "metric": "m", "condition": {"drifted": True}, "colour": 1}, "colour", "Extra inputs"),
        ({"name": "x", "metric": "m", "condition": {"drifted": True, "on": "lower"}}, "condition", "goes with op"),
    ],
)
def test_a_bad_rule_is_refused_with_field_and_reason(doc: dict, field: str, reason: str) -> None:
    with pytest.raises(RuleError) as err:
        parse_rule(doc, 3)
    assert err.value.field == field and reason in err.value.reason and err.value.index == 3


def test_one_bad_rule_does_not_stop_the_others() -> None:
    good = {"name": "ok", "metric": "m", "condition": {"drifted": True}}
    rules, errors = parse_rules([good, {"name": "bad", "metric": "m"}, dict(good), "text"])
    assert [r.name for r in rules] == ["ok"]
    assert [(e.index, e.field) for e in errors] == [(1, "condition"), (2, "name"), (3, "")]
    assert "duplicate" in errors[1].reason


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90) and parse_duration("7d") == timedelta(days=7)
    assert window_name(timedelta(days=1)) == "1d" and window_name(timedelta(hours=6)) == "6h"
    assert window_name(timedelta(minutes=10)) == "10m" and window_name(timedelta(minutes=90)) == "90m"
    with pytest.raises(ValueError):
        parse_duration("1w")


def test_threshold_drifted_and_wildcard_matching() -> None:
    rules, _ = parse_rules(load_yaml(YAML)["rules"])
    drift, age, _ = rules
    points = [
        sample("dataset_drift", 0.6, drifted=True, threshold=0.5),
        sample("dataset_drift", 0.1, drifted=False, end=T - timedelta(hours=1)),  # older: ignored
    ]
    evals = evaluate(drift, points)
    assert len(evals) == 1 and evals[0].holds and evals[0].threshold == 0.5
    assert evals[0].labels["alertname"] == "dataset-drift" and evals[0].labels["team"] == "risk"
    assert evals[0].labels["window"] == "1h"
    daily = Sample("credit", "1", "dataset_drift", {}, T - timedelta(days=1), T, 0.9, 500, drifted=True)
    assert evaluate(drift, [daily]) == []  # the rule reads 1h windows only
    feats = [
        sample("feature_drift", 0.3, labels={"feature": "age", "method": "psi"}),
        sample("feature_drift", 0.1, labels={"feature": "agency", "method": "psi"}),
        sample("feature_drift", 0.9, labels={"feature": "income", "method": "psi"}),
    ]
    got = {e.labels["feature"]: e.holds for e in evaluate(age, feats)}
    assert got == {"age": True, "agency": False}
    assert len({e.fingerprint for e in evaluate(age, feats)}) == 2


def test_change_against_a_baseline_and_too_few_rows() -> None:
    rules, _ = parse_rules(load_yaml(YAML)["rules"])
    rule = rules[2]
    now = sample("quality.accuracy", 0.80)
    (e,) = evaluate(rule, [now], lambda s, back: 0.9 if back == timedelta(days=7) else None)
    assert e.holds and e.baseline == 0.9  # (0.80 - 0.90) / 0.90 = -11 % < -5 %
    (e,) = evaluate(rule, [now], lambda s, back: 0.82)
    assert not e.holds
    (e,) = evaluate(rule, [now], lambda s, back: None)
    assert e.holds is None and e.note == "no baseline"
    (e,) = evaluate(rule, [sample("quality.accuracy", 0.1, n=20)], lambda s, back: 0.9)
    assert e.holds is None and e.note == "too few rows"


def test_annotations_are_rendered_and_never_fail() -> None:
    rules, _ = parse_rules(load_yaml(YAML)["rules"])
    (e,) = evaluate(rules[0], [sample("dataset_drift", 0.6, drifted=True, threshold=0.5)])
    text = render(rules[0], e, "http://dash/models/credit?start=x")
    assert text == {
        "summary": "credit: 0.6 of features drifted (threshold 0.5)",
        "dashboard": "http://dash/models/credit?start=x",
    }


def test_an_empty_matcher_selects_series_without_the_label() -> None:
    rule = parse_rule(
        {"name": "x", "metric": "dataset_drift", "match": {"segment": ""}, "condition": {"drifted": True}}
    )
    overall = sample("dataset_drift", 0.6, drifted=True)
    segment = sample("dataset_drift", 0.6, drifted=True, labels={"segment": "region", "segment_value": "EU"})
    assert [e.sample for e in evaluate(rule, [overall, segment])] == [overall]


def test_a_condition_on_a_bound_of_the_interval() -> None:
    """ "The challenger is better by at least 2 points, with 97.5 % confidence": the lower bound
    of the difference's 95 % interval, not its value, must pass."""
    rule = parse_rule(
        {
            "name": "promote",
            "metric": "comparison.accuracy",
            "condition": {"op": ">=", "threshold": 0.02, "on": "lower"},
        }
    )
    sure = sample("comparison.accuracy", 0.05, labels={"champion": "1"}, details={"lower": 0.03, "upper": 0.07})
    unsure = sample("comparison.accuracy", 0.05, labels={"champion": "2"}, details={"lower": -0.01, "upper": 0.11})
    bare = sample("comparison.accuracy", 0.05, labels={"champion": "3"})
    got = {e.labels["champion"]: (e.holds, e.note) for e in evaluate(rule, [sure, unsure, bare])}
    assert got == {"1": (True, ""), "2": (False, ""), "3": (None, "no lower bound")}
    assert rule.condition.describe() == "lower bound of its interval >= 0.02"


def test_a_point_without_a_decision_is_undecided_not_a_no() -> None:
    """A drift point too small for its test carries ``drifted`` None: the alert must not read it as
    "no drift" (it would resolve an incident at every hour turn)."""
    rule = parse_rule({"name": "d", "metric": "dataset_drift", "condition": {"drifted": True}})
    (e,) = evaluate(rule, [sample("dataset_drift", 0.0, drifted=None)])
    assert (e.holds, e.note) == (None, "no decision")
    (e,) = evaluate(rule, [sample("dataset_drift", 0.0, drifted=False)])
    assert (e.holds, e.note) == (False, "")
    (e,) = evaluate(rule, [sample("dataset_drift", None)])
    assert e.holds is None


def test_undecided_for_is_a_duration() -> None:
    rule = parse_rule({"name": "d", "metric": "m", "condition": {"drifted": True}, "undecided_for": "2h"})
    assert rule.undecided_duration == timedelta(hours=2)
    assert parse_rule({"name": "d", "metric": "m", "condition": {"drifted": True}}).undecided_duration == timedelta(
        hours=24
    )
    with pytest.raises(RuleError) as err:
        parse_rule({"name": "d", "metric": "m", "condition": {"drifted": True}, "undecided_for": "soon"})
    assert err.value.field == "undecided_for"
