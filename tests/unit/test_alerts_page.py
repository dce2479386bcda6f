"""The alerts page's groups: by rule and model, the firing first and open, filtered by state,
severity and model (an empty filter passes all)."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboards.pages.alerts import alert_groups


def _alert(rule: str, model: str, state: str, severity: str, i: int) -> dict[str, Any]:
    return {
        "fingerprint": f"{rule}-{model}-{i}",
        "rule": rule,
        "model": model,
        "labels": {"alertname": rule, "severity": severity, "feature": f"f{i}"},
        "annotations": {"summary": f"{rule} {i}"},
        "state": state,
        "value": 1.0,
        "threshold": 0.5,
        "evidence": {"sample_size": 10},
        "fired_at": None,
        "active_at": None,
        "resolved_at": None,
        "acknowledged_by": None,
    }


ALERTS = [
    *(_alert("latency", "m1", "resolved", "warning", i) for i in range(3)),
    *(_alert("drift", "m1", "firing", "warning", i) for i in range(2)),
    _alert("drift", "m1", "resolved", "warning", 9),
    _alert("quality", "m2", "pending", "critical", 0),
]


def _heading(group: html.Details) -> str:
    summary = group.children[0]
    return "".join(c.children if isinstance(c, html.Strong) else str(c) for c in summary.children)


def test_groups_rank_the_firing_first_and_open_the_active_ones() -> None:
    groups = alert_groups(ALERTS)
    assert [_heading(g) for g in groups] == [
        "drift · m1 — 3 alerts: 2 firing, 1 resolved · warning",
        "quality · m2 — 1 alert: 1 pending · critical",
        "latency · m1 — 3 alerts: 3 resolved · warning",
    ]
    assert [g.open for g in groups] == [True, True, False]


def test_filters_keep_what_they_name_and_say_when_nothing_matches() -> None:
    assert [_heading(g) for g in alert_groups(ALERTS, states=["resolved"])] == [
        "drift · m1 — 1 alert: 1 resolved · warning",
        "latency · m1 — 3 alerts: 3 resolved · warning",
    ]
    assert [_heading(g) for g in alert_groups(ALERTS, severities=["critical"])] == [
        "quality · m2 — 1 alert: 1 pending · critical"
    ]
    (empty,) = alert_groups(ALERTS, models=["m2"], states=["firing"])
    assert isinstance(empty, html.P) and empty.children == "no alert matches"
