"""Annotation templates name documented values and labels by key, nothing else."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from alerts import templates
from alerts.evaluate import Evaluation, Sample, render
from alerts.rules import RuleError, parse_rule

T = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _rule(annotations: dict[str, str]):  # type: ignore[no-untyped-def]
    return parse_rule({"name": "r", "metric": "m", "condition": {"drifted": True}, "annotations": annotations})


def _evaluation(labels: dict[str, str]) -> Evaluation:
    s = Sample("credit", "3", "feature_drift", labels, T - timedelta(hours=1), T, 0.25, 900)
    return Evaluation("r", "fp", {"alertname": "r", **labels}, True, s, 0.1)


@pytest.mark.parametrize(
    "text",
    [
        "{labels.__missing__.__globals__}",
        "{labels.__class__}",
        "{labels[feature].__class__}",
        "{labels[feature][0]}",
        "{model.__class__.__init__.__globals__[os].environ}",
        "{value.real}",
        "{threshold[0]}",
        "{value:{threshold}}",
        "{value:>999999999}",
        "{value!r}",
        "{__import__}",
        "{0}",
        "{}",
        "{labels}",
        "{labels[__class__ ]}",
        "unbalanced {",
    ],
)
def test_anything_but_a_named_value_or_a_label_key_is_refused_at_parse_time(text: str) -> None:
    with pytest.raises(templates.TemplateError):
        templates.parse(text)
    with pytest.raises(RuleError) as err:
        _rule({"summary": text})
    assert err.value.field == "annotations" and "summary" in err.value.reason


def test_documented_values_and_labels_render() -> None:
    rule = _rule(
        {
            "summary": "{model} v{version}: {metric} of {labels[feature]} is {value} over {threshold} "
            "({sample_size} rows, {window}) {{literal}} {labels[absent]}|",
        }
    )
    out = render(rule, _evaluation({"feature": "age"}), "http://dash")
    assert out["summary"] == "credit v3: feature_drift of age is 0.25 over 0.1 (900 rows, 1h) {literal} |"


def test_a_stored_template_that_predates_the_check_reaches_nothing() -> None:
    # A rule stored before the check: the renderer is what stands between it and the process.
    rule = _rule({"summary": "ok"})
    object.__setattr__(rule, "annotations", {"summary": "{labels.__missing__.__globals__[os].environ}"})
    os.environ["MONITOR_TEMPLATE_CANARY"] = "canary-secret"
    try:
        out = render(rule, _evaluation({"feature": "age"}))
    finally:
        del os.environ["MONITOR_TEMPLATE_CANARY"]
    assert out["summary"] == "{labels.__missing__.__globals__[os].environ}"
    assert "canary-secret" not in str(out)


def test_label_values_are_substituted_as_text_never_parsed_again() -> None:
    rule = _rule({"summary": "feature {labels[feature]}"})
    out = render(rule, _evaluation({"feature": "{labels.__class__}{value}"}))
    assert out["summary"] == "feature {labels.__class__}{value}"


def test_rendered_annotations_are_bounded() -> None:
    rule = _rule({"summary": "{labels[feature]}" * 200})
    out = render(rule, _evaluation({"feature": "x" * 500}))
    assert len(out["summary"]) == templates.MAX_RENDERED_CHARS
