"""Rules as data: parsing with field-level errors, matching, evaluation, rendering."""

from __future__ import annotations

from dataclasses import replace
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
        # the rule has no description: the default one, its own label (team) not read as the series'
        "description": "Model credit version 1, dataset_drift: 0.6 on 500 rows from 2026-11-22T11:00:00+00:00 "
        "to 2026-11-22T12:00:00+00:00. Rule dataset-drift (critical) fires on drifted, threshold 0.5.",
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


@pytest.mark.parametrize("name", ["alertname", "severity", "model", "metric", "window"])
def test_a_rule_cannot_replace_the_labels_the_service_sets(name: str) -> None:
    with pytest.raises(RuleError, match=f"label '{name}' is set by the service"):
        parse_rule({"name": "r", "metric": "dataset_drift", "condition": {"drifted": True}, "labels": {name: "x"}})


def test_an_empty_label_is_absent_as_alertmanager_reads_it() -> None:
    """A rule's empty label is dropped, and one naming a series' label removes it; the alert is
    the one without the label (same labels, same fingerprint)."""
    base = {"name": "r", "metric": "feature_drift", "condition": {"op": ">", "threshold": 0.1}}
    plain = parse_rule(base)
    empty = parse_rule({**base, "labels": {"team": ""}})
    point = sample("feature_drift", 0.3, labels={"feature": "age"})
    (a,), (b,) = evaluate(plain, [point]), evaluate(empty, [point])
    assert "team" not in b.labels and (a.labels, a.fingerprint) == (b.labels, b.fingerprint)
    removed = parse_rule({**base, "labels": {"feature": ""}})
    (c,) = evaluate(removed, [point])
    assert "feature" not in c.labels and c.labels["alertname"] == "r"


def test_a_rule_without_words_gets_a_summary_and_description_of_its_numbers() -> None:
    """No annotations: notifications and the alert list still say what was measured, on which
    series, and when the rule fires; hostile label values are filled in as text, not read."""
    rule = parse_rule({"name": "bc-feature-drift", "metric": "feature_drift", "condition": {"drifted": True}})
    point = sample("feature_drift", 0.153, labels={"feature": "late_{value}", "method": "anderson"}, drifted=True)
    (e,) = evaluate(rule, [point])
    text = render(rule, e)
    assert text["summary"] == (
        "credit: feature_drift (feature=late_{value}, method=anderson) 0.153 in the 1h window to "
        "2026-11-22T12:00:00+00:00; bc-feature-drift fires on drifted (threshold n/a)"
    )
    assert text["description"].startswith("Model credit version 1, feature_drift (feature=late_{value}")
    assert (
        "500 rows" in text["description"] and "Rule bc-feature-drift (warning) fires on drifted" in text["description"]
    )
    # a rule's own summary is kept, the description filled in
    worded = parse_rule({**rule.model_dump(by_alias=True, exclude_defaults=True), "annotations": {"summary": "x"}})
    assert render(worded, evaluate(worded, [point])[0])["summary"] == "x"


def test_a_resolved_alert_says_what_holds_now() -> None:
    rule = parse_rule(
        {
            "name": "late-drift",
            "metric": "feature_drift",
            "condition": {"drifted": True},
            "annotations": {"summary": "{labels[feature]} drifted ({value})", "runbook": "see {rule}"},
        }
    )
    calm = sample("feature_drift", 0.01, labels={"feature": "late_payments"}, drifted=False)
    (e,) = evaluate(rule, [calm])
    firing_words = render(rule, e)
    assert firing_words["summary"] == "late_payments drifted (0.01)"  # the rule's words, as written
    text = render(rule, e, resolved=True)
    assert text["summary"] == (
        "Resolved: credit: feature_drift (feature=late_payments): 0.01 in the 1h window to "
        "2026-11-22T12:00:00+00:00: the condition no longer holds (late-drift: drifted)"
    )
    assert "no longer holds" in text["description"] and text["runbook"] == "see late-drift"
    # undecided for too long: said so, not "no longer holds"
    (u,) = evaluate(rule, [sample("feature_drift", 0.3, labels={"feature": "late_payments"}, drifted=None)])
    assert "no window decided for 24h" in render(rule, u, resolved=True)["summary"]
    # the rule's own resolved words win, and never show while firing
    own = parse_rule(
        {**rule.model_dump(by_alias=True, exclude_defaults=True), "annotations": {"resolved_summary": "ok: {value}"}}
    )
    (o,) = evaluate(own, [calm])
    assert render(own, o, resolved=True)["summary"] == "ok: 0.01"
    assert "resolved_summary" not in render(own, o) and "resolved_summary" not in render(own, o, resolved=True)


def test_a_dataset_drift_notification_names_the_drifted_features_most_important_first() -> None:
    rules, _ = parse_rules(load_yaml(YAML)["rules"])
    ranked = [["income", 0.62], ["plan", 0.031], ["zip {value}", 0.0]]
    point = sample("dataset_drift", 0.6, drifted=True, threshold=0.5)
    point = replace(point, details={"drifted_features": ["plan", "zip {value}", "income"], "by_importance": ranked})
    (e,) = evaluate(rules[0], [point])
    description = render(rules[0], e)["description"]
    assert (
        "Drifted features: income (62 % of importance), plan (3 % of importance), zip {value} (0 % of importance)."
        in description
    )
    # without importances, by name as the point lists them; a long list is cut and counted
    names = [f"f{i}" for i in range(25)]
    (e,) = evaluate(rules[0], [replace(point, details={"drifted_features": names})])
    assert "Drifted features: f0, f1, f2, f3, f4, f5, f6, f7, f8, f9 and 15 more." in render(rules[0], e)["description"]
    # a rule's own words may name them
    own = parse_rule(
        {
            "name": "x",
            "metric": "dataset_drift",
            "condition": {"drifted": True},
            "annotations": {"summary": "{drifted_features}"},
        }
    )
    (o,) = evaluate(own, [point])
    words = "income (62 % of importance), plan (3 % of importance), zip {value} (0 % of importance)"
    assert render(own, o)["summary"] == words
    # a point listing none says nothing of them
    (e,) = evaluate(rules[0], [sample("dataset_drift", 0.6, drifted=True, threshold=0.5)])
    assert "Drifted features" not in render(rules[0], e)["description"]
